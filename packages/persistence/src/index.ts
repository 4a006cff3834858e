/**
 * `@dataflow/persistence`.
 */
export type { SqlExecutor, SqlQueryable, SqlQueryOptions } from './postgres/sql-executor.js';
export { pgPoolExecutor, type PgPoolExecutorOptions } from './postgres/pg-pool-executor.js';
export {
  checkPostgresSchema,
  ensureSchema,
  migratePostgres,
  migrationStatements,
  POSTGRES_MIGRATE_COMMAND,
  POSTGRES_SQL_DIR,
  postgresMigrations,
  postgresMigrationTarget,
  quoteSchema,
  schemaStatements,
} from './postgres/postgres-schema.js';
export {
  checkMigrations,
  checksumOf,
  loadMigrations,
  runMigrations,
  SchemaVersionError,
  type AppliedMigration,
  type Migration,
  type MigrationResult,
  type MigrationSession,
  type MigrationTarget,
} from './migrations/migrations.js';
export { isOutcomeUnknownDbError, isRetriableDbError } from './postgres/postgres-errors.js';
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
export {
  createCassandraPersistence,
  SingleWriterModeMismatchError,
  type CassandraConnection,
  type CassandraPersistence,
  type CassandraPersistenceOptions,
} from './cassandra/cassandra-persistence.js';
export type { CassandraPersistenceEvent, CassandraPersistenceSettings, ConsistencyName, SingleWriterMode } from './cassandra/cassandra-settings.js';
export { CASSANDRA_RECONNECT_MAX_MS, cassandraReconnection, isRetriableDriverError } from './cassandra/cassandra-settings.js';
export {
  claimCassandraKeyspace,
  KEYSPACE_CLAIM_KEY,
  KeyspaceClaimAbortedError,
  KeyspaceClaimedError,
  KeyspaceClaimLostError,
  type KeyspaceClaim,
  type KeyspaceClaimEvent,
  type KeyspaceClaimOptions,
} from './cassandra/keyspace-claim.js';
export {
  assertKeyspaceName,
  CASSANDRA_CQL_DIR,
  CASSANDRA_MIGRATE_COMMAND,
  cassandraMigrations,
  cassandraMigrationTarget,
  checkCassandraSchema,
  createJournalSchema,
  journalSchema,
  journalSchemaFile,
  migrateCassandra,
  MigrationLockHeldError,
  type KeyspaceReplication,
} from './cassandra/cassandra-schema.js';
export { CassandraJournal } from './cassandra/cassandra-journal.js';
export { CassandraReadJournal } from './cassandra/cassandra-read-journal.js';
export { CassandraSnapshotStore } from './cassandra/cassandra-snapshot-store.js';
export {
  DATA_DIR_LOCK_FILE,
  DataDirectoryLockedError,
  lockDataDirectory,
  type DataDirectoryHolder,
  type DataDirectoryLock,
} from './pglite/data-dir-lock.js';
export { initializeDataDirectory, pgliteStartParams, type PgliteMemoryOptions } from './pglite/pglite-data-dir.js';
