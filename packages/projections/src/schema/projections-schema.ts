/**
 * The projections' tables (offsets, management, the pipeline read models):
 * versioned, forward-only migrations (`sql/NNNN-*.sql`) recorded in
 * `<schema>.projection_schema_migrations`, applied by `migrateProjections`
 * (the CLI's `migrate`; tests and the embedded node run it at start).
 */
import {
  checkMigrations,
  loadMigrations,
  postgresMigrationTarget,
  runMigrations,
  type Migration,
  type MigrationResult,
  type MigrationTarget,
  type SqlExecutor,
} from '@dataflow/persistence';

/** Resolves from both `src/schema` and `dist/schema`: the .sql files stay in `src`. */
const SQL_DIR = new URL('../../src/schema/sql/', import.meta.url);

/** The command an operator runs to upgrade the projections' tables (it migrates the journal's tables and these, in the same schema). */
export const PROJECTIONS_MIGRATE_COMMAND = 'dataflow migrate --journal postgres';

let loaded: Promise<Migration[]> | undefined;

/** The migrations shipped with this package, in order. */
export function projectionMigrations(): Promise<Migration[]> {
  loaded ??= loadMigrations(SQL_DIR, 'sql');
  return loaded;
}

/** Where the projections' migrations are recorded in `schema` (for a CLI that lists or applies them). */
export function projectionsMigrationTarget(executor: SqlExecutor, schema: string): MigrationTarget {
  return target(executor, schema);
}

function target(executor: SqlExecutor, schema: string): MigrationTarget {
  return postgresMigrationTarget(executor, schema, { recordTable: 'projection_schema_migrations', migrateCommand: `${PROJECTIONS_MIGRATE_COMMAND} --schema ${schema}` });
}

/**
 * Applies the projection migrations `schema` is missing (one transaction,
 * safe to call concurrently and again).
 *
 * @example
 * ```ts
 * await migrateProjections(pgPoolExecutor(pool, { ownsPool: false }), 'dataflow');
 * ```
 */
export async function migrateProjections(executor: SqlExecutor, schema: string): Promise<MigrationResult> {
  return runMigrations(target(executor, schema), await projectionMigrations());
}

/** Fails with `SchemaVersionError` (naming the command) unless every projection migration is applied. */
export async function checkProjectionsSchema(executor: SqlExecutor, schema: string): Promise<number> {
  return checkMigrations(target(executor, schema), await projectionMigrations());
}
