/**
 * The events of a pipeline's journal (docs/domain.md), with the tags every one of
 * them carries. Events are plain JSON data; `at` is the time of the decision
 * (epoch milliseconds, from the injected clock).
 */
import type { SinkPosition } from '../../connector/sink.js';
import type { SourceOffset } from '../../connector/source.js';
import type { PipelineDefinitionData } from './pipeline-state.js';

/** Totals kept in the pipeline's state (and reported when it stops). */
export interface PipelineMetrics {
  readonly recordsProcessed: number;
  readonly recordsFailed: number;
  readonly recordsDeadLettered: number;
  readonly batches: number;
  /** Exponentially weighted average processing time of a batch, ms. */
  readonly avgBatchMs: number;
  /** Records per second of the latest batches (weighted average), 0 before the first batch. */
  readonly throughputPerSec: number;
  readonly lastProcessedAt: number | null;
}

export interface FailureInfo {
  readonly message: string;
  readonly tag?: string;
  readonly retriable: boolean;
}

export interface Checkpoint {
  /** The batch that produced this checkpoint. */
  readonly batchId: string;
  /** Where the source resumes: after the last record of that batch. */
  readonly sourceOffset: SourceOffset;
  /** The sink's position after that batch (exactly-once sinks truncate back to it). */
  readonly sinkPosition: SinkPosition | null;
  /** Records processed up to and including that batch. */
  readonly recordsProcessed: number;
  /** The state of each stateful transform (open aggregate windows) after that batch, by stage index; null when none is stateful. */
  readonly transformStates: readonly unknown[] | null;
}

export type PipelineEvent =
  | { readonly type: 'PipelineCreated'; readonly at: number; readonly pipelineId: string; readonly definition: PipelineDefinitionData }
  | { readonly type: 'PipelineStarted'; readonly at: number }
  | { readonly type: 'PipelineStopped'; readonly at: number; readonly reason: string; readonly finalMetrics: PipelineMetrics }
  | { readonly type: 'PipelinePaused'; readonly at: number; readonly reason: string }
  | { readonly type: 'PipelineResumed'; readonly at: number }
  | {
      readonly type: 'BatchIngested';
      readonly at: number;
      readonly batchId: string;
      readonly recordCount: number;
      readonly sourceOffset: SourceOffset;
    }
  | {
      readonly type: 'BatchProcessed';
      readonly at: number;
      readonly batchId: string;
      readonly successCount: number;
      readonly failureCount: number;
      readonly deadLetterCount: number;
      readonly processingMs: number;
    }
  | { readonly type: 'CheckpointUpdated'; readonly at: number; readonly checkpoint: Checkpoint }
  | { readonly type: 'PipelineFailed'; readonly at: number; readonly error: FailureInfo }
  | { readonly type: 'PipelineReset'; readonly at: number }
  | { readonly type: 'ConfigUpdated'; readonly at: number; readonly definition: PipelineDefinitionData }
  /**
   * The source offset was set while the pipeline did not run: `null` means
   * "from the beginning" (the source's own start). The sink position and the
   * stateful transforms' states of the checkpoint are kept; `previous` is the
   * offset it replaced, for the record.
   */
  | { readonly type: 'OffsetsReset'; readonly at: number; readonly sourceOffset: SourceOffset; readonly previous: SourceOffset }
  /**
   * The pipeline was deleted: its state is empty again (the id may be created
   * anew); its history stays in the journal.
   */
  | { readonly type: 'PipelineDeleted'; readonly at: number }
  | {
      readonly type: 'RetryScheduled';
      readonly at: number;
      readonly batchId: string;
      readonly error: FailureInfo;
      readonly attempt: number;
      readonly backoffMs: number;
    }
  | { readonly type: 'BatchTimedOut'; readonly at: number; readonly batchId: string; readonly timeoutMs: number };

export type PipelineEventType = PipelineEvent['type'];

/** Tags for `eventsByTag`. */
export const PipelineTags = {
  all: 'all-events',
  pipeline: 'pipeline-events',
  lifecycle: 'pipeline-lifecycle',
  batch: 'batch-events',
  failure: 'failure-events',
  retry: 'retry-events',
} as const;

const lifecycle = new Set<PipelineEventType>([
  'PipelineCreated',
  'PipelineStarted',
  'PipelineStopped',
  'PipelinePaused',
  'PipelineResumed',
  'PipelineReset',
  'ConfigUpdated',
  'OffsetsReset',
  'PipelineDeleted',
  'PipelineFailed',
]);
const batch = new Set<PipelineEventType>(['BatchIngested', 'BatchProcessed', 'CheckpointUpdated', 'BatchTimedOut']);
const failure = new Set<PipelineEventType>(['PipelineFailed', 'BatchTimedOut']);

/**
 * The tags of a pipeline event: every event `pipeline-events` and
 * `all-events`; lifecycle events `pipeline-lifecycle`; batch events
 * `batch-events`; failures `failure-events`; retries `retry-events`.
 */
export function pipelineEventTags(event: PipelineEvent): string[] {
  const tags: string[] = [PipelineTags.pipeline, PipelineTags.all];
  if (lifecycle.has(event.type)) tags.push(PipelineTags.lifecycle);
  if (batch.has(event.type)) tags.push(PipelineTags.batch);
  if (failure.has(event.type)) tags.push(PipelineTags.failure);
  if (event.type === 'RetryScheduled') tags.push(PipelineTags.retry);
  return tags;
}
