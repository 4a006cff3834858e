/**
 * `SqlExecutor` over PGlite (Postgres compiled to WebAssembly, in process),
 * so the Postgres stores run embedded on a data directory.
 */
import type { PGlite } from '@electric-sql/pglite';
import type { SqlExecutor, SqlQueryable } from '../postgres/sql-executor.js';

export interface PgliteExecutorOptions {
  /** Close the database on `close()`. Default true. */
  readonly ownsDatabase?: boolean;
}

/**
 * Wraps a PGlite instance. PGlite has one connection: its transactions run
 * one at a time, which the journal's ordering guarantees rely on anyway.
 *
 * @example
 * ```ts
 * const executor = pgliteExecutor(await PGlite.create('./data/journal'));
 * ```
 */
export function pgliteExecutor(db: PGlite, options: PgliteExecutorOptions = {}): SqlExecutor {
  const queryOn = async <Row extends object>(target: Pick<PGlite, 'query'>, sql: string, params: readonly unknown[] = []): Promise<Row[]> =>
    (await target.query<Row>(sql, [...params])).rows;
  return {
    query: (sql, params) => queryOn(db, sql, params),
    transaction: <T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T> => db.transaction((tx) => work({ query: (sql, params) => queryOn(tx, sql, params) })),
    async close(): Promise<void> {
      if (options.ownsDatabase !== false && !db.closed) await db.close();
    },
  };
}
