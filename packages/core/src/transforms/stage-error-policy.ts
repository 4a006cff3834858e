/**
 * The per-stage error policy: what the pipeline does with a record a stage
 * rejects. Declared on the source, on each transform and on the sink.
 */
import * as z from 'zod';

/**
 * `skip` drops the record and counts it as failed; `fail` fails the batch (and
 * with it the pipeline, unless the error is retriable); `dead-letter` sends the
 * record with its error to the pipeline's `deadLetter` target.
 *
 * @example
 * ```ts
 * const stage = { type: 'json-parse', field: 'line', onError: 'dead-letter' satisfies StageErrorPolicy };
 * ```
 */
export type StageErrorPolicy = 'skip' | 'fail' | 'dead-letter';

/** Schema of `onError`; defaults to `fail`, so nothing is dropped unless asked. */
export const stageErrorPolicySchema = z
  .enum(['skip', 'fail', 'dead-letter'], { error: "onError must be one of 'skip', 'fail', 'dead-letter'" })
  .default('fail');
