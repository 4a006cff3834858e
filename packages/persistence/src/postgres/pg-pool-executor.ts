/**
 * `SqlExecutor` over a `pg.Pool`: each transaction on one pooled connection;
 * a connection that failed mid-transaction is discarded, not reused.
 */
import type pg from 'pg';
import type { SqlExecutor, SqlQueryable } from './sql-executor.js';

export interface PgPoolExecutorOptions {
  /** End the pool on `close()`. Default true; pass false for a pool shared with other code. */
  readonly ownsPool?: boolean;
}

/**
 * Wraps a `pg.Pool` (injected, so the application controls its size and settings).
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const executor = pgPoolExecutor(new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres', max: 10 }));
 * ```
 */
export function pgPoolExecutor(pool: pg.Pool, options: PgPoolExecutorOptions = {}): SqlExecutor {
  const run = async <Row extends object>(client: pg.Pool | pg.PoolClient, sql: string, params: readonly unknown[] = [], name?: string): Promise<Row[]> => {
    const values = params.map(toPgParam);
    const result = await client.query<Row & pg.QueryResultRow>(name === undefined ? { text: sql, values } : { name, text: sql, values });
    return result.rows;
  };
  return {
    query: (sql, params, queryOptions) => run(pool, sql, params, queryOptions?.name),
    async transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await work({ query: (sql, params, queryOptions) => run(client, sql, params, queryOptions?.name) });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackError) {
          // The connection is unusable; it is destroyed below and the original error is reported.
          broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
        }
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async close(): Promise<void> {
      if (options.ownsPool !== false) await pool.end();
    },
  };
}

/** `pg` sends a `Buffer` as bytea; hand it one for any `Uint8Array`. */
function toPgParam(value: unknown): unknown {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return value;
}
