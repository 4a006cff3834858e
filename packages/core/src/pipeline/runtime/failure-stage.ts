/**
 * Where in a pipeline a batch failed, for the `stage` of the
 * `pipeline.batch.failed` event (and the `stage` label of
 * `pipeline_errors_total` in apps/node). Pure: it reads the cycle as it was
 * before the event that failed it.
 */
import { isDataflowError } from '../../errors/dataflow-error.js';
import type { BatchCycle, CycleEvent } from './batch-cycle-types.js';
import type { StageFailedError } from './pipeline-protocol.js';

/**
 * The stage a failure belongs to: a record that failed a stage whose policy is
 * `fail` names that stage (`source`, `transforms[<i>]`, `sink`,
 * `deadLetter`); otherwise the phase the cycle was in: `open` (connectors
 * opening), `source` (a poll), `transforms` (a stage-level error while
 * preparing, e.g. a lookup), `deadLetter`, `sink`, `checkpoint` (the journal),
 * `ack` (committing the source offset) or `timeout`.
 *
 * @example
 * ```ts
 * failureStage(polling, { type: 'failed', batchId: undefined, error }, error); // 'source'
 * ```
 */
export function failureStage(before: BatchCycle, event: CycleEvent, error: unknown): string {
  if (isDataflowError(error, 'pipeline/stage-failed')) return (error as StageFailedError).at;
  switch (event.type) {
    case 'timeout':
      return 'timeout';
    case 'write-failed':
    case 'written':
      return 'sink';
    case 'failed':
      break;
    default:
      return 'pipeline';
  }
  if (before.mode === 'opening') return 'open';
  const front = before.front;
  const back = before.back;
  if (event.batchId === undefined) return front.stage === 'polling' ? 'source' : 'ack';
  if (back.stage === 'checkpointing' && back.batches[back.batches.length - 1]?.batchId === event.batchId) return 'checkpoint';
  if ('batch' in front && front.batch.batchId === event.batchId) {
    if (front.stage === 'preparing') return 'transforms';
    if (front.stage === 'dead-lettering') return 'deadLetter';
    if (front.stage === 'writing') return 'sink';
  }
  return 'pipeline';
}
