/**
 * The journal's tables: versioned, forward-only migrations (`sql/NNNN-*.sql`,
 * shipped with the package) recorded in `<schema>.schema_migrations`,
 * `migratePostgres()` to apply the missing ones (what the CLI's `migrate`
 * calls; development, tests and embedded PGlite run it at start), and the
 * version check a node runs at start against a server instead.
 */
import { fileURLToPath } from 'node:url';
import {
  checkMigrations,
  loadMigrations,
  runMigrations,
  type AppliedMigration,
  type Migration,
  type MigrationResult,
  type MigrationTarget,
} from '../migrations/migrations.js';
import { errorCode } from './postgres-errors.js';
import type { SqlExecutor, SqlQueryable } from './sql-executor.js';

/** Resolves from both `src/postgres` and `dist/postgres`: the .sql files stay in `src`. */
const SQL_DIR = new URL('../../src/postgres/sql/', import.meta.url);

/** The command an operator runs to upgrade a schema (named in `SchemaVersionError`). */
export const POSTGRES_MIGRATE_COMMAND = 'dataflow migrate --journal postgres';

/** SQLSTATEs of a missing schema or table: nothing was migrated yet. */
const UNDEFINED_TABLE = '42P01';
const INVALID_SCHEMA_NAME = '3F000';

let loaded: Promise<Migration[]> | undefined;

/** The Postgres migrations shipped with this package, in order. */
export function postgresMigrations(): Promise<Migration[]> {
  loaded ??= loadMigrations(SQL_DIR, 'sql');
  return loaded;
}

/** The folder holding the migration files (for DBAs and tools that apply them their own way). */
export const POSTGRES_SQL_DIR = fileURLToPath(SQL_DIR);

/** Checks a schema name and returns it as a quoted SQL identifier. */
export function quoteSchema(schema: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new RangeError(`Invalid schema name ${JSON.stringify(schema)}: use letters, digits and _ (at most 63)`);
  }
  return `"${schema}"`;
}

/** The statements of one migration file for `schema`, in order (psql's `:"schema"` filled in). */
export function migrationStatements(migration: Migration, schema: string): string[] {
  const quoted = quoteSchema(schema);
  return splitStatements(migration.text.replace(/--.*$/gm, '')).map((sql) => sql.replaceAll(':"schema"', quoted));
}

/** The statements of every migration for `schema`, in order. */
export async function schemaStatements(schema: string): Promise<string[]> {
  return (await postgresMigrations()).flatMap((migration) => migrationStatements(migration, schema));
}

/** Splits at each `;` that ends a line, except inside a dollar-quoted function body (`$$ ... $$`). */
function splitStatements(text: string): string[] {
  const pieces: string[] = [];
  let start = 0;
  let openQuote: string | undefined;
  for (const match of text.matchAll(/\$(?:[A-Za-z_]\w*)?\$|;[ \t\r]*$/gm)) {
    const [token] = match;
    if (token.startsWith('$')) {
      if (openQuote === undefined) openQuote = token;
      else if (token === openQuote) openQuote = undefined;
    } else if (openQuote === undefined) {
      pieces.push(text.slice(start, match.index));
      start = match.index + token.length;
    }
  }
  pieces.push(text.slice(start));
  return pieces.map((piece) => piece.trim()).filter((piece) => piece !== '');
}

/**
 * The migration target of one schema: the record is `<schema>.schema_migrations`;
 * a run is one transaction (Postgres DDL is transactional: all of it or
 * nothing) under an advisory lock per schema.
 */
export function postgresMigrationTarget(
  executor: SqlExecutor,
  schema: string,
  /** Another package's migrations in the same schema keep their own record table and command (e.g. projections). */
  options: { readonly recordTable?: string; readonly migrateCommand?: string } = {},
): MigrationTarget {
  const quoted = quoteSchema(schema);
  const recordTable = options.recordTable ?? 'schema_migrations';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(recordTable)) throw new RangeError(`Invalid record table name ${JSON.stringify(recordTable)}`);
  const table = `${quoted}.${recordTable}`;
  const readApplied = async (on: SqlQueryable): Promise<AppliedMigration[]> => {
    try {
      const rows = await on.query<{ version: number; checksum: string }>(`SELECT version, checksum FROM ${table} ORDER BY version`);
      return rows.map((row) => ({ version: Number(row.version), checksum: row.checksum }));
    } catch (error) {
      const code = errorCode(error);
      if (code === UNDEFINED_TABLE || code === INVALID_SCHEMA_NAME) return [];
      throw error;
    }
  };
  return {
    description: recordTable === 'schema_migrations' ? `Postgres schema ${quoted}` : `Postgres schema ${quoted} (${recordTable})`,
    migrateCommand: options.migrateCommand ?? `${POSTGRES_MIGRATE_COMMAND} --schema ${schema}`,
    applied: () => readApplied(executor),
    session: (work) =>
      executor.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`dataflow-ddl:${schema}`]);
        await tx.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
        await tx.query(
          `CREATE TABLE IF NOT EXISTS ${table} (
             version    INTEGER     PRIMARY KEY,
             name       TEXT        NOT NULL,
             checksum   TEXT        NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`,
        );
        return work({
          applied: () => readApplied(tx),
          apply: async (migration) => {
            for (const sql of migrationStatements(migration, schema)) await tx.query(sql);
            await tx.query(`INSERT INTO ${table} (version, name, checksum) VALUES ($1, $2, $3)`, [migration.version, migration.name, migration.checksum]);
          },
        });
      }),
  };
}

/**
 * Applies the migrations `schema` is missing, in one transaction; safe to
 * call concurrently (an advisory lock serializes callers) and again (it
 * applies nothing when the schema is current). What the CLI's `migrate` runs.
 *
 * @example
 * ```ts
 * const { applied, version } = await migratePostgres(pgPoolExecutor(pool, { ownsPool: false }), 'dataflow');
 * ```
 */
export async function migratePostgres(executor: SqlExecutor, schema: string): Promise<MigrationResult> {
  return runMigrations(postgresMigrationTarget(executor, schema), await postgresMigrations());
}

/**
 * Fails with `SchemaVersionError` (naming the command to run) unless every
 * migration of this release is applied to `schema`; resolves with its version.
 * Reads one small table; changes nothing.
 */
export async function checkPostgresSchema(executor: SqlExecutor, schema: string): Promise<number> {
  return checkMigrations(postgresMigrationTarget(executor, schema), await postgresMigrations());
}

/**
 * Applies missing migrations (the earlier name of `migratePostgres`, kept for callers).
 *
 * @example
 * ```ts
 * await ensureSchema(pgPoolExecutor(pool), 'dataflow');
 * ```
 */
export async function ensureSchema(executor: SqlExecutor, schema: string): Promise<void> {
  await migratePostgres(executor, schema);
}
