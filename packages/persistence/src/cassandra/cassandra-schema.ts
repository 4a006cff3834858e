/**
 * The Cassandra tables of the journal, the snapshot store and the read
 * journal as versioned, forward-only migrations (`cql/NNNN-*.cql` next to
 * this file, keyspace placeholder `${keyspace}`), recorded in
 * `<keyspace>.schema_migrations` with the shared runner of
 * `../migrations/migrations.ts`:
 *
 * - `migrateCassandra()` creates the keyspace (with the replication it is
 *   given) and applies the missing migrations; it is what the CLI's
 *   `migrate` runs, and what `autoCreate: true` runs at start (development
 *   and tests);
 * - `checkCassandraSchema()` is the check a node runs at start otherwise: it
 *   reads the record and refuses a schema that is too old, naming the command;
 * - `journalSchemaFile()` renders everything as one CQL file for cqlsh
 *   (`packages/persistence/cql/001-journal.cql`,
 *   `docker/cassandra/init/001-journal.cql`; a unit test keeps them current),
 *   including the records of the migrations it applies.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { errors, types, type Client } from 'cassandra-driver';
import { DataflowError } from '@dataflow/core';
import {
  checkMigrations,
  loadMigrations,
  runMigrations,
  type AppliedMigration,
  type Migration,
  type MigrationResult,
  type MigrationTarget,
} from '../migrations/migrations.js';

/** How the keyspace is replicated (set when `migrateCassandra` creates it). */
export type KeyspaceReplication =
  | { readonly class: 'SimpleStrategy'; readonly replicationFactor: number }
  | { readonly class: 'NetworkTopologyStrategy'; readonly dataCenters: Readonly<Record<string, number>> };

/** The placeholder the CQL files use for the keyspace name. */
export const KEYSPACE_PLACEHOLDER = '${keyspace}';

/** The command an operator runs to upgrade a keyspace (named in `SchemaVersionError`). */
export const CASSANDRA_MIGRATE_COMMAND = 'dataflow migrate --journal cassandra';

/** Resolves from both `src/cassandra` and `dist/cassandra`: the .cql files stay in `src`. */
const CQL_DIR = new URL('../../src/cassandra/cql/', import.meta.url);

/** The folder holding the migration files (for tools that apply them their own way). */
export const CASSANDRA_CQL_DIR = fileURLToPath(CQL_DIR);

const KEYSPACE_NAME = /^[a-zA-Z][a-zA-Z0-9_]{0,47}$/;

/** How long a migration run may hold the keyspace's migration lock before another run may take it. */
const LOCK_TTL_SECONDS = 300;

/** Another migration run holds the keyspace's migration lock (retriable: it is released at the end of that run, or lapses). */
export class MigrationLockHeldError extends DataflowError<'schema/migration-locked'> {
  constructor(readonly keyspace: string) {
    super('schema/migration-locked', `Another migration run holds the lock of ${keyspace}.schema_migrations; it lapses within ${LOCK_TTL_SECONDS} s`, {
      retriable: true,
    });
  }
}

/** Throws unless `keyspace` is a plain, unquoted CQL identifier (it is pasted into statements). */
export function assertKeyspaceName(keyspace: string): void {
  if (!KEYSPACE_NAME.test(keyspace)) {
    throw new RangeError(`Invalid keyspace name "${keyspace}": use 1-48 characters of [a-zA-Z0-9_], starting with a letter`);
  }
}

let loaded: Promise<Migration[]> | undefined;

/** The Cassandra migrations shipped with this package, in order. */
export function cassandraMigrations(): Promise<Migration[]> {
  loaded ??= loadMigrations(CQL_DIR, 'cql');
  return loaded;
}

function replicationCql(replication: KeyspaceReplication): string {
  if (replication.class === 'SimpleStrategy') {
    return `{'class': 'SimpleStrategy', 'replication_factor': ${replication.replicationFactor}}`;
  }
  const dcs = Object.entries(replication.dataCenters).map(([dc, rf]) => `, '${dc}': ${rf}`).join('');
  return `{'class': 'NetworkTopologyStrategy'${dcs}}`;
}

const DEFAULT_REPLICATION: KeyspaceReplication = { class: 'SimpleStrategy', replicationFactor: 1 };

function checkedKeyspace(keyspace: string): string {
  if (keyspace !== KEYSPACE_PLACEHOLDER) assertKeyspaceName(keyspace);
  return keyspace;
}

/** The statements that create the keyspace and the migration record (before any migration). */
function bootstrapStatements(keyspace: string, replication: KeyspaceReplication): string[] {
  const ks = checkedKeyspace(keyspace);
  return [
    `CREATE KEYSPACE IF NOT EXISTS ${ks}
  WITH replication = ${replicationCql(replication)}`,
    // Version 0 is the migration lock (a row with a TTL), never a migration.
    `CREATE TABLE IF NOT EXISTS ${ks}.schema_migrations (
  version int PRIMARY KEY,
  name text,
  checksum text,
  applied_at timestamp)`,
  ];
}

/** The statements of one migration file for `keyspace`, in order (comments dropped). */
export function migrationStatements(migration: Migration, keyspace: string): string[] {
  const ks = checkedKeyspace(keyspace);
  return migration.text
    .replace(/--.*$/gm, '')
    .split(/;[ \t\r]*$/m)
    .map((statement) => statement.trim())
    .filter((statement) => statement !== '')
    .map((statement) => statement.replaceAll(KEYSPACE_PLACEHOLDER, ks));
}

/**
 * Every statement that creates the keyspace and all tables, in order; each is
 * idempotent (`IF NOT EXISTS`).
 *
 * @example
 * ```ts
 * for (const statement of await journalSchema('dataflow')) await client.execute(statement);
 * ```
 */
export async function journalSchema(keyspace: string, replication: KeyspaceReplication = DEFAULT_REPLICATION): Promise<string[]> {
  const migrations = await cassandraMigrations();
  return [...bootstrapStatements(keyspace, replication), ...migrations.flatMap((m) => migrationStatements(m, keyspace))];
}

/**
 * Everything as one CQL file for cqlsh: keyspace, migration record, every
 * migration and its record row (so that `checkCassandraSchema` accepts the
 * result and `migrateCassandra` later applies only newer migrations).
 */
export async function journalSchemaFile(keyspace: string, replication: KeyspaceReplication = DEFAULT_REPLICATION): Promise<string> {
  const ks = checkedKeyspace(keyspace);
  const migrations = await cassandraMigrations();
  const header =
    '-- DataFlow Cassandra journal, snapshot store and read journal: keyspace, migration record and every migration.\n' +
    '-- Generated from packages/persistence/src/cassandra/cql/*.cql by journalSchemaFile(); edit those, not this file.\n' +
    `-- Prefer \`${CASSANDRA_MIGRATE_COMMAND}\`, which applies only what is missing.\n\n`;
  const parts = [...bootstrapStatements(ks, replication)];
  for (const migration of migrations) {
    parts.push(...migrationStatements(migration, ks));
    parts.push(
      `INSERT INTO ${ks}.schema_migrations (version, name, checksum, applied_at) ` +
        `VALUES (${migration.version}, '${migration.name}', '${migration.checksum}', toTimestamp(now()))`,
    );
  }
  return header + parts.map((s) => `${s};\n`).join('\n');
}

function isMissingTable(error: unknown): boolean {
  // "unconfigured table" / "Keyspace ... does not exist" come back as invalid requests.
  return error instanceof errors.ResponseError && error.code === (types.responseErrorCodes.invalid as number);
}

/**
 * The migration target of one keyspace. A run takes the lock row (version 0,
 * `IF NOT EXISTS` with a TTL) so that one run applies at a time; every
 * statement is idempotent, so a run that died half-way is simply run again.
 */
export function cassandraMigrationTarget(client: Client, keyspace: string, replication: KeyspaceReplication = DEFAULT_REPLICATION): MigrationTarget {
  assertKeyspaceName(keyspace);
  const table = `${keyspace}.schema_migrations`;
  const quorum = { prepare: false, consistency: types.consistencies.quorum };
  const applied = async (): Promise<AppliedMigration[]> => {
    try {
      const result = await client.execute(`SELECT version, checksum FROM ${table}`, [], quorum);
      return result.rows
        .map((row) => ({ version: Number(row['version']), checksum: String(row['checksum']) }))
        .filter((m) => m.version > 0)
        .sort((a, b) => a.version - b.version);
    } catch (error) {
      if (isMissingTable(error)) return [];
      throw error;
    }
  };
  return {
    description: `Cassandra keyspace ${keyspace}`,
    migrateCommand: `${CASSANDRA_MIGRATE_COMMAND} --keyspace ${keyspace}`,
    applied,
    session: async (work) => {
      for (const statement of bootstrapStatements(keyspace, replication)) await client.execute(statement);
      const holder = randomUUID();
      const lwt = { prepare: true, consistency: types.consistencies.quorum, serialConsistency: types.consistencies.serial };
      for (let attempt = 0; ; attempt++) {
        const taken = await client.execute(`INSERT INTO ${table} (version, name) VALUES (0, ?) IF NOT EXISTS USING TTL ${LOCK_TTL_SECONDS}`, [holder], lwt);
        if (taken.wasApplied()) break;
        if (attempt >= 120) throw new MigrationLockHeldError(keyspace);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      try {
        return await work({
          applied,
          apply: async (migration) => {
            for (const statement of migrationStatements(migration, keyspace)) await client.execute(statement);
            await client.execute(
              `INSERT INTO ${table} (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`,
              [migration.version, migration.name, migration.checksum, new Date()],
              { prepare: true, consistency: types.consistencies.quorum },
            );
          },
        });
      } finally {
        await client.execute(`DELETE FROM ${table} WHERE version = 0 IF name = ?`, [holder], lwt);
      }
    },
  };
}

/**
 * Creates the keyspace if needed (with `replication`, default SimpleStrategy
 * 1) and applies the migrations it is missing; applies nothing when it is
 * current. What the CLI's `migrate` runs.
 *
 * @example
 * ```ts
 * const { applied, version } = await migrateCassandra(client, 'dataflow', { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3 } });
 * ```
 */
export async function migrateCassandra(client: Client, keyspace: string, replication?: KeyspaceReplication): Promise<MigrationResult> {
  return runMigrations(cassandraMigrationTarget(client, keyspace, replication), await cassandraMigrations());
}

/**
 * Fails with `SchemaVersionError` (naming the command to run) unless every
 * migration of this release is applied to `keyspace`; resolves with its
 * version. Reads one small table; changes nothing.
 */
export async function checkCassandraSchema(client: Client, keyspace: string): Promise<number> {
  return checkMigrations(cassandraMigrationTarget(client, keyspace), await cassandraMigrations());
}

/**
 * Creates the keyspace and applies the migrations (the earlier name of
 * `migrateCassandra`, kept for callers).
 */
export async function createJournalSchema(client: Client, keyspace: string, replication?: KeyspaceReplication): Promise<void> {
  await migrateCassandra(client, keyspace, replication);
}
