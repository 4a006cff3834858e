/**
 * A pipeline's state, rebuilt from its events: a tagged union on `status`, so
 * that a paused pipeline cannot also be failed, and the transition function
 * `evolvePipeline(state, event)` that recovery and the live actor share.
 */
import type { Checkpoint, FailureInfo, PipelineEvent, PipelineMetrics } from './pipeline-events.js';
import type { PipelineDefinition } from '../definition/pipeline-definition.js';

/** The definition as stored in events (plain data). */
export type PipelineDefinitionData = PipelineDefinition;

export type PipelineStatus = 'empty' | 'configured' | 'running' | 'paused' | 'stopped' | 'failed';

/** How many recently processed batch ids a pipeline remembers for idempotent ingest. */
export const RECENT_BATCH_IDS = 256;

/** What every non-empty pipeline knows. */
export interface PipelineData {
  readonly pipelineId: string;
  readonly definition: PipelineDefinitionData;
  readonly checkpoint: Checkpoint | null;
  readonly metrics: PipelineMetrics;
  /** The newest processed batch ids, oldest first, at most `RECENT_BATCH_IDS`. */
  readonly recentBatchIds: readonly string[];
  /** The batch being retried and how often it was tried, if any. */
  readonly retry: { readonly batchId: string; readonly attempt: number; readonly lastError: FailureInfo } | null;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type PipelineState =
  | { readonly status: 'empty' }
  | ({ readonly status: 'configured' } & PipelineData)
  | ({ readonly status: 'running' } & PipelineData)
  | ({ readonly status: 'paused'; readonly reason: string } & PipelineData)
  | ({ readonly status: 'stopped'; readonly reason: string } & PipelineData)
  | ({ readonly status: 'failed'; readonly error: FailureInfo } & PipelineData);

export type ConfiguredPipelineState = Exclude<PipelineState, { status: 'empty' }>;

export const emptyPipelineState: PipelineState = { status: 'empty' };

export const emptyMetrics: PipelineMetrics = {
  recordsProcessed: 0,
  recordsFailed: 0,
  recordsDeadLettered: 0,
  batches: 0,
  avgBatchMs: 0,
  throughputPerSec: 0,
  lastProcessedAt: null,
};

/** Weight of the newest batch in the moving averages. */
const EWMA_WEIGHT = 0.2;

function data(state: ConfiguredPipelineState): PipelineData {
  const { pipelineId, definition, checkpoint, metrics, recentBatchIds, retry, createdAt, updatedAt } = state;
  return { pipelineId, definition, checkpoint, metrics, recentBatchIds, retry, createdAt, updatedAt };
}

/**
 * Applies one event. Total: an event that does not fit the state (which the
 * command side never emits) leaves the state unchanged but for `updatedAt`,
 * so a replay never fails half-way on an old journal.
 */
export function evolvePipeline(state: PipelineState, event: PipelineEvent): PipelineState {
  if (event.type === 'PipelineCreated') {
    return {
      status: 'configured',
      pipelineId: event.pipelineId,
      definition: event.definition,
      checkpoint: null,
      metrics: emptyMetrics,
      recentBatchIds: [],
      retry: null,
      createdAt: event.at,
      updatedAt: event.at,
    };
  }
  if (state.status === 'empty') return state;
  if (event.type === 'PipelineDeleted') return emptyPipelineState;
  const d = { ...data(state), updatedAt: event.at };
  switch (event.type) {
    case 'PipelineStarted':
    case 'PipelineResumed':
      return { status: 'running', ...d };
    case 'PipelineStopped':
      return { status: 'stopped', reason: event.reason, ...d, retry: null };
    case 'PipelinePaused':
      return { status: 'paused', reason: event.reason, ...d };
    case 'PipelineFailed':
      return { status: 'failed', error: event.error, ...d, retry: null };
    case 'PipelineReset':
      return { status: 'configured', ...d, retry: null };
    case 'ConfigUpdated':
      return { ...state, ...d, definition: event.definition };
    case 'OffsetsReset': {
      const base = d.checkpoint ?? { batchId: 'offsets-reset', sinkPosition: null, recordsProcessed: d.metrics.recordsProcessed, transformStates: null };
      const checkpoint = d.checkpoint === null && event.sourceOffset === null ? null : { ...base, sourceOffset: event.sourceOffset };
      return { ...state, ...d, checkpoint };
    }
    case 'BatchIngested':
      return { ...state, ...d };
    case 'BatchProcessed': {
      const m = d.metrics;
      const first = m.batches === 0;
      const seconds = Math.max(event.processingMs, 1) / 1000;
      const rate = event.successCount / seconds;
      const metrics: PipelineMetrics = {
        recordsProcessed: m.recordsProcessed + event.successCount,
        recordsFailed: m.recordsFailed + event.failureCount,
        recordsDeadLettered: m.recordsDeadLettered + event.deadLetterCount,
        batches: m.batches + 1,
        avgBatchMs: first ? event.processingMs : m.avgBatchMs + EWMA_WEIGHT * (event.processingMs - m.avgBatchMs),
        throughputPerSec: first ? rate : m.throughputPerSec + EWMA_WEIGHT * (rate - m.throughputPerSec),
        lastProcessedAt: event.at,
      };
      const recent = [...d.recentBatchIds, event.batchId];
      if (recent.length > RECENT_BATCH_IDS) recent.splice(0, recent.length - RECENT_BATCH_IDS);
      return { ...state, ...d, metrics, recentBatchIds: recent, retry: retryAfter(d.retry, event.batchId) };
    }
    case 'CheckpointUpdated':
      return { ...state, ...d, checkpoint: event.checkpoint };
    case 'RetryScheduled':
      // A retry of a batch recorded already (its write landed after the attempt had timed out) retries nothing.
      if (d.recentBatchIds.includes(event.batchId)) return { ...state, ...d };
      return { ...state, ...d, retry: { batchId: event.batchId, attempt: event.attempt, lastError: event.error } };
    case 'BatchTimedOut':
      return { ...state, ...d };
  }
}

/** The number of a source batch id (`<pipeline>:<n>`); undefined for other ids (`<pipeline>:connectors`, ingests). */
function batchNumber(batchId: string): number | undefined {
  const match = /^[^:]+:(\d+)$/.exec(batchId);
  return match === null ? undefined : Number(match[1]);
}

/**
 * The retry shown after `processed` was recorded: over when it was that
 * batch, a later one (the pipeline moved past it: a write that timed out may
 * have landed after all), or when the retry was of the connectors (they work
 * again); kept when an earlier batch completes while a later one is retried.
 */
function retryAfter(retry: PipelineData['retry'], processed: string): PipelineData['retry'] {
  if (retry === null || retry.batchId === processed) return null;
  const retried = batchNumber(retry.batchId);
  const done = batchNumber(processed);
  if (retried === undefined || done === undefined) return null;
  return done > retried ? null : retry;
}
