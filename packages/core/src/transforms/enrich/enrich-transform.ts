/**
 * The enrich transform: looks up each record's key in a named `LookupSource`
 * (one batched `get` per batch) and sets the found value at the target field.
 * A key with no entry follows `onMiss`: keep the record unchanged, drop it, or
 * reject it (`lookup-miss`) so the stage's `onError` decides.
 */
import * as z from 'zod';
import type { DataRecord, JsonValue } from '../../connector/data-record.js';
import { parseFieldPath } from '../expression/expression-parser.js';
import { getPath, withPath } from '../field-path/field-path.js';
import { fieldPathSchema } from '../field-path/field-path-schema.js';
import { stageErrorPolicySchema } from '../stage-error-policy.js';
import { LookupFailedError } from '../transform-errors.js';
import { rejectRecord, type RecordFailure, type StatelessTransform } from '../transform.js';
import type { LookupSource } from './lookup-source.js';

/**
 * Schema of an enrich stage. `lookup` names a lookup source the runtime
 * provides (definitions are plain data and cannot hold a connection).
 *
 * @example
 * ```ts
 * enrichDefinitionSchema.parse({ type: 'enrich', lookup: 'customers', key: 'customerId', target: 'customer', onMiss: 'drop' });
 * ```
 */
export const enrichDefinitionSchema = z.strictObject({
  type: z.literal('enrich'),
  lookup: z.string().min(1, 'Name the lookup source'),
  key: fieldPathSchema,
  target: fieldPathSchema,
  onMiss: z.enum(['keep', 'drop', 'fail'], { error: "onMiss must be one of 'keep', 'drop', 'fail'" }).default('keep'),
  onError: stageErrorPolicySchema,
});

/** A validated enrich stage definition. */
export type EnrichDefinition = z.output<typeof enrichDefinitionSchema>;

/**
 * Creates an enrich transform over `source`. Keys are strings; a number key is
 * looked up by its decimal text, a missing or null key counts as a miss, any
 * other key value rejects the record (`invalid-lookup-key`). A failing lookup
 * rejects the whole batch with `LookupFailedError`.
 *
 * @example
 * ```ts
 * const t = createEnrichTransform(
 *   enrichDefinitionSchema.parse({ type: 'enrich', lookup: 'customers', key: 'customerId', target: 'customer' }),
 *   'transforms[1]',
 *   new InMemoryLookupSource({ c1: { name: 'Ada' } }),
 * );
 * await t.apply([{ customerId: 'c1' }], { now: 0 }); // records: [{ customerId: 'c1', customer: { name: 'Ada' } }]
 * ```
 */
export function createEnrichTransform(definition: EnrichDefinition, stage: string, source: LookupSource): StatelessTransform {
  const keyPath = parseFieldPath(definition.key);
  const target = parseFieldPath(definition.target);
  const { onMiss, lookup } = definition;

  return {
    kind: 'stateless',
    type: 'enrich',
    stage,
    async apply(records) {
      const failures: RecordFailure[] = [];
      const keyed: { record: DataRecord; key: string | undefined }[] = [];
      for (const record of records) {
        const value = getPath(record, keyPath);
        if (value === undefined || value === null) keyed.push({ record, key: undefined });
        else if (typeof value === 'string' || typeof value === 'number') keyed.push({ record, key: String(value) });
        else {
          failures.push({
            record,
            stage,
            error: rejectRecord('invalid-lookup-key', `Lookup key ${definition.key} is a ${Array.isArray(value) ? 'array' : typeof value}, expected a string or number`),
          });
        }
      }
      const keys = [...new Set(keyed.flatMap(({ key }) => (key === undefined ? [] : [key])))];
      let found: ReadonlyMap<string, JsonValue>;
      try {
        found = keys.length === 0 ? new Map() : await source.get(keys);
      } catch (error) {
        throw new LookupFailedError(lookup, { cause: error });
      }
      const output: DataRecord[] = [];
      for (const { record, key } of keyed) {
        const value = key === undefined ? undefined : found.get(key);
        if (value !== undefined) {
          output.push(withPath(record, target, value));
        } else if (onMiss === 'keep') {
          output.push(record);
        } else if (onMiss === 'fail') {
          const what = key === undefined ? `no ${definition.key}` : `key ${JSON.stringify(key)}`;
          failures.push({ record, stage, error: rejectRecord('lookup-miss', `Lookup ${lookup} has no entry for ${what}`) });
        }
      }
      return { records: output, failures };
    },
  };
}
