/**
 * The Postgres dead-letter target: letters go into `<schema>.dead_letters`
 * (DDL in `dead-letters.sql`), all letters of a `send` in one statement, so
 * they are stored all or none. It runs over a `SqlExecutor`: its own pool
 * from `connectionString`, a pool shared with the application, or a database
 * the application owns (a node's embedded PGlite). Connection trouble is
 * retriable; a letter the database refuses is not.
 */
import { ConnectorError, InvalidConnectorOptionsError, type DeadLetter, type DeadLetterTarget } from '@dataflow/core';
import { isRetriableDbError, pgPoolExecutor, type SqlExecutor } from '@dataflow/persistence';
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
  /** Not needed when the application passes a shared pool or database (a node uses its own database then). */
  connectionString: z.string().min(1).optional(),
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
   * A database owned by the caller (not closed by `close`), used instead of a
   * pool: e.g. a node's embedded PGlite. Wins over `pool`; a definition with
   * its own `connectionString` is given neither by the connector factory.
   */
  readonly executor?: SqlExecutor;
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

/** The DDL as single statements (PGlite runs one statement per query); the file has no `;` inside a statement. */
async function ddlStatements(schema: string): Promise<string[]> {
  const withoutComments = (await deadLettersDdl(schema))
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('--'))
    .join('\n');
  return withoutComments
    .split(';')
    .map((statement) => statement.trim())
    .filter((statement) => statement !== '');
}

/** A failure of the database as the target's error (retriable when a retry can get past it). */
export function deadLetterDbError(message: string, cause: unknown): ConnectorError {
  if (cause instanceof ConnectorError) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new ConnectorError('postgres', `${message}: ${detail}`, { retriable: isRetriableDbError(cause) || /timeout/i.test(detail), cause });
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
  private readonly sharedExecutor: SqlExecutor | undefined;
  private readonly onIdleConnectionError: (error: ConnectorError) => void;
  private db: SqlExecutor | undefined;

  constructor(definition: PostgresDeadLetterDefinition, dependencies: PostgresDeadLetterDependencies = {}) {
    this.definition = parseDefinition('postgres', postgresDeadLetterDefinitionSchema, definition);
    if (this.definition.connectionString === undefined && dependencies.pool === undefined && dependencies.executor === undefined) {
      throw new InvalidConnectorOptionsError('postgres', [{ path: 'connectionString', message: 'a connection string is needed when no shared pool or database is given' }]);
    }
    this.sharedPool = dependencies.pool;
    this.sharedExecutor = dependencies.executor;
    this.onIdleConnectionError = dependencies.onIdleConnectionError ?? (() => undefined);
  }

  /** The qualified table name, e.g. `"ops"."dead_letters"`. */
  get table(): string {
    return deadLettersTable(this.definition.schema);
  }

  async open(): Promise<void> {
    await this.close();
    const db = this.sharedExecutor ?? this.poolExecutor();
    this.db = db;
    try {
      if (this.definition.createSchema) await this.ensureSchema();
      else await db.query('SELECT 1');
    } catch (error) {
      await this.close();
      throw deadLetterDbError('cannot connect', error);
    }
  }

  /** The shared pool, or a pool of the target's own from `connectionString` (ended by `close` only when it is the target's). */
  private poolExecutor(): SqlExecutor {
    if (this.sharedPool !== undefined) return pgPoolExecutor(this.sharedPool, { ownsPool: false, lockTimeoutMs: 0 });
    const pool = new pg.Pool({ connectionString: this.definition.connectionString, max: this.definition.maxConnections, connectionTimeoutMillis: 10_000 });
    // Without a listener, an idle connection's error would crash the process.
    pool.on('error', (error) => this.onIdleConnectionError(deadLetterDbError('idle connection failed', error)));
    return pgPoolExecutor(pool, { ownsPool: true, lockTimeoutMs: 0 });
  }

  /** Creates the schema, table and indexes when missing (idempotent; serialized by an advisory lock between concurrent callers). */
  async ensureSchema(): Promise<void> {
    const db = this.requireDb();
    const statements = await ddlStatements(this.definition.schema);
    try {
      await db.transaction(async (tx) => {
        await tx.query("SELECT pg_advisory_xact_lock(hashtext('dataflow.dead_letters'))");
        for (const statement of statements) await tx.query(statement);
      });
    } catch (error) {
      throw deadLetterDbError(`cannot create ${this.table}`, error);
    }
  }

  async send(letters: readonly DeadLetter[]): Promise<void> {
    const db = this.requireDb();
    if (letters.length === 0) return;
    try {
      // Every value as text, cast by Postgres: the same parameters work on a server and on PGlite.
      await db.query(
        `INSERT INTO ${this.table}
           (pipeline_id, stage, stage_name, error_message, error_tag, retriable, attempt, payload, batch_id, failed_at)
         SELECT c1, c2, c3, c4, c5, c6::boolean, c7::integer, c8::jsonb, c9, c10::timestamptz
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
             AS l(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10)`,
        [
          letters.map((l) => l.pipelineId),
          letters.map((l) => l.stage),
          letters.map((l) => l.stageName),
          letters.map((l) => l.error.message),
          letters.map((l) => l.error.tag ?? null),
          letters.map((l) => String(l.error.retriable)),
          letters.map((l) => String(l.attempt)),
          letters.map((l) => JSON.stringify(l.payload)),
          letters.map((l) => l.batchId ?? null),
          letters.map((l) => new Date(l.failedAt).toISOString()),
        ],
      );
    } catch (error) {
      throw deadLetterDbError(`cannot insert ${letters.length} dead letters into ${this.table}`, error);
    }
  }

  async close(): Promise<void> {
    const db = this.db;
    this.db = undefined;
    if (db !== undefined && db !== this.sharedExecutor) await db.close();
  }

  private requireDb(): SqlExecutor {
    if (this.db === undefined) throw new ConnectorError('postgres', 'used before open', { retriable: false });
    return this.db;
  }
}

/** The qualified dead-letter table of `schema`, e.g. `"ops"."dead_letters"`. */
export function deadLettersTable(schema: string): string {
  return `${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier('dead_letters')}`;
}
