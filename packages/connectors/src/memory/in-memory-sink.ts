/**
 * An in-memory sink for tests: idempotent by batch id (writing a batch id
 * again replaces that batch in place, as a re-driven batch after a crash
 * should), with failure injection to exercise a pipeline's retry and error
 * handling.
 */
import { ConnectorError, type DataRecord, type Sink, type SinkBatch, type SinkContext, type SinkWriteResult } from '@dataflow/core';

/** How the next writes fail. */
export interface InjectedFailure {
  /** Whether the injected error says a retry may help; default true. */
  readonly retriable?: boolean;
  readonly message?: string;
}

/** The sink's lifecycle as a test sees it. */
export type InMemorySinkStatus = { readonly status: 'new' } | { readonly status: 'open'; readonly pipelineId: string } | { readonly status: 'closed' };

/**
 * Keeps written batches in memory.
 *
 * @example
 * ```ts
 * const sink = new InMemorySink();
 * sink.failNextWrites(2, { retriable: true });
 * // ... run a pipeline into it ...
 * expect(sink.records()).toEqual([{ id: 1 }, { id: 2 }]);
 * ```
 */
export class InMemorySink implements Sink {
  readonly type = 'memory';
  /** Idempotent by batch id: a batch may be written before the previous checkpoint is durable. */
  readonly pipelinedWrites = true;
  private readonly stored = new Map<string, readonly DataRecord[]>();
  private pendingFailures: { count: number; retriable: boolean; message: string } = { count: 0, retriable: true, message: '' };
  private current: InMemorySinkStatus = { status: 'new' };
  private attempts = 0;

  open(context: SinkContext): Promise<void> {
    this.current = { status: 'open', pipelineId: context.pipelineId };
    return Promise.resolve();
  }

  write(batch: SinkBatch): Promise<SinkWriteResult> {
    this.attempts++;
    if (this.current.status !== 'open') return Promise.reject(new ConnectorError('memory', 'write before open', { retriable: false }));
    if (this.pendingFailures.count > 0) {
      this.pendingFailures.count--;
      const { retriable, message } = this.pendingFailures;
      return Promise.reject(new ConnectorError('memory', message, { retriable }));
    }
    this.stored.set(batch.batchId, [...batch.records]);
    return Promise.resolve({ position: { batches: this.stored.size } });
  }

  close(): Promise<void> {
    this.current = { status: 'closed' };
    return Promise.resolve();
  }

  /** Makes the next `count` writes fail with a `ConnectorError` (nothing is stored for them). */
  failNextWrites(count: number, failure: InjectedFailure = {}): void {
    this.pendingFailures = {
      count,
      retriable: failure.retriable ?? true,
      message: failure.message ?? `injected ${failure.retriable === false ? 'permanent' : 'transient'} failure`,
    };
  }

  /** Every stored record, batch by batch in first-write order. */
  records(): DataRecord[] {
    return [...this.stored.values()].flat();
  }

  /** The stored batches in first-write order. */
  batches(): { readonly batchId: string; readonly records: readonly DataRecord[] }[] {
    return [...this.stored].map(([batchId, records]) => ({ batchId, records }));
  }

  /** How many times `write` was called, failed calls included. */
  get writeAttempts(): number {
    return this.attempts;
  }

  get status(): InMemorySinkStatus {
    return this.current;
  }
}
