/**
 * Errors of the projection runner.
 */
import { DataflowError } from '@dataflow/core';

/** A handler failed and the recovery strategy gave up (`fail`, or `retry-and-fail` after its retries). Retriable: a restart resumes from the stored offset. */
export class ProjectionHandlerError extends DataflowError<'projection/handler-failed'> {
  constructor(
    readonly projection: string,
    message: string,
    options: { readonly cause: unknown; readonly attempts: number },
  ) {
    super('projection/handler-failed', `projection ${projection}: ${message}`, { retriable: true, cause: options.cause });
    this.attempts = options.attempts;
  }
  readonly attempts: number;
}

/**
 * The stored offset of a projection instance is no longer where this run
 * left it: another instance saved it (a slice range that moved to another
 * node while this one was still finishing a transaction), or management
 * moved it (a rebuild's swap, a set offset). The transaction that found it
 * is rolled back, so nothing is applied twice, and the run ends; retriable:
 * a restart resumes from the stored offset.
 */
export class ProjectionOffsetMovedError extends DataflowError<'projection/offset-moved'> {
  constructor(
    readonly projection: string,
    readonly key: string,
  ) {
    super('projection/offset-moved', `projection ${projection}/${key}: its stored offset was moved by another instance or by management since this run saved it; rolled back, the run resumes from the stored offset`, {
      retriable: true,
    });
  }
}
