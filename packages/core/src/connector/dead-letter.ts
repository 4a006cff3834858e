/**
 * The dead-letter port: where a record goes when parsing, a transform or the
 * sink (after retries) fails it, with everything needed to understand and
 * replay it. Nothing is dropped silently.
 */
import type { JsonValue } from './data-record.js';

export type PipelineStage = 'source' | 'transform' | 'sink';

export interface DeadLetter {
  readonly pipelineId: string;
  readonly stage: PipelineStage;
  /** For transforms: the index and type, e.g. `transforms[1]:filter`; otherwise the connector type. */
  readonly stageName: string;
  readonly error: { readonly message: string; readonly tag?: string; readonly retriable: boolean };
  /** How many times the stage was tried. */
  readonly attempt: number;
  /** The original payload: the record, or the raw text a source could not parse. */
  readonly payload: JsonValue;
  readonly batchId?: string;
  /** Epoch milliseconds. */
  readonly failedAt: number;
}

export interface DeadLetterTarget {
  readonly type: string;
  open(): Promise<void>;
  /** Stores the letters durably, all or none; throws a `ConnectorError` when it cannot. */
  send(letters: readonly DeadLetter[]): Promise<void>;
  close(): Promise<void>;
}
