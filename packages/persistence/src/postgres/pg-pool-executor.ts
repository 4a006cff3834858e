/**
 * `SqlExecutor` over a `pg.Pool`: each statement or transaction on one pooled
 * connection, which gets the journal's session settings (`statement_timeout`,
 * `lock_timeout`) once; a connection that failed is discarded, not reused; a
 * failure before the statement was sent is marked as such (see
 * `isNotSent`), so a lost connection afterwards can be told apart.
 */
import type pg from 'pg';
import { errorCode, markNotSent } from './postgres-errors.js';
import type { SqlExecutor, SqlQueryable } from './sql-executor.js';

export interface PgPoolExecutorOptions {
  /** End the pool on `close()`. Default true; pass false for a pool shared with other code. */
  readonly ownsPool?: boolean;
  /**
   * Server-side limit of one statement (`statement_timeout`), set on each
   * connection before its first use by the executor. Default 30 000 ms; 0 for none.
   */
  readonly statementTimeoutMs?: number;
  /** Longest wait for a lock (`lock_timeout`), e.g. an append waiting for its persistence id. Default 10 000 ms; 0 for none. */
  readonly lockTimeoutMs?: number;
}

/** Connections that have the no-op error listener, across every executor (several share one pool: the node's sinks). */
const listening = new WeakSet<pg.PoolClient>();
/** The session settings each connection has now (executors over one pool may set different timeouts). */
const sessionOf = new WeakMap<pg.PoolClient, string>();

/**
 * Wraps a `pg.Pool` (injected, so the application controls its size and settings).
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const executor = pgPoolExecutor(new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres', max: 10 }), {
 *   statementTimeoutMs: 30_000,
 *   lockTimeoutMs: 10_000,
 * });
 * ```
 */
export function pgPoolExecutor(pool: pg.Pool, options: PgPoolExecutorOptions = {}): SqlExecutor {
  const statementTimeoutMs = timeoutSetting('statementTimeoutMs', options.statementTimeoutMs ?? 30_000);
  const lockTimeoutMs = timeoutSetting('lockTimeoutMs', options.lockTimeoutMs ?? 10_000);
  const sessionSql = `SET statement_timeout = ${statementTimeoutMs}; SET lock_timeout = ${lockTimeoutMs}`;
  /** A connection with the session settings; any failure here happened before the caller's statement was sent. */
  const connect = async (): Promise<pg.PoolClient> => {
    let client: pg.PoolClient | undefined;
    try {
      client = await pool.connect();
      if (!listening.has(client)) {
        // While checked out, a lost connection is reported to the statement in flight (or the next one);
        // pg also emits it as an 'error' event, which would crash the process without a listener.
        // Once per connection, whatever number of executors share its pool.
        client.on('error', () => undefined);
        listening.add(client);
      }
      if (sessionOf.get(client) !== sessionSql) {
        await client.query(sessionSql);
        sessionOf.set(client, sessionSql);
      }
      return client;
    } catch (error) {
      client?.release(error instanceof Error ? error : true);
      throw markNotSent(error);
    }
  };
  const run = async <Row extends object>(client: pg.PoolClient, sql: string, params: readonly unknown[] = [], name?: string): Promise<Row[]> => {
    const values = params.map(toPgParam);
    const result = await client.query<Row & pg.QueryResultRow>(name === undefined ? { text: sql, values } : { name, text: sql, values });
    return result.rows;
  };
  return {
    async query(sql, params, queryOptions) {
      const client = await connect();
      let broken: Error | undefined;
      try {
        return await run(client, sql, params, queryOptions?.name);
      } catch (error) {
        if (connectionUnusable(error)) broken = error instanceof Error ? error : new Error(String(error));
        throw error;
      } finally {
        client.release(broken);
      }
    },
    async transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T> {
      const client = await connect();
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

function timeoutSetting(name: string, ms: number): number {
  if (!Number.isInteger(ms) || ms < 0) throw new RangeError(`${name} must be a non-negative integer, got ${ms}`);
  return ms;
}

/**
 * Whether the connection must be discarded after `error`: anything but an
 * error the server reported on a healthy session (a SQLSTATE outside
 * connection failures and shutdowns), e.g. a socket error or a lost connection.
 */
function connectionUnusable(error: unknown): boolean {
  // pg's DatabaseError (an answer of the server) carries a severity; socket errors do not.
  const fromServer = typeof error === 'object' && error !== null && 'severity' in error;
  const code = errorCode(error) ?? '';
  return !fromServer || code.startsWith('08') || code.startsWith('57P');
}

/** `pg` sends a `Buffer` as bytea; hand it one for any `Uint8Array`. */
function toPgParam(value: unknown): unknown {
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return value;
}
