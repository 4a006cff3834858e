/**
 * The pipeline's decisions as a pure function: given the state and a command,
 * the events to persist or a typed refusal. The pipeline actor persists what
 * this returns; tests pin every allowed and refused transition without an
 * actor system.
 */
import type { SinkPosition } from '../../connector/sink.js';
import { backoffDelayMs } from '../../supervision/backoff.js';
import type { SourceOffset } from '../../connector/source.js';
import { PipelineCommandRejectedError } from './pipeline-errors.js';
import type { FailureInfo, PipelineEvent } from './pipeline-events.js';
import type { PipelineDefinitionData, PipelineState, PipelineStatus } from './pipeline-state.js';

/** Commands the decider judges (the actor adds `replyTo` and execution messages). */
export type PipelineDecision =
  | { readonly type: 'create'; readonly pipelineId: string; readonly definition: PipelineDefinitionData }
  | { readonly type: 'start' }
  | { readonly type: 'stop'; readonly reason: string }
  | { readonly type: 'pause'; readonly reason: string }
  | { readonly type: 'resume' }
  | { readonly type: 'reset' }
  | { readonly type: 'update-config'; readonly definition: PipelineDefinitionData }
  /** Sets the source offset (`null`: from the beginning); only while configured, stopped or failed. */
  | { readonly type: 'reset-offsets'; readonly sourceOffset: SourceOffset }
  /** Deletes the pipeline; only while configured, stopped or failed. */
  | { readonly type: 'delete' }
  /** May a batch with this id be ingested now? (no events: execution follows) */
  | { readonly type: 'ingest'; readonly batchId: string }
  /** A batch went through transforms and sink: record it and its checkpoint. */
  | ({ readonly type: 'complete-batch' } & CompletedBatch)
  /**
   * Consecutive batches that went through transforms and sink while the
   * previous checkpoint was written: recorded in one append, with one
   * checkpoint (the last batch's). Batches already recorded are skipped.
   */
  | { readonly type: 'complete-batches'; readonly batches: readonly CompletedBatch[] }
  /** A stage failed while processing `batchId`. */
  | { readonly type: 'report-failure'; readonly batchId: string; readonly error: FailureInfo }
  | { readonly type: 'batch-timeout'; readonly batchId: string; readonly timeoutMs: number };

/** One batch as recorded with its checkpoint. */
export interface CompletedBatch {
  readonly batchId: string;
  readonly recordCount: number;
  readonly sourceOffset: SourceOffset;
  readonly sinkPosition: SinkPosition | null;
  readonly transformStates: readonly unknown[] | null;
  readonly successCount: number;
  readonly failureCount: number;
  readonly deadLetterCount: number;
  readonly processingMs: number;
}

export type DecisionResult =
  | { readonly ok: true; readonly events: readonly PipelineEvent[]; readonly duplicate?: boolean }
  | { readonly ok: false; readonly error: PipelineCommandRejectedError };

export interface DeciderContext {
  readonly now: number;
  /** Uniform in [0, 1): jitter of retry backoff. */
  readonly random: () => number;
}

/**
 * How many times a batch whose failure is retriable is retried: a count, or
 * `'unlimited'` (the default): retry until the failure stops, like Kafka
 * Connect's `errors.retry.timeout: -1`, so an outage of any length (a journal
 * or a connector that is unavailable) never fails the pipeline, only delays it.
 */
export type RetryLimit = number | 'unlimited';

/** The pipeline's retry policy (from its definition). */
export interface RetryPolicy {
  readonly maxRetries: RetryLimit;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly multiplier: number;
  /** ± fraction of the backoff, e.g. 0.2. */
  readonly jitter: number;
}

/**
 * Backoff before retry number `attempt` (1-based): initial × multiplier^(attempt-1),
 * capped, ± jitter; computed by the shared `backoffDelayMs` (`spread` jitter).
 */
export function retryBackoffMs(policy: RetryPolicy, attempt: number, random: () => number): number {
  return backoffDelayMs(
    attempt - 1,
    { minBackoffMs: policy.initialBackoffMs, maxBackoffMs: policy.maxBackoffMs, multiplier: policy.multiplier, randomFactor: policy.jitter, jitter: 'spread' },
    random(),
  );
}

/**
 * Whether retry number `attempt` (1-based) is past the policy's limit; never
 * with `maxRetries: 'unlimited'`.
 */
export function retriesExhausted(policy: Pick<RetryPolicy, 'maxRetries'>, attempt: number): boolean {
  return policy.maxRetries !== 'unlimited' && attempt > policy.maxRetries;
}

function reject(state: PipelineState, command: string, reason: string): DecisionResult {
  const id = state.status === 'empty' ? '(new)' : state.pipelineId;
  return { ok: false, error: new PipelineCommandRejectedError(id, command, state.status, reason) };
}

const accept = (...events: PipelineEvent[]): DecisionResult => ({ ok: true, events });

const allowed = (status: PipelineStatus, ...statuses: PipelineStatus[]): boolean => statuses.includes(status);

/**
 * Decides `command` against `state`.
 *
 * @example
 * ```ts
 * const result = decidePipeline(state, { type: 'pause', reason: 'maintenance' }, { now: Date.now(), random: Math.random }, retry);
 * if (!result.ok) throw result.error;
 * ```
 */
export function decidePipeline(
  state: PipelineState,
  command: PipelineDecision,
  ctx: DeciderContext,
  retry: RetryPolicy,
): DecisionResult {
  const at = ctx.now;
  if (command.type === 'create') {
    if (state.status !== 'empty') return reject(state, 'create', 'the pipeline already exists');
    return accept({ type: 'PipelineCreated', at, pipelineId: command.pipelineId, definition: command.definition });
  }
  if (state.status === 'empty') return reject(state, command.type, 'the pipeline does not exist');
  const s = state.status;
  switch (command.type) {
    case 'start':
      if (s === 'running') return accept();
      if (!allowed(s, 'configured', 'stopped')) {
        return reject(state, 'start', s === 'paused' ? 'resume a paused pipeline instead' : 'reset a failed pipeline first');
      }
      return accept({ type: 'PipelineStarted', at });
    case 'stop':
      if (s === 'stopped') return accept();
      if (!allowed(s, 'running', 'paused')) return reject(state, 'stop', 'only a running or paused pipeline can stop');
      return accept({ type: 'PipelineStopped', at, reason: command.reason, finalMetrics: state.metrics });
    case 'pause':
      if (s === 'paused') return accept();
      if (s !== 'running') return reject(state, 'pause', 'only a running pipeline can pause');
      return accept({ type: 'PipelinePaused', at, reason: command.reason });
    case 'resume':
      if (s === 'running') return accept();
      if (s !== 'paused') return reject(state, 'resume', 'only a paused pipeline can resume');
      return accept({ type: 'PipelineResumed', at });
    case 'reset':
      if (s !== 'failed') return reject(state, 'reset', 'only a failed pipeline can be reset');
      return accept({ type: 'PipelineReset', at });
    case 'update-config':
      if (!allowed(s, 'configured', 'stopped')) {
        return reject(state, 'update the configuration', 'the configuration may change only while configured or stopped');
      }
      return accept({ type: 'ConfigUpdated', at, definition: command.definition });
    case 'reset-offsets':
      if (!allowed(s, 'configured', 'stopped', 'failed')) {
        return reject(state, 'reset the offsets', 'offsets may change only while configured, stopped or failed: stop the pipeline first');
      }
      return accept({ type: 'OffsetsReset', at, sourceOffset: command.sourceOffset, previous: state.checkpoint?.sourceOffset ?? null });
    case 'delete':
      if (!allowed(s, 'configured', 'stopped', 'failed')) return reject(state, 'delete', 'only a configured, stopped or failed pipeline can be deleted: stop it first');
      return accept({ type: 'PipelineDeleted', at });
    case 'ingest':
      if (state.recentBatchIds.includes(command.batchId)) return { ok: true, events: [], duplicate: true };
      if (s !== 'running') {
        const why = s === 'paused' ? `it is paused (${state.reason})` : s === 'stopped' ? `it is stopped (${state.reason})` : `it is ${s}`;
        return reject(state, 'ingest', `batches are accepted only while running, and ${why}`);
      }
      return accept();
    case 'complete-batch':
    case 'complete-batches': {
      const batches = command.type === 'complete-batch' ? [command] : command.batches;
      const fresh = batches.filter((b) => !state.recentBatchIds.includes(b.batchId));
      if (fresh.length === 0) return { ok: true, events: [], duplicate: true };
      if (!allowed(s, 'running', 'paused', 'stopped')) return reject(state, 'complete a batch', 'the pipeline is not active');
      let recordsProcessed = state.checkpoint?.recordsProcessed ?? 0;
      const events: PipelineEvent[] = [];
      for (const b of fresh) {
        recordsProcessed += b.successCount;
        events.push(
          { type: 'BatchIngested', at, batchId: b.batchId, recordCount: b.recordCount, sourceOffset: b.sourceOffset },
          {
            type: 'BatchProcessed',
            at,
            batchId: b.batchId,
            successCount: b.successCount,
            failureCount: b.failureCount,
            deadLetterCount: b.deadLetterCount,
            processingMs: b.processingMs,
          },
        );
      }
      const last = fresh[fresh.length - 1] as CompletedBatch;
      events.push({
        type: 'CheckpointUpdated',
        at,
        checkpoint: {
          batchId: last.batchId,
          sourceOffset: last.sourceOffset,
          sinkPosition: last.sinkPosition,
          recordsProcessed,
          transformStates: last.transformStates,
        },
      });
      return { ok: true, events, ...(fresh.length < batches.length ? { duplicate: true } : {}) };
    }
    case 'batch-timeout':
    case 'report-failure': {
      if (s !== 'running') return accept();
      const error: FailureInfo =
        command.type === 'report-failure'
          ? command.error
          : { message: `batch ${command.batchId} did not complete within ${command.timeoutMs} ms`, tag: 'pipeline/batch-timeout', retriable: true };
      const timedOut: PipelineEvent[] =
        command.type === 'batch-timeout' ? [{ type: 'BatchTimedOut', at, batchId: command.batchId, timeoutMs: command.timeoutMs }] : [];
      const attempt = state.retry?.batchId === command.batchId ? state.retry.attempt + 1 : 1;
      if (!error.retriable || retriesExhausted(retry, attempt)) {
        const final: FailureInfo = error.retriable
          ? { ...error, message: `${error.message} (gave up after ${String(retry.maxRetries)} retries)` }
          : error;
        return accept(...timedOut, { type: 'PipelineFailed', at, error: final });
      }
      const backoffMs = retryBackoffMs(retry, attempt, ctx.random);
      return accept(...timedOut, { type: 'RetryScheduled', at, batchId: command.batchId, error, attempt, backoffMs });
    }
  }
}
