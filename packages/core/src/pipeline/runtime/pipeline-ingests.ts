/**
 * External `ingest` batches of one pipeline: who waits for which answer, and
 * the batches accepted while no connector generation runs (a retry's
 * backoff), which seed the next one. The batch cycle queues and runs them;
 * this desk only keeps the callers.
 */
import { StatusReply } from '../../actor/status-reply.js';
import type { DataRecord } from '../../connector/data-record.js';
import type { PipelineState } from '../model/pipeline-state.js';
import type { QueuedIngest } from './batch-cycle-types.js';
import { PipelineUnavailableError, type PipelineReplyRef } from './pipeline-protocol.js';

export class IngestDesk {
  private waiting: QueuedIngest[] = [];
  private readonly replies = new Map<string, PipelineReplyRef | undefined>();

  constructor(
    private readonly pipelineId: string,
    private readonly maxQueued: number,
  ) {}

  /**
   * Takes an ingest keyed `batchId` (already namespaced), or returns why not:
   * the same batch is in progress, or too many wait (`queuedElsewhere`
   * counts those the running cycle holds).
   */
  accept(batchId: string, records: readonly DataRecord[], replyTo: PipelineReplyRef | undefined, queuedElsewhere: number): QueuedIngest | string {
    if (this.replies.has(batchId)) return 'is already being processed';
    const queued = this.waiting.length + queuedElsewhere;
    if (queued >= this.maxQueued) return `cannot wait: ${queued} ingested batches are already waiting`;
    this.replies.set(batchId, replyTo);
    return { batchId, records };
  }

  /** Keeps an accepted ingest until a generation runs. */
  park(...ingests: readonly QueuedIngest[]): void {
    this.waiting.push(...ingests);
  }

  /** The ingests waiting for a generation, handed over to it. */
  takeWaiting(): QueuedIngest[] {
    return this.waiting.splice(0);
  }

  /** Answers the caller of `batchId` (if it is one of ours). */
  answer(batchId: string, state: PipelineState, outcome: { ok: true; duplicate: boolean } | { ok: false; reason: string }): void {
    if (!this.replies.has(batchId)) return;
    const replyTo = this.replies.get(batchId);
    this.replies.delete(batchId);
    if (outcome.ok) replyTo?.tell(StatusReply.success({ state, duplicate: outcome.duplicate }));
    else replyTo?.tell(StatusReply.error(new PipelineUnavailableError(this.pipelineId, outcome.reason, { retriable: true })));
  }

  /** Refuses every waiting ingest (the pipeline is no longer running). */
  refuseWaiting(state: PipelineState, reason: string): void {
    for (const queued of this.waiting.splice(0)) this.answer(queued.batchId, state, { ok: false, reason });
  }
}
