/**
 * The schema of a field path option in a transform definition: a string that
 * must parse as a path, so a bad path is reported when the definition is
 * validated, with its position.
 */
import * as z from 'zod';
import { isDataflowError } from '../../errors/dataflow-error.js';
import { parseFieldPath } from '../expression/expression-parser.js';

/**
 * A field path written as text, e.g. `order.items[0]["unit-price"]`.
 *
 * @example
 * ```ts
 * fieldPathSchema.safeParse('a..b').success; // false: Expected a field name after '.' at position 2, found '.'
 * ```
 */
export const fieldPathSchema = z.string({ error: 'Expected a field path (a string such as "a.b[0]")' }).superRefine((text, ctx) => {
  try {
    parseFieldPath(text);
  } catch (error) {
    if (!isDataflowError(error, 'expression/syntax')) throw error;
    ctx.addIssue({ code: 'custom', message: `Invalid field path: ${error.message}` });
  }
});
