/**
 * The flat-map transform: splits one field (an array, or a string cut by a
 * delimiter) into one output record per element, each a copy of the input with
 * the element under the target field. An empty array yields no record.
 */
import * as z from 'zod';
import type { DataRecord, JsonValue } from '../../connector/data-record.js';
import { parseFieldPath } from '../expression/expression-parser.js';
import { formatFieldPath, getPath, withoutPath, withPath } from '../field-path/field-path.js';
import { fieldPathSchema } from '../field-path/field-path-schema.js';
import { stageErrorPolicySchema } from '../stage-error-policy.js';
import { perRecordTransform, rejectRecord, type StatelessTransform } from '../transform.js';

/**
 * Schema of a flat-map stage. `target` defaults to `field`; when it differs,
 * the source field is removed unless `keepSource` is set.
 *
 * @example
 * ```ts
 * flatMapDefinitionSchema.parse({ type: 'flat-map', field: 'tags', delimiter: ',', target: 'tag' });
 * ```
 */
export const flatMapDefinitionSchema = z.strictObject({
  type: z.literal('flat-map'),
  field: fieldPathSchema,
  target: fieldPathSchema.optional(),
  delimiter: z.string().min(1, 'The delimiter must not be empty').optional(),
  keepSource: z.boolean().default(false),
  onError: stageErrorPolicySchema,
});

/** A validated flat-map stage definition. */
export type FlatMapDefinition = z.output<typeof flatMapDefinitionSchema>;

/**
 * Creates a flat-map transform. A record whose field is missing or neither an
 * array nor (with a delimiter) a string is rejected as `not-splittable`.
 *
 * @example
 * ```ts
 * const t = createFlatMapTransform(flatMapDefinitionSchema.parse({ type: 'flat-map', field: 'ids' }), 'transforms[0]');
 * t.apply([{ ids: [1, 2], n: 'x' }], { now: 0 }); // records: [{ ids: 1, n: 'x' }, { ids: 2, n: 'x' }]
 * ```
 */
export function createFlatMapTransform(definition: FlatMapDefinition, stage: string): StatelessTransform {
  const field = parseFieldPath(definition.field);
  const target = definition.target === undefined ? field : parseFieldPath(definition.target);
  const removeSource = !definition.keepSource && formatFieldPath(field) !== formatFieldPath(target);
  const { delimiter } = definition;

  return perRecordTransform('flat-map', stage, (record) => {
    const value = getPath(record, field);
    let elements: readonly JsonValue[];
    if (Array.isArray(value)) elements = value;
    else if (typeof value === 'string' && delimiter !== undefined) elements = value.split(delimiter);
    else {
      const expected = delimiter === undefined ? 'an array' : 'an array or a string';
      return rejectRecord('not-splittable', `Field ${definition.field} is ${describeValue(value)}, expected ${expected}`);
    }
    const base: DataRecord = removeSource ? withoutPath(record, field) : record;
    return elements.map((element) => withPath(base, target, element));
  });
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  return `a ${Array.isArray(value) ? 'array' : typeof value}`;
}
