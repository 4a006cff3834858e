/**
 * The filter transform: keeps the records for which a filter expression is
 * true. The expression is parsed once, when the transform is created (and
 * already when the definition is validated).
 */
import * as z from 'zod';
import { isDataflowError } from '../../errors/dataflow-error.js';
import { evaluateExpression } from '../expression/expression-evaluator.js';
import { parseExpression } from '../expression/expression-parser.js';
import { stageErrorPolicySchema } from '../stage-error-policy.js';
import type { StatelessTransform } from '../transform.js';

/**
 * Schema of a filter stage: `{ type: 'filter', expression, onError? }`.
 *
 * @example
 * ```ts
 * filterDefinitionSchema.parse({ type: 'filter', expression: 'value > 3' });
 * ```
 */
export const filterDefinitionSchema = z.strictObject({
  type: z.literal('filter'),
  expression: z.string({ error: 'Expected a filter expression (a string)' }).superRefine((text, ctx) => {
    try {
      parseExpression(text);
    } catch (error) {
      if (!isDataflowError(error, 'expression/syntax')) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
    }
  }),
  onError: stageErrorPolicySchema,
});

/** A validated filter stage definition. */
export type FilterDefinition = z.output<typeof filterDefinitionSchema>;

/**
 * Creates a filter transform. Filtering rejects no record: a record either
 * passes or is dropped.
 *
 * @example
 * ```ts
 * const t = createFilterTransform({ type: 'filter', expression: 'status == "ok"', onError: 'fail' }, 'transforms[0]');
 * t.apply([{ status: 'ok' }, { status: 'no' }], { now: 0 }); // { records: [{ status: 'ok' }], failures: [] }
 * ```
 */
export function createFilterTransform(definition: FilterDefinition, stage: string): StatelessTransform {
  const ast = parseExpression(definition.expression);
  return {
    kind: 'stateless',
    type: 'filter',
    stage,
    apply: (records) => ({ records: records.filter((record) => evaluateExpression(ast, record)), failures: [] }),
  };
}
