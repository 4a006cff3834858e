/**
 * Errors of projection management.
 */
import { DataflowError } from '@dataflow/core';
import type { z } from 'zod';

/** One problem with an input, by field path (`id.name`, `offset.value`). */
export interface ProjectionInputIssue {
  readonly path: string;
  readonly message: string;
}

/** A management call got a malformed id, offset or tag; nothing was changed. Not retriable. */
export class InvalidProjectionInputError extends DataflowError<'projection/invalid-input'> {
  constructor(
    readonly input: string,
    readonly issues: readonly ProjectionInputIssue[],
  ) {
    super('projection/invalid-input', `Invalid ${input}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { retriable: false });
  }
}

/** The issues of a failed parse of `input`, with paths prefixed by the input's name. */
export function fieldErrorsOf(error: z.ZodError, input: string): ProjectionInputIssue[] {
  return error.issues.map((issue) => ({ path: [input, ...issue.path.map(String)].join('.'), message: issue.message }));
}
