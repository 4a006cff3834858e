/**
 * Validates a connector definition against its zod schema and turns zod's
 * issues into an `InvalidConnectorOptionsError` listing every bad field, so a
 * user sees all problems of a definition at once.
 */
import { InvalidConnectorOptionsError } from '@dataflow/core';
import type * as z from 'zod';

/**
 * Parses `definition` with `schema`; throws `InvalidConnectorOptionsError` (field-level issues) when it does not fit.
 *
 * @example
 * ```ts
 * const def = parseDefinition('file', fileSinkDefinitionSchema, { type: 'file', path: 'out.jsonl' });
 * ```
 */
export function parseDefinition<Schema extends z.ZodType>(connector: string, schema: Schema, definition: unknown): z.output<Schema> {
  const result = schema.safeParse(definition);
  if (result.success) return result.data;
  throw new InvalidConnectorOptionsError(
    connector,
    result.error.issues.map((issue) => ({
      path: issue.path.length === 0 ? '(definition)' : issue.path.map(String).join('.'),
      message: issue.message,
    })),
  );
}
