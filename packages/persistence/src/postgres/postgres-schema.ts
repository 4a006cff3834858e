/**
 * The journal's tables: where the DDL lives (`sql/*.sql`, shipped with the
 * package for DBAs and migration tools) and `ensureSchema()` to apply it
 * during development and tests.
 */
import { readFile } from 'node:fs/promises';
import type { SqlExecutor } from './sql-executor.js';

/** The DDL files in the order they apply; each uses psql's `:"schema"` for the schema name. */
const DDL_FILES = ['0001-journal.sql'];

/** Resolves from both `src/postgres` and `dist/postgres`: the .sql files stay in `src`. */
const SQL_DIR = new URL('../../src/postgres/sql/', import.meta.url);

/** Checks a schema name and returns it as a quoted SQL identifier. */
export function quoteSchema(schema: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new RangeError(`Invalid schema name ${JSON.stringify(schema)}: use letters, digits and _ (at most 63)`);
  }
  return `"${schema}"`;
}

/** The statements of the DDL for `schema`, in order. */
export async function schemaStatements(schema: string): Promise<string[]> {
  const quoted = quoteSchema(schema);
  const statements: string[] = [];
  for (const file of DDL_FILES) {
    const text = await readFile(new URL(file, SQL_DIR), 'utf8');
    const withoutComments = text.replace(/--.*$/gm, '');
    for (const statement of withoutComments.split(/;\s*$/m)) {
      const sql = statement.trim();
      if (sql !== '') statements.push(sql.replaceAll(':"schema"', quoted));
    }
  }
  return statements;
}

/**
 * Creates the schema, tables and indexes if they do not exist. Safe to call
 * concurrently (an advisory lock serializes callers).
 *
 * @example
 * ```ts
 * await ensureSchema(pgPoolExecutor(pool), 'dataflow');
 * ```
 */
export async function ensureSchema(executor: SqlExecutor, schema: string): Promise<void> {
  const statements = await schemaStatements(schema);
  await executor.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`dataflow-ddl:${schema}`]);
    for (const sql of statements) await tx.query(sql);
  });
}
