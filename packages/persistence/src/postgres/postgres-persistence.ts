/**
 * Builds the Postgres persistence plugin (journal, snapshot store, read
 * journal) on an injected `pg.Pool` or any `SqlExecutor`.
 */
import { SerializerRegistry, type PersistencePlugin } from '@dataflow/core';
import type pg from 'pg';
import { pgPoolExecutor } from './pg-pool-executor.js';
import { PostgresJournal } from './postgres-journal.js';
import { PostgresReadJournal } from './postgres-read-journal.js';
import { ensureSchema } from './postgres-schema.js';
import { PostgresSnapshotStore } from './postgres-snapshot-store.js';
import { PostgresStore } from './postgres-store.js';
import type { SqlExecutor } from './sql-executor.js';

export interface PostgresPersistenceOptions {
  /** Schema holding the tables; default `dataflow`. */
  readonly schema?: string;
  /** Create schema and tables if missing (development, tests, the embedded node). Default false: apply `sql/*.sql` yourself. */
  readonly ensureSchema?: boolean;
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
}

/**
 * Persistence on a Postgres server through an injected pool. `close()` ends
 * the pool unless `ownsPool: false`.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const persistence = await createPostgresPersistence({
 *   pool: new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 }),
 *   schema: 'dataflow',
 *   ensureSchema: true,
 * });
 * ```
 */
export function createPostgresPersistence(
  options: PostgresPersistenceOptions & { readonly pool: pg.Pool; readonly ownsPool?: boolean },
): Promise<PostgresPersistence> {
  const executor = pgPoolExecutor(options.pool, options.ownsPool === undefined ? {} : { ownsPool: options.ownsPool });
  return createSqlPersistence(executor, options);
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
  if (options.ensureSchema === true) await ensureSchema(executor, schema);
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
    close: () => store.close(),
  };
}
