/**
 * The map transform: renames, sets and drops fields by path. With
 * `keepUnmapped` (the default) the output starts as the input record; without
 * it the output holds only the renamed and set fields.
 *
 * Order: renames, then sets (copies read the input record), then drops. A
 * rename or copy whose source field is missing sets nothing.
 */
import * as z from 'zod';
import type { DataRecord, JsonValue } from '../../connector/data-record.js';
import { parseFieldPath } from '../expression/expression-parser.js';
import { getPath, withoutPath, withPath, type FieldPath } from '../field-path/field-path.js';
import { fieldPathSchema } from '../field-path/field-path-schema.js';
import { stageErrorPolicySchema } from '../stage-error-policy.js';
import { perRecordTransform, type StatelessTransform } from '../transform.js';

const setEntrySchema = z
  .strictObject({ to: fieldPathSchema, value: z.json().optional(), from: fieldPathSchema.optional() })
  .superRefine((entry, ctx) => {
    if (('value' in entry) === ('from' in entry)) {
      ctx.addIssue({ code: 'custom', message: "Give exactly one of 'value' (a constant) or 'from' (a field path to copy)" });
    }
  });

/**
 * Schema of a map stage.
 *
 * @example
 * ```ts
 * mapDefinitionSchema.parse({
 *   type: 'map',
 *   rename: [{ from: 'ts', to: 'event.timestamp' }],
 *   set: [{ to: 'source', value: 'kafka' }, { to: 'id', from: 'meta.key' }],
 *   drop: ['debug'],
 * });
 * ```
 */
export const mapDefinitionSchema = z.strictObject({
  type: z.literal('map'),
  rename: z.array(z.strictObject({ from: fieldPathSchema, to: fieldPathSchema })).default([]),
  set: z.array(setEntrySchema).default([]),
  drop: z.array(fieldPathSchema).default([]),
  keepUnmapped: z.boolean().default(true),
  onError: stageErrorPolicySchema,
});

/** A validated map stage definition. */
export type MapDefinition = z.output<typeof mapDefinitionSchema>;

type SetOperation = { readonly to: FieldPath; readonly value: JsonValue } | { readonly to: FieldPath; readonly from: FieldPath };

/**
 * Creates a map transform. It never rejects a record.
 *
 * @example
 * ```ts
 * const t = createMapTransform(mapDefinitionSchema.parse({ type: 'map', rename: [{ from: 'a', to: 'b' }] }), 'transforms[0]');
 * t.apply([{ a: 1, c: 2 }], { now: 0 }); // records: [{ c: 2, b: 1 }]
 * ```
 */
export function createMapTransform(definition: MapDefinition, stage: string): StatelessTransform {
  const renames = definition.rename.map((entry) => ({ from: parseFieldPath(entry.from), to: parseFieldPath(entry.to) }));
  const sets: SetOperation[] = definition.set.map((entry) =>
    entry.from === undefined
      ? { to: parseFieldPath(entry.to), value: (entry.value ?? null) as JsonValue }
      : { to: parseFieldPath(entry.to), from: parseFieldPath(entry.from) },
  );
  const drops = definition.drop.map((path) => parseFieldPath(path));
  const keepUnmapped = definition.keepUnmapped;

  return perRecordTransform('map', stage, (input) => {
    let output: DataRecord = keepUnmapped ? input : {};
    for (const { from, to } of renames) {
      const value = getPath(input, from);
      if (value === undefined) continue;
      if (keepUnmapped) output = withoutPath(output, from);
      output = withPath(output, to, value);
    }
    for (const operation of sets) {
      const value = 'from' in operation ? getPath(input, operation.from) : operation.value;
      if (value !== undefined) output = withPath(output, operation.to, value);
    }
    for (const path of drops) output = withoutPath(output, path);
    return [output];
  });
}
