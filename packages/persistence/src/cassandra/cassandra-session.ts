/**
 * The plugin's use of one driver `Client`: prepared statements only, a bound
 * on statements in flight, consistency per call, and paged reads as async
 * iterables. Journal, snapshot store and read journal share one session.
 */
import { policies, type Client, type QueryOptions, type types } from 'cassandra-driver';
import type { ResolvedSettings } from './cassandra-settings.js';

export type Row = types.Row;

export interface StatementOptions {
  readonly consistency: types.consistencies;
  /** Safe for the driver to retry (same keys and values every time). */
  readonly idempotent: boolean;
  readonly serialConsistency?: types.consistencies;
  /**
   * A time on `settings.leaseClock` after which the statement must not be sent
   * (the end of a writer lease's validity). Checked when the statement leaves
   * the in-flight queue, right before it is handed to the driver; the driver
   * then neither retries nor re-sends it (no retry policy, not idempotent, so
   * no speculative execution) and stops waiting for its answer when the lease
   * could lapse on the server. A statement whose deadline passed while queued
   * fails with `SendDeadlinePassedError` and was not sent.
   */
  readonly sendBy?: number;
}

/** A statement was not sent: its `sendBy` deadline passed while it waited for a slot. */
export class SendDeadlinePassedError extends Error {
  constructor(readonly lateByMs: number) {
    super(`the statement's send deadline passed ${Math.round(lateByMs)} ms before it could be sent`);
    this.name = 'SendDeadlinePassedError';
  }
}

const NO_RETRY = new policies.retry.FallthroughRetryPolicy();

export interface BatchStatement {
  readonly query: string;
  readonly params: readonly unknown[];
}

/** Counts statements in flight and queues callers beyond the limit. */
export class InFlightLimiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

export class CassandraSession {
  readonly keyspace: string;
  private readonly limiter: InFlightLimiter;

  constructor(
    readonly client: Client,
    readonly settings: ResolvedSettings,
  ) {
    this.keyspace = settings.keyspace;
    this.limiter = new InFlightLimiter(settings.maxInFlight);
  }

  execute(query: string, params: readonly unknown[], options: StatementOptions): Promise<types.ResultSet> {
    return this.limiter.run(() => this.client.execute(query, params as unknown[], this.queryOptions(options)));
  }

  /** An unlogged batch; callers keep each batch within one partition. */
  batch(statements: readonly BatchStatement[], options: StatementOptions): Promise<types.ResultSet> {
    return this.limiter.run(() =>
      this.client.batch(
        statements.map((s) => ({ query: s.query, params: s.params as unknown[] })),
        { ...this.queryOptions(options), logged: false },
      ),
    );
  }

  /** Driver options of one statement; throws `SendDeadlinePassedError` when its `sendBy` has passed (called right before sending). */
  private queryOptions(options: StatementOptions): QueryOptions {
    const base: QueryOptions = {
      prepare: true,
      consistency: options.consistency,
      isIdempotent: options.idempotent,
      ...(options.serialConsistency === undefined ? {} : { serialConsistency: options.serialConsistency }),
    };
    if (options.sendBy === undefined) return base;
    const left = options.sendBy - this.settings.leaseClock();
    if (left <= 0) throw new SendDeadlinePassedError(-left);
    return { ...base, isIdempotent: false, retry: NO_RETRY, readTimeout: Math.ceil(left + this.settings.leaseSafetyMarginMs) };
  }

  /** Every row of a query, fetched page by page. */
  async *rows(query: string, params: readonly unknown[], consistency: types.consistencies, fetchSize = this.settings.fetchSize): AsyncIterable<Row> {
    for await (const page of this.pages(query, params, consistency, fetchSize)) yield* page;
  }

  /** The pages of a query (one await per page instead of per row, for long reads). */
  async *pages(query: string, params: readonly unknown[], consistency: types.consistencies, fetchSize = this.settings.fetchSize): AsyncIterable<Row[]> {
    let pageState: string | undefined;
    do {
      const result: types.ResultSet = await this.limiter.run(() =>
        this.client.execute(query, params as unknown[], {
          prepare: true,
          consistency,
          isIdempotent: true,
          fetchSize,
          ...(pageState === undefined ? {} : { pageState }),
        }),
      );
      if (result.rows.length > 0) yield result.rows;
      pageState = result.pageState ?? undefined;
    } while (pageState !== undefined);
  }
}
