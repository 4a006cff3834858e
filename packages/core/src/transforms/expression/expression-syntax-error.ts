/**
 * The error a malformed filter expression or field path produces: it names the
 * position (0-based character offset) and what the parser expected there.
 */
import { DataflowError } from '../../errors/dataflow-error.js';

/**
 * A filter expression or field path that cannot be parsed. Never retriable.
 *
 * @example
 * ```ts
 * try {
 *   parseExpression('status == ');
 * } catch (error) {
 *   if (isDataflowError(error, 'expression/syntax')) report(error.message);
 *   // Expected a value at position 10, found end of expression
 * }
 * ```
 */
export class ExpressionSyntaxError extends DataflowError<'expression/syntax'> {
  constructor(
    /** 0-based character offset in the source text where the problem was found. */
    readonly position: number,
    /** What the parser expected at `position`, e.g. `a value` or `')'`. */
    readonly expected: string,
    /** A short description of what was found instead. */
    readonly found: string,
    /** The full message, when it says more than "expected X, found Y". */
    message = `Expected ${expected} at position ${position}, found ${found}`,
  ) {
    super('expression/syntax', message, { retriable: false });
  }
}
