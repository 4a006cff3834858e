/**
 * The JSON-parse transform: parses a string field (for text sources, the raw
 * line) as JSON. With a `target` the parsed value goes there; without one the
 * parsed object's fields are merged into the record. Malformed JSON rejects the
 * record with the parser's reason, so the stage's `onError` can dead-letter it.
 */
import * as z from 'zod';
import type { DataRecord, JsonValue } from '../../connector/data-record.js';
import { parseFieldPath } from '../expression/expression-parser.js';
import { defineField, formatFieldPath, getPath, isJsonObject, withoutPath, withPath, type MutableRecord } from '../field-path/field-path.js';
import { fieldPathSchema } from '../field-path/field-path-schema.js';
import { stageErrorPolicySchema } from '../stage-error-policy.js';
import { checkRecordBounds } from '../../pipeline/definition/value-bounds.js';
import { perRecordTransform, rejectRecord, type StatelessTransform } from '../transform.js';
import type { RecordRejectedError } from '../transform-errors.js';

/**
 * Schema of a json-parse stage. The source field is removed after parsing
 * unless `keepSource` is set (or it is also the target).
 *
 * @example
 * ```ts
 * jsonParseDefinitionSchema.parse({ type: 'json-parse', field: 'line', onError: 'dead-letter' });
 * ```
 */
export const jsonParseDefinitionSchema = z.strictObject({
  type: z.literal('json-parse'),
  field: fieldPathSchema,
  target: fieldPathSchema.optional(),
  keepSource: z.boolean().default(false),
  onError: stageErrorPolicySchema,
});

/** A validated json-parse stage definition. */
export type JsonParseDefinition = z.output<typeof jsonParseDefinitionSchema>;

/**
 * Creates a json-parse transform.
 *
 * @example
 * ```ts
 * const t = createJsonParseTransform(jsonParseDefinitionSchema.parse({ type: 'json-parse', field: 'line' }), 'transforms[0]');
 * t.apply([{ line: '{"a":1}' }, { line: '{oops' }], { now: 0 });
 * // records: [{ a: 1 }], failures: [{ record: { line: '{oops' }, error: malformed-json … }]
 * ```
 */
/** `record`, or the rejection of a record the parsed JSON made deeper than 64 levels or larger than 1 MiB (before anything recursive meets it). */
function bounded(record: DataRecord): readonly DataRecord[] | RecordRejectedError {
  const issue = checkRecordBounds(record);
  if (issue === undefined) return [record];
  return rejectRecord('too-large', `The parsed JSON makes a record out of bounds: ${issue.path === '' ? '' : `${issue.path}: `}${issue.message}`);
}

export function createJsonParseTransform(definition: JsonParseDefinition, stage: string): StatelessTransform {
  const field = parseFieldPath(definition.field);
  const target = definition.target === undefined ? undefined : parseFieldPath(definition.target);
  const removeSource = !definition.keepSource && (target === undefined || formatFieldPath(target) !== formatFieldPath(field));

  return perRecordTransform('json-parse', stage, (record) => {
    const text = getPath(record, field);
    if (typeof text !== 'string') {
      return rejectRecord('malformed-json', `Field ${definition.field} is ${text === undefined ? 'missing' : `not a string`}, expected JSON text`);
    }
    let parsed: JsonValue;
    try {
      parsed = JSON.parse(text) as JsonValue;
    } catch (error) {
      return rejectRecord('malformed-json', `Field ${definition.field} is not valid JSON: ${(error as Error).message}`, error);
    }
    const base: DataRecord = removeSource ? withoutPath(record, field) : record;
    if (target !== undefined) return bounded(withPath(base, target, parsed));
    if (!isJsonObject(parsed)) {
      return rejectRecord('not-an-object', `Field ${definition.field} holds JSON ${parsed === null ? 'null' : Array.isArray(parsed) ? 'array' : typeof parsed}, expected an object to merge (or set a target)`);
    }
    const merged: MutableRecord = { ...base };
    for (const [key, value] of Object.entries(parsed)) defineField(merged, key, value);
    return bounded(merged);
  });
}
