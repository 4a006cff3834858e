/**
 * The small query interface the Postgres stores run on, so the same SQL runs
 * on a `pg.Pool` (a server) or on PGlite (embedded, a data directory).
 */

/** How to run one statement. */
export interface SqlQueryOptions {
  /**
   * Prepare the statement once per connection under this name and reuse it
   * (pg's named statements). One name must always go with the same SQL text.
   * Executors without prepared statements ignore it.
   */
  readonly name?: string;
}

/** Runs one statement with `$1...` parameters and returns its rows. */
export interface SqlQueryable {
  query<Row extends object>(sql: string, params?: readonly unknown[], options?: SqlQueryOptions): Promise<Row[]>;
}

/**
 * A database the stores can use: statements, transactions and close.
 *
 * @example
 * ```ts
 * const executor = pgPoolExecutor(new pg.Pool({ connectionString }));
 * await executor.transaction(async (tx) => {
 *   await tx.query('INSERT INTO t (a) VALUES ($1)', [1]);
 * });
 * ```
 */
export interface SqlExecutor extends SqlQueryable {
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /** Releases the database (ends the pool or closes PGlite) when the executor owns it. */
  close(): Promise<void>;
}
