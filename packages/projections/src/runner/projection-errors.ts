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
