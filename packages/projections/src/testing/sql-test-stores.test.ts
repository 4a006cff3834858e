/**
 * The two SQL stores the package's integration tests run on (not a test
 * itself: vitest only runs `*.{unit,int,e2e}.test.ts`; not part of the
 * build). `postgres`: a schema of its own on the test server, named after
 * the test file (and numbered from the second store a file opens), dropped
 * before and after; `pglite`: an in-memory PGlite.
 * Each has the journal's tables (the persistence plugin is open on it).
 *
 * @example
 * ```ts
 * const stores = sqlTestStores(import.meta.url);
 * describe.each(Object.keys(stores))('... on %s', (name) => { ... await stores[name]() ... });
 * ```
 */
import { PGlite } from '@electric-sql/pglite';
import { createPostgresPersistence, createSqlPersistence, pgliteExecutor, pgPoolExecutor, type PostgresPersistence, type SqlExecutor } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';

export interface SqlTestStore {
  /** `postgres` or `pglite`. */
  readonly name: string;
  readonly schema: string;
  readonly executor: SqlExecutor;
  readonly persistence: PostgresPersistence;
  close(): Promise<void>;
}

/** Opens a store by name; `testFile` (the caller's `import.meta.url`) names the Postgres schema, so test files never share one. */
export function sqlTestStores(testFile: string, options: { readonly poolMax?: number } = {}): { readonly postgres: () => Promise<SqlTestStore>; readonly pglite: () => Promise<SqlTestStore> } & Record<string, () => Promise<SqlTestStore>> {
  let opened = 0;
  return {
    postgres: async () => {
      const schema = ++opened === 1 ? testNamespace(testFile) : testNamespace(testFile, String(opened));
      const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: options.poolMax ?? 4 });
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
      return {
        name: 'postgres',
        schema,
        executor: pgPoolExecutor(pool, { ownsPool: false }),
        persistence,
        close: async () => {
          await persistence.close();
          await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await pool.end();
        },
      };
    },
    pglite: async () => {
      const executor = pgliteExecutor(await PGlite.create());
      const persistence = await createSqlPersistence(executor, { schema: 'dataflow', ensureSchema: true });
      return { name: 'pglite', schema: 'dataflow', executor, persistence, close: () => persistence.close() };
    },
  };
}
