/**
 * The failures transforms report: per-record rejections (which the pipeline
 * skips, dead-letters or fails on, per the stage's `onError`), and stage-level
 * errors that affect the whole batch.
 */
import { DataflowError, isDataflowError } from '../errors/dataflow-error.js';

/** Why a transform rejected one record. */
export type RecordRejectionReason =
  | 'malformed-json'
  | 'not-an-object'
  | 'not-splittable'
  | 'lookup-miss'
  | 'invalid-lookup-key'
  | 'invalid-timestamp'
  | 'not-a-number'
  | 'late-record'
  | 'malformed-exposition'
  | 'too-large'
  | 'topic-mismatch';

/**
 * One record that a transform could not process. Not retriable: the same
 * record fails the same way again.
 *
 * @example
 * ```ts
 * const { failures } = await transform.apply(records, { now: Date.now() });
 * for (const { error } of failures) report(error.reason, error.message);
 * ```
 */
export class RecordRejectedError extends DataflowError<'transform/record-rejected'> {
  constructor(
    readonly reason: RecordRejectionReason,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super('transform/record-rejected', message, { retriable: false, ...options });
  }
}

/**
 * A lookup source failed for the whole batch (e.g. Redis unreachable). Retriable
 * unless the source's own DataFlow error says otherwise.
 *
 * @example
 * ```ts
 * if (isDataflowError(error, 'transform/lookup-failed') && error.retriable) scheduleRetry();
 * ```
 */
export class LookupFailedError extends DataflowError<'transform/lookup-failed'> {
  constructor(
    readonly lookup: string,
    options: { cause: unknown },
  ) {
    super('transform/lookup-failed', `Lookup ${lookup} failed: ${describeCause(options.cause)}`, {
      retriable: isDataflowError(options.cause) ? options.cause.retriable : true,
      cause: options.cause,
    });
  }
}

/**
 * A transform definition that cannot be turned into a transform, e.g. an enrich
 * stage naming a lookup that was not provided. Not retriable.
 *
 * @example
 * ```ts
 * createTransform(enrich({ lookup: 'customers', key: 'customerId', target: 'customer' }), { lookups: {} });
 * // throws TransformConfigurationError: Unknown lookup customers; provided: (none)
 * ```
 */
export class TransformConfigurationError extends DataflowError<'transform/misconfigured'> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('transform/misconfigured', message, { retriable: false, ...options });
  }
}

function describeCause(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
