/**
 * Instrumentation events of running pipelines; `apps/node` turns them into
 * the Prometheus metrics and logs of docs/domain.md.
 */
import type { SourceLag } from '../../connector/source.js';
import type { PipelineStatus } from '../model/pipeline-state.js';

export interface PipelineBatchCompletedEvent {
  readonly type: 'pipeline.batch.completed';
  readonly pipelineId: string;
  readonly batchId: string;
  readonly records: number;
  readonly succeeded: number;
  readonly failed: number;
  /** `failed` by where the records failed: `source`, `transforms[<i>]` (its index in the definition), `sink`; empty when none failed. */
  readonly failedByStage: Readonly<Record<string, number>>;
  readonly deadLettered: number;
  readonly durationMs: number;
}

export interface PipelineBatchFailedEvent {
  readonly type: 'pipeline.batch.failed';
  readonly pipelineId: string;
  readonly batchId: string | undefined;
  readonly error: unknown;
  readonly retriable: boolean;
  /** Where it failed (see `failureStage`): `connectors`, `open`, `source`, `transforms`, `transforms[<i>]`, `deadLetter`, `sink`, `checkpoint`, `ack` or `timeout`. */
  readonly stage: string;
}

export interface PipelineStatusChangedEvent {
  readonly type: 'pipeline.status.changed';
  readonly pipelineId: string;
  readonly from: PipelineStatus;
  readonly to: PipelineStatus;
}

/** Closing a connector failed (the generation had ended; the next one opens fresh connectors). */
export interface PipelineConnectorCloseFailedEvent {
  readonly type: 'pipeline.connector.close-failed';
  readonly pipelineId: string;
  readonly error: unknown;
}

/** The journal refused something the pipeline records itself (a failure, the end of its source); it tries again after `retryInMs`. */
export interface PipelineJournalRefusedEvent {
  readonly type: 'pipeline.journal.refused';
  readonly pipelineId: string;
  readonly error: unknown;
  readonly retryInMs: number;
}

/**
 * The lag of the pipeline's source, per partition it reads now (all of them:
 * a partition missing from `partitions` is not read here any more). Sampled
 * after a poll, at most every `lagIntervalMs` per pipeline, from sources that
 * implement `Source.lag`.
 */
export interface PipelineSourceLagEvent {
  readonly type: 'pipeline.source.lag';
  readonly pipelineId: string;
  /** The source's type (`kafka`, ...). */
  readonly sourceType: string;
  readonly partitions: readonly SourceLag[];
}

/** Asking the source for its lag failed; the pipeline goes on and asks again after `lagIntervalMs`. */
export interface PipelineSourceLagFailedEvent {
  readonly type: 'pipeline.source.lag-failed';
  readonly pipelineId: string;
  readonly sourceType: string;
  readonly error: unknown;
}

declare module '../../instrumentation/instrumentation.js' {
  interface InstrumentationEventMap {
    'pipeline.batch.completed': PipelineBatchCompletedEvent;
    'pipeline.batch.failed': PipelineBatchFailedEvent;
    'pipeline.status.changed': PipelineStatusChangedEvent;
    'pipeline.connector.close-failed': PipelineConnectorCloseFailedEvent;
    'pipeline.journal.refused': PipelineJournalRefusedEvent;
    'pipeline.source.lag': PipelineSourceLagEvent;
    'pipeline.source.lag-failed': PipelineSourceLagFailedEvent;
  }
}
