/**
 * Builds the Postgres persistence plugin (journal, snapshot store, read
 * journal) on an injected `pg.Pool` or any `SqlExecutor`.
 */
import { isDataflowError, JournalReadError, SerializerRegistry, type PersistencePlugin } from '@dataflow/core';
import { isRetriableDbError, messageOf } from './postgres-errors.js';
import type pg from 'pg';
import { pgPoolExecutor, type PgPoolExecutorOptions } from './pg-pool-executor.js';
import { PostgresJournal } from './postgres-journal.js';
import { PostgresReadJournal } from './postgres-read-journal.js';
import { checkPostgresSchema, migratePostgres } from './postgres-schema.js';
import { PostgresSnapshotStore } from './postgres-snapshot-store.js';
import { PostgresStore } from './postgres-store.js';
import type { SqlExecutor } from './sql-executor.js';

export interface PostgresPersistenceOptions {
  /** Schema holding the tables; default `dataflow`. */
  readonly schema?: string;
  /**
   * Apply missing migrations at start (development, tests, the embedded
   * node). Default false: start only checks that every migration of this
   * release is applied and otherwise fails with `SchemaVersionError` naming
   * the command to run (`migratePostgres()` is what it runs).
   */
  readonly ensureSchema?: boolean;
  /** Check the schema version at start when `ensureSchema` is off. Default true; false skips the check (tools that manage the schema themselves). */
  readonly checkSchema?: boolean;
  /** Serializers and payload size limit; default JSON with a 1 MiB limit. */
  readonly serializers?: SerializerRegistry;
  /** Epoch milliseconds for event timestamps; default `Date.now`. */
  readonly now?: () => number;
  /** How often live queries look for new rows; default 250 ms. */
  readonly pollIntervalMs?: number;
  /** Rows per query round trip; default 500. */
  readonly pageSize?: number;
}

/** The Postgres plugin with its concrete parts. */
export interface PostgresPersistence extends PersistencePlugin {
  readonly journal: PostgresJournal;
  readonly snapshots: PostgresSnapshotStore;
  readonly queries: PostgresReadJournal;
  /** The database the stores use, for read models and projection offsets kept beside the journal (closed with the plugin). */
  readonly executor: SqlExecutor;
  /** The schema of the journal's tables. */
  readonly schema: string;
}

/**
 * Persistence on a Postgres server through an injected pool. `close()` ends
 * the pool unless `ownsPool: false`. Refuses a schema that misses a
 * migration of this release (`SchemaVersionError`), unless `ensureSchema`
 * applies them. Each connection gets `statement_timeout` and `lock_timeout`
 * (`statementTimeoutMs`, default 30 s; `lockTimeoutMs`, default 10 s).
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const persistence = await createPostgresPersistence({
 *   pool: new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 }),
 *   schema: 'dataflow', // migrated beforehand with migratePostgres() / the CLI's migrate
 * });
 * ```
 */
export async function createPostgresPersistence(
  options: PostgresPersistenceOptions & { readonly pool: pg.Pool } & PgPoolExecutorOptions,
): Promise<PostgresPersistence> {
  const { ownsPool, statementTimeoutMs, lockTimeoutMs } = options;
  const executor = pgPoolExecutor(options.pool, {
    ...(ownsPool === undefined ? {} : { ownsPool }),
    ...(statementTimeoutMs === undefined ? {} : { statementTimeoutMs }),
    ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }),
  });
  try {
    return await createSqlPersistence(executor, options);
  } catch (error) {
    await executor.close();
    throw error;
  }
}

/**
 * Persistence on any `SqlExecutor` (a pool, PGlite, or a custom one); used by
 * `createPostgresPersistence` and `createPglitePersistence`.
 *
 * @example
 * ```ts
 * const persistence = await createSqlPersistence(pgPoolExecutor(pool, { ownsPool: false }), { schema: 'tenant_a' });
 * ```
 */
export async function createSqlPersistence(executor: SqlExecutor, options: PostgresPersistenceOptions = {}): Promise<PostgresPersistence> {
  const schema = options.schema ?? 'dataflow';
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const pageSize = options.pageSize ?? 500;
  if (!(pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be positive, got ${pollIntervalMs}`);
  if (!Number.isInteger(pageSize) || pageSize <= 0) throw new RangeError(`pageSize must be a positive integer, got ${pageSize}`);
  if (options.ensureSchema === true) await migratePostgres(executor, schema);
  else if (options.checkSchema !== false) await checkSchemaAtStart(executor, schema);
  const store = new PostgresStore({
    executor,
    schema,
    serializers: options.serializers ?? new SerializerRegistry(),
    now: options.now ?? Date.now,
    pollIntervalMs,
    pageSize,
  });
  return {
    journal: new PostgresJournal(store),
    snapshots: new PostgresSnapshotStore(store),
    queries: new PostgresReadJournal(store),
    executor,
    schema,
    close: () => store.close(),
  };
}

/** The version check at start; a failure to reach the database is a retriable read error. */
async function checkSchemaAtStart(executor: SqlExecutor, schema: string): Promise<void> {
  try {
    await checkPostgresSchema(executor, schema);
  } catch (error) {
    if (isDataflowError(error)) throw error;
    throw new JournalReadError(`Checking the schema version of "${schema}" failed: ${messageOf(error)}`, { retriable: isRetriableDbError(error), cause: error });
  }
}
