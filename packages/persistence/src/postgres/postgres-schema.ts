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
    for (const sql of splitStatements(text.replace(/--.*$/gm, ''))) statements.push(sql.replaceAll(':"schema"', quoted));
  }
  return statements;
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
