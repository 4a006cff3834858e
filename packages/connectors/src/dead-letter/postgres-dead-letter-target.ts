/**
 * The Postgres dead-letter target: letters go into `<schema>.dead_letters`
 * (DDL in `dead-letters.sql`), all letters of a `send` in one statement, so
 * they are stored all or none. Connection trouble is retriable; a letter the
 * database refuses is not.
 */
import { ConnectorError, type DeadLetter, type DeadLetterTarget } from '@dataflow/core';
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';

/**
 * Schema of a Postgres dead-letter target definition.
 *
 * @example
 * ```ts
 * postgresDeadLetterDefinitionSchema.parse({ type: 'postgres', connectionString: 'postgres://postgres@127.0.0.1:5432/dataflow', schema: 'ops' });
 * ```
 */
export const postgresDeadLetterDefinitionSchema = z.strictObject({
  type: z.literal('postgres'),
  connectionString: z.string().min(1),
  schema: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'A schema name of lower-case letters, digits and _ (at most 63), not starting with a digit')
    .default('public'),
  /** Run `ensureSchema()` on open. */
  createSchema: z.boolean().default(true),
  maxConnections: z.number().int().min(1).max(100).default(2),
});

/** A Postgres dead-letter target definition as written by a user. */
export type PostgresDeadLetterDefinition = z.input<typeof postgresDeadLetterDefinitionSchema>;

/** What the Postgres target may share with its application. */
export interface PostgresDeadLetterDependencies {
  /** A pool owned by the caller (not ended by `close`); without it the target creates its own from `connectionString`. */
  readonly pool?: pg.Pool;
  /**
   * Told when an idle pooled connection dies (server restart, network). The
   * pool drops that connection by itself and no letter is affected: a `send`
   * that cannot reconnect fails on its own. Default: ignore.
   */
  readonly onIdleConnectionError?: (error: ConnectorError) => void;
}

// Resolves to src/dead-letter/dead-letters.sql both from src/ and from dist/ (the package ships src/).
const DDL_FILE = new URL('../../src/dead-letter/dead-letters.sql', import.meta.url);

/**
 * The DDL of the dead-letter table in `schema`, from `dead-letters.sql`.
 *
 * @example
 * ```ts
 * const sql = await deadLettersDdl('ops'); // CREATE SCHEMA IF NOT EXISTS "ops"; ...
 * ```
 */
export async function deadLettersDdl(schema: string): Promise<string> {
  const template = await readFile(DDL_FILE, 'utf8');
  return template.replaceAll('{{schema}}', pg.escapeIdentifier(schema));
}

/** SQLSTATE classes and codes that a retry can get past. */
const TRANSIENT_SQLSTATE = /^(08|53|57P0[123]|40001|40P01)/;
const TRANSIENT_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

function postgresError(message: string, cause: unknown): ConnectorError {
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : '';
  const detail = cause instanceof Error ? cause.message : String(cause);
  const retriable = TRANSIENT_SQLSTATE.test(code) || TRANSIENT_NODE_CODES.has(code) || /Connection terminated|timeout/i.test(detail);
  return new ConnectorError('postgres', `${message}: ${detail}`, { retriable, cause });
}

/**
 * Stores dead letters in a Postgres table.
 *
 * @example
 * ```ts
 * const target = new PostgresDeadLetterTarget({ type: 'postgres', connectionString: process.env.DATABASE_URL ?? '', schema: 'ops' });
 * await target.open(); // creates ops.dead_letters when missing
 * await target.send(letters);
 * await target.close();
 * ```
 */
export class PostgresDeadLetterTarget implements DeadLetterTarget {
  readonly type = 'postgres';
  private readonly definition: z.output<typeof postgresDeadLetterDefinitionSchema>;
  private readonly sharedPool: pg.Pool | undefined;
  private readonly onIdleConnectionError: (error: ConnectorError) => void;
  private pool: pg.Pool | undefined;

  constructor(definition: PostgresDeadLetterDefinition, dependencies: PostgresDeadLetterDependencies = {}) {
    this.definition = parseDefinition('postgres', postgresDeadLetterDefinitionSchema, definition);
    this.sharedPool = dependencies.pool;
    this.onIdleConnectionError = dependencies.onIdleConnectionError ?? (() => undefined);
  }

  /** The qualified table name, e.g. `"ops"."dead_letters"`. */
  get table(): string {
    return `${pg.escapeIdentifier(this.definition.schema)}.${pg.escapeIdentifier('dead_letters')}`;
  }

  async open(): Promise<void> {
    await this.close();
    const pool =
      this.sharedPool ??
      new pg.Pool({ connectionString: this.definition.connectionString, max: this.definition.maxConnections, connectionTimeoutMillis: 10_000 });
    // Without a listener, an idle connection's error would crash the process.
    if (this.sharedPool === undefined) pool.on('error', (error) => this.onIdleConnectionError(postgresError('idle connection failed', error)));
    this.pool = pool;
    try {
      if (this.definition.createSchema) await this.ensureSchema();
      else await pool.query('SELECT 1');
    } catch (error) {
      await this.close();
      throw error instanceof ConnectorError ? error : postgresError('cannot connect', error);
    }
  }

  /** Creates the schema, table and index when missing (idempotent; serialized by an advisory lock between concurrent callers). */
  async ensureSchema(): Promise<void> {
    const pool = this.requirePool();
    const ddl = await deadLettersDdl(this.definition.schema);
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw postgresError('cannot connect', error);
    }
    try {
      await client.query('BEGIN');
      await client.query("SELECT pg_advisory_xact_lock(hashtext('dataflow.dead_letters'))");
      await client.query(ddl);
      await client.query('COMMIT');
      client.release();
    } catch (error) {
      client.release(true);
      throw postgresError(`cannot create ${this.table}`, error);
    }
  }

  async send(letters: readonly DeadLetter[]): Promise<void> {
    const pool = this.requirePool();
    if (letters.length === 0) return;
    try {
      await pool.query(
        `INSERT INTO ${this.table}
           (pipeline_id, stage, stage_name, error_message, error_tag, retriable, attempt, payload, batch_id, failed_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::boolean[], $7::int[], $8::jsonb[], $9::text[], $10::timestamptz[])`,
        [
          letters.map((l) => l.pipelineId),
          letters.map((l) => l.stage),
          letters.map((l) => l.stageName),
          letters.map((l) => l.error.message),
          letters.map((l) => l.error.tag ?? null),
          letters.map((l) => l.error.retriable),
          letters.map((l) => l.attempt),
          letters.map((l) => JSON.stringify(l.payload)),
          letters.map((l) => l.batchId ?? null),
          letters.map((l) => new Date(l.failedAt).toISOString()),
        ],
      );
    } catch (error) {
      throw postgresError(`cannot insert ${letters.length} dead letters into ${this.table}`, error);
    }
  }

  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    if (pool !== undefined && pool !== this.sharedPool) await pool.end();
  }

  private requirePool(): pg.Pool {
    if (this.pool === undefined) throw new ConnectorError('postgres', 'used before open', { retriable: false });
    return this.pool;
  }
}
