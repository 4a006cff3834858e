/**
 * The sink port. A sink writes a batch and reports the position it reached,
 * which the pipeline stores with its checkpoint: a sink that can cut off what
 * was written after a checkpoint (files) becomes exactly-once across crashes;
 * others must be idempotent by batch id / record key to get the same result.
 */
import type { DataRecord } from './data-record.js';
import type { SourceOffset } from './source.js';

/** A sink's position, JSON-serializable, stored with the checkpoint. */
export type SinkPosition = SourceOffset;

export interface SinkContext {
  readonly pipelineId: string;
  /** The position stored with the last durable checkpoint; a sink that can, truncates what lies after it. */
  readonly checkpoint: SinkPosition | undefined;
  readonly signal: AbortSignal;
}

export interface SinkBatch {
  /** Unique and stable per batch of a pipeline: idempotent sinks key on it. */
  readonly batchId: string;
  readonly records: readonly DataRecord[];
  /**
   * The source position reached after this batch: the value the checkpoint of
   * this batch will store. The pipeline always sets it; a sink with
   * `commitsSourceOffsets` commits it upstream in the same transaction as its
   * output. (Optional in the type only so hand-built batches in tests stay valid.)
   */
  readonly sourceOffset?: SourceOffset;
}

export interface SinkWriteResult {
  /** The position after this batch, stored with the checkpoint. */
  readonly position?: SinkPosition;
  /** Records the sink refused permanently (index into the batch), handled by the sink's error policy. */
  readonly rejected?: readonly { readonly index: number; readonly reason: string }[];
}

/**
 * A destination of records.
 *
 * @example
 * ```ts
 * await sink.open({ pipelineId: 'p1', checkpoint: undefined, signal });
 * const { position } = await sink.write({ batchId: 'p1-1', records: [{ n: 1 }] });
 * ```
 */
export interface Sink {
  readonly type: string;
  /**
   * True when the sink may receive the write of batch N+1 before the
   * checkpoint of batch N is durable: it is idempotent by batch id (a batch
   * written again replaces itself) or it truncates back to the checkpointed
   * position on `open`, so a crash or a failed checkpoint in between leaves
   * no duplicate. The pipeline then overlaps that write with the checkpoint;
   * otherwise (the default) a batch is written only after the previous one
   * is checkpointed.
   */
  readonly pipelinedWrites?: boolean;
  /**
   * True when the sink commits `SinkBatch.sourceOffset` upstream atomically
   * with its output (a Kafka transaction with `sendOffsets`). The pipeline then
   * never pipelines writes (one batch per checkpoint, whatever
   * `pipelinedWrites` says) and opens the source with
   * `offsetsCommittedBySink: true`, so the source's `ack` does not commit.
   */
  readonly commitsSourceOffsets?: boolean;
  open(context: SinkContext): Promise<void>;
  /** Writes the batch durably; throws a `ConnectorError` (see `retriable`) when it cannot. */
  write(batch: SinkBatch): Promise<SinkWriteResult>;
  close(): Promise<void>;
}
