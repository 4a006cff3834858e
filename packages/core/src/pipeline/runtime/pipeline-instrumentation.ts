/**
 * Instrumentation events of running pipelines; `apps/node` turns them into
 * the Prometheus metrics and logs of DOMAIN.md.
 */
import type { PipelineStatus } from '../model/pipeline-state.js';

export interface PipelineBatchCompletedEvent {
  readonly type: 'pipeline.batch.completed';
  readonly pipelineId: string;
  readonly batchId: string;
  readonly records: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly deadLettered: number;
  readonly durationMs: number;
}

export interface PipelineBatchFailedEvent {
  readonly type: 'pipeline.batch.failed';
  readonly pipelineId: string;
  readonly batchId: string | undefined;
  readonly error: unknown;
  readonly retriable: boolean;
}

export interface PipelineStatusChangedEvent {
  readonly type: 'pipeline.status.changed';
  readonly pipelineId: string;
  readonly from: PipelineStatus;
  readonly to: PipelineStatus;
}

declare module '../../instrumentation/instrumentation.js' {
  interface InstrumentationEventMap {
    'pipeline.batch.completed': PipelineBatchCompletedEvent;
    'pipeline.batch.failed': PipelineBatchFailedEvent;
    'pipeline.status.changed': PipelineStatusChangedEvent;
  }
}
