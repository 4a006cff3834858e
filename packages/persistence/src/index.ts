/**
 * `@dataflow/persistence`.
 */
export type { SqlExecutor, SqlQueryable } from './postgres/sql-executor.js';
export { pgPoolExecutor, type PgPoolExecutorOptions } from './postgres/pg-pool-executor.js';
export { ensureSchema, schemaStatements } from './postgres/postgres-schema.js';
export { isRetriableDbError } from './postgres/postgres-errors.js';
export {
  createPostgresPersistence,
  createSqlPersistence,
  type PostgresPersistence,
  type PostgresPersistenceOptions,
} from './postgres/postgres-persistence.js';
export { PostgresJournal } from './postgres/postgres-journal.js';
export { PostgresReadJournal } from './postgres/postgres-read-journal.js';
export { PostgresSnapshotStore } from './postgres/postgres-snapshot-store.js';
export { pgliteExecutor, type PgliteExecutorOptions } from './pglite/pglite-executor.js';
export { createPglitePersistence, type PglitePersistenceOptions } from './pglite/pglite-persistence.js';
