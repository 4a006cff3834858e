/**
 * The definition of a Cassandra sink, validated with zod (strict: an unknown
 * option is an error naming it). Credentials are accepted here and never
 * appear in an error message, a log or an event.
 */
import { parseFieldPath } from '@dataflow/core';
import * as z from 'zod';
import { parseCqlType, UnsupportedCqlTypeError } from './cassandra-values.js';

const IDENTIFIER = /^[a-z][a-z0-9_]{0,47}$/;

/** A CQL identifier the sink writes unquoted-equivalent: lower case, starting with a letter (so never `__proto__`). */
export const cqlIdentifierSchema = z
  .string()
  .regex(IDENTIFIER, 'a lower-case CQL name: a letter, then letters, digits or _ (at most 48)');


/**
 * An object keyed by column names. The keys are checked on the raw input, so
 * a key zod would not carry over (`__proto__`) is reported, never dropped.
 */
function columnRecord<Value extends z.ZodType>(value: Value) {
  return z.preprocess((input, ctx) => {
    if (typeof input === 'object' && input !== null && !Array.isArray(input)) {
      for (const key of Object.keys(input)) {
        if (!IDENTIFIER.test(key)) {
          ctx.issues.push({ code: 'custom', path: [key], input, message: `"${key.slice(0, 60)}" is not a lower-case CQL name: a letter, then letters, digits or _ (at most 48)` });
        }
      }
    }
    return input;
  }, z.record(z.string(), value));
}

const contactPointSchema = z
  .string()
  .regex(/^[^\s:/]+(?::\d{1,5})?$/, 'expected host or host:port, e.g. 127.0.0.1:9042');

const fieldPathText = z.string({ error: 'Expected a field path (a string such as "a.b[0]")' }).superRefine((text, ctx) => {
  try {
    parseFieldPath(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: `Invalid field path: ${error instanceof Error ? error.message : String(error)}` });
  }
});

const cqlTypeText = z.string().superRefine((text, ctx) => {
  try {
    parseCqlType(text);
  } catch (error) {
    if (!(error instanceof UnsupportedCqlTypeError)) throw error;
    ctx.addIssue({ code: 'custom', message: error.message });
  }
});

/** Consistency levels a write may use. */
export const CASSANDRA_WRITE_CONSISTENCIES = ['ANY', 'ONE', 'TWO', 'THREE', 'QUORUM', 'ALL', 'LOCAL_QUORUM', 'EACH_QUORUM', 'LOCAL_ONE'] as const;

const createTableSchema = z
  .strictObject({
    /** A complete `CREATE TABLE IF NOT EXISTS ...` statement, run as written. */
    cql: z.string().regex(/^\s*create\s+table\s+if\s+not\s+exists\s/i, 'a statement starting with CREATE TABLE IF NOT EXISTS').optional(),
    /** Column name -> CQL type (e.g. `double`, `frozen<map<text, text>>`). */
    columns: columnRecord(cqlTypeText).optional(),
    partitionKey: z.array(cqlIdentifierSchema).min(1, 'at least one partition key column').optional(),
    clusteringKey: z
      .array(z.union([cqlIdentifierSchema, z.strictObject({ column: cqlIdentifierSchema, order: z.enum(['ASC', 'DESC']).default('ASC') })]))
      .default([]),
  })
  .superRefine((value, ctx) => {
    if (value.cql !== undefined) {
      for (const field of ['columns', 'partitionKey'] as const) {
        if (value[field] !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: 'give either cql or columns + partitionKey, not both' });
      }
      if (value.clusteringKey.length > 0) ctx.addIssue({ code: 'custom', path: ['clusteringKey'], message: 'give either cql or columns + partitionKey, not both' });
      return;
    }
    if (value.columns === undefined) ctx.addIssue({ code: 'custom', path: ['columns'], message: 'the column types are needed to create the table (or give cql)' });
    if (value.partitionKey === undefined) ctx.addIssue({ code: 'custom', path: ['partitionKey'], message: 'the partition key is needed to create the table (or give cql)' });
    const columns = value.columns ?? {};
    const seen = new Set<string>();
    const keys = [
      ...(value.partitionKey ?? []).map((column, i) => ({ column, path: ['partitionKey', i] })),
      ...value.clusteringKey.map((entry, i) => ({ column: typeof entry === 'string' ? entry : entry.column, path: ['clusteringKey', i] })),
    ];
    for (const { column, path } of keys) {
      if (!Object.hasOwn(columns, column)) ctx.addIssue({ code: 'custom', path, message: `column "${column}" is not in createTable.columns` });
      if (seen.has(column)) ctx.addIssue({ code: 'custom', path, message: `column "${column}" is in the primary key twice` });
      seen.add(column);
    }
  });

/**
 * Schema of a Cassandra sink definition.
 *
 * @example
 * ```ts
 * cassandraSinkDefinitionSchema.parse({
 *   type: 'cassandra', contactPoints: ['127.0.0.1:9042'], localDataCenter: 'datacenter1',
 *   keyspace: 'metrics', table: 'samples',
 *   columns: { metric_name: 'metric_name', job: 'job', timestamp: 'timestamp', value: 'value', labels: 'labels' },
 * });
 * ```
 */
export const cassandraSinkDefinitionSchema = z.strictObject({
  type: z.literal('cassandra'),
  contactPoints: z.array(contactPointSchema).min(1, 'at least one contact point (host or host:port) is needed'),
  localDataCenter: z.string().min(1),
  keyspace: cqlIdentifierSchema,
  table: cqlIdentifierSchema,
  credentials: z.strictObject({ username: z.string().min(1).max(256), password: z.string().min(1).max(1024) }).optional(),
  /** Column name -> field path of the record whose value it takes. Every primary key column must be mapped. */
  columns: columnRecord(fieldPathText).refine((columns) => Object.keys(columns).length > 0, 'map at least one column to a field'),
  consistency: z.enum(CASSANDRA_WRITE_CONSISTENCIES).default('LOCAL_QUORUM'),
  /** Statements (single inserts or partition batches) in flight at once per sink. */
  maxConcurrency: z.number().int().min(1).max(1024).default(32),
  /** Most rows in one unlogged partition batch. */
  maxBatchRows: z.number().int().min(1).max(1000).default(100),
  /** A row larger than this (about, as bound) is rejected to the dead-letter queue instead of written. */
  maxRowBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024),
  /** Per-statement client timeout. */
  requestTimeoutMs: z.number().int().positive().max(600_000).default(12_000),
  /** Create the table on open when it is missing. */
  createTable: createTableSchema.optional(),
});

/** A Cassandra sink definition as written by a user. */
export type CassandraSinkDefinition = z.input<typeof cassandraSinkDefinitionSchema>;
/** A validated Cassandra sink definition with its defaults applied. */
export type ParsedCassandraSinkDefinition = z.output<typeof cassandraSinkDefinitionSchema>;
