/**
 * The Postgres read journal (also on PGlite): events by persistence id, by
 * tag and by slices (offset = the global `ordering`) and persistence ids,
 * current and live.
 * Live queries look again as soon as an append of this process commits, and
 * every `pollIntervalMs` for other processes' appends. Tag and id queries
 * read only up to the safe ordering (`OrderingWatermark`, ADR 0003), so
 * "ordering > last seen" never skips a committed event although appends of
 * different ids commit in parallel, in any order.
 */
import { checkSliceRange, JournalReadError, type EventEnvelope, type Offset, type QueryOptions, type ReadJournal, type SliceQueries } from '@dataflow/core';
import { isRetriableDbError, messageOf } from './postgres-errors.js';
import { EVENT_COLUMNS, isAborted, type EventRow, type PostgresStore } from './postgres-store.js';
import { OrderingWatermark } from './postgres-watermark.js';

/**
 * `ReadJournal` on Postgres or PGlite. Create it with `createPostgresPersistence()`
 * or `createPglitePersistence()`.
 *
 * @example
 * ```ts
 * const { queries } = await createPostgresPersistence({ pool, schema: 'dataflow', pollIntervalMs: 200 });
 * for await (const envelope of queries.eventsByTag('pipeline-events', savedOffset, { live: true, signal })) {
 *   await project(envelope);
 *   savedOffset = envelope.offset;
 * }
 * ```
 */
export class PostgresReadJournal implements ReadJournal, SliceQueries {
  private readonly watermark: OrderingWatermark;

  constructor(private readonly store: PostgresStore) {
    this.watermark = new OrderingWatermark(store);
  }

  async *eventsByPersistenceId(persistenceId: string, fromSequenceNr: number, toSequenceNr = Number.MAX_SAFE_INTEGER, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
    let next = Math.max(1, fromSequenceNr);
    const pageSize = this.store.settings.pageSize;
    while (next <= toSequenceNr) {
      if (isAborted(options.signal)) return;
      const version = this.store.version;
      const rows = await this.read<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM ${this.store.journalTable}
         WHERE persistence_id = $1 AND sequence_nr >= $2 AND sequence_nr <= $3 AND NOT deleted
         ORDER BY sequence_nr LIMIT $4`,
        [persistenceId, next, toSequenceNr, pageSize],
        `eventsByPersistenceId(${persistenceId})`,
      );
      for (const row of rows) {
        if (isAborted(options.signal)) return;
        yield this.envelope(row);
        next = Number(row.sequence_nr) + 1;
      }
      if (rows.length < pageSize) {
        if (options.live !== true) return;
        await this.store.waitForAppend(version, options.signal);
      }
    }
  }

  async *eventsByTag(tag: string, offset: Offset = { kind: 'none' }, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
    // The page is cut from the tag index first (an ordered range scan of its primary key, LIMIT applied there),
    // then joined: joining first let the planner read and sort every remaining tag row for each page when its
    // estimates were off (a fresh table), which made a catch-up quadratic (8k events/s over 100k events).
    // Deleted events still count for the paging (a page of pageSize tag rows is full) and are skipped here.
    const sql = `SELECT t.ordering AS tag_ordering, j.deleted, ${EVENT_COLUMNS.split(', ').map((c) => `j.${c}`).join(', ')}
       FROM (SELECT ordering FROM ${this.store.tagTable} WHERE tag = $1 AND ordering > $2 AND ordering <= $3 ORDER BY ordering LIMIT $4) t
       LEFT JOIN ${this.store.journalTable} j ON j.ordering = t.ordering
       ORDER BY t.ordering`;
    const rows = this.byOrdering<EventRow & { tag_ordering: string | number; deleted: boolean | null; ordering: string | number }>(
      startAfter(offset),
      options,
      `eventsByTag(${tag})`,
      (after, upTo, limit) => [sql, [tag, after, upTo, limit]],
      (row) => row.tag_ordering,
    );
    for await (const row of rows) {
      if (row.deleted === false) yield this.envelope(row);
    }
  }

  async *eventsBySlices(entityType: string, minSlice: number, maxSlice: number, offset: Offset = { kind: 'none' }, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
    checkSlices(minSlice, maxSlice);
    // An index range scan of (entity_type, slice, ordering) per page (migration 3); deleted rows are
    // tombstones (deleteTo) and are skipped as eventsByTag skips them.
    const sql = `SELECT j.deleted, ${EVENT_COLUMNS.split(', ').map((c) => `j.${c}`).join(', ')}
       FROM ${this.store.journalTable} j
       WHERE j.entity_type = $1 AND j.slice BETWEEN $2 AND $3 AND j.ordering > $4 AND j.ordering <= $5
       ORDER BY j.ordering LIMIT $6`;
    const rows = this.byOrdering<EventRow & { deleted: boolean; ordering: string | number }>(
      startAfter(offset),
      options,
      `eventsBySlices(${entityType}, ${minSlice}-${maxSlice})`,
      (after, upTo, limit) => [sql, [entityType, minSlice, maxSlice, after, upTo, limit]],
    );
    for await (const row of rows) {
      if (!row.deleted) yield this.envelope(row);
    }
  }

  async *persistenceIds(options: QueryOptions = {}): AsyncIterable<string> {
    // Every persistence id has exactly one row with sequence number 1 (deleteTo keeps it as a tombstone).
    const sql = `SELECT persistence_id, ordering FROM ${this.store.journalTable}
       WHERE sequence_nr = 1 AND ordering > $1 AND ordering <= $2 ORDER BY ordering LIMIT $3`;
    for await (const row of this.byOrdering<{ persistence_id: string; ordering: string | number }>(0, options, 'persistenceIds', (after, upTo, limit) => [
      sql,
      [after, upTo, limit],
    ])) {
      yield row.persistence_id;
    }
  }

  /**
   * Pages through rows in `ordering` order after `after`, never past the
   * safe ordering: a current query ends at the one it read when it started,
   * a live one reads it again whenever it has caught up.
   */
  private async *byOrdering<Row extends object>(
    after: number,
    options: QueryOptions,
    what: string,
    statement: (after: number, upTo: number, limit: number) => [string, unknown[]],
    orderingOf: (row: Row) => string | number = (row) => (row as { ordering: string | number }).ordering,
  ): AsyncIterable<Row> {
    const pageSize = this.store.settings.pageSize;
    const live = options.live === true;
    // Read before the safe ordering, so an append committing after it still wakes the wait below.
    let version = this.store.version;
    let upTo = await this.safeOrdering(options.signal, what);
    // The next page is read while the caller consumes this one (a full page means there may be more).
    let prefetched: Promise<Row[]> | undefined;
    for (;;) {
      if (upTo === undefined || isAborted(options.signal)) return;
      const rows = await (prefetched ?? this.read<Row>(...statement(after, upTo, pageSize), what));
      prefetched = undefined;
      const last = rows.at(-1);
      if (rows.length === pageSize && last !== undefined) {
        prefetched = this.read<Row>(...statement(Number(orderingOf(last)), upTo, pageSize), what);
        // Consumed below or, when the caller stops early, left to settle: its failure is not the caller's any more.
        prefetched.catch(() => undefined);
      }
      for (const row of rows) {
        if (isAborted(options.signal)) return;
        after = Number(orderingOf(row));
        yield row;
      }
      if (rows.length < pageSize) {
        if (!live) return;
        await this.store.waitForAppend(version, options.signal);
        version = this.store.version;
        upTo = await this.safeOrdering(options.signal, what);
      }
    }
  }

  /**
   * The ordering up to which every event is visible or gone for good now
   * (ADR 0003): what a bulk reader of `event_journal` may read up to without
   * skipping an append still in flight. Undefined when `signal` aborts.
   */
  currentSafeOrdering(signal?: AbortSignal): Promise<number | undefined> {
    return this.safeOrdering(signal, 'safeOrdering');
  }

  /** The journal's event table, quoted (`"schema".event_journal`), for set-based readers in the same database. */
  get eventTable(): string {
    return this.store.journalTable;
  }

  private async safeOrdering(signal: AbortSignal | undefined, what: string): Promise<number | undefined> {
    if (this.store.closed) throw new JournalReadError(`Query ${what} failed: the read journal is closed`, { retriable: false });
    try {
      return await this.watermark.safeOrdering(signal);
    } catch (error) {
      throw new JournalReadError(`Query ${what} failed: ${messageOf(error)}`, { retriable: isRetriableDbError(error), cause: error });
    }
  }

  private envelope(row: EventRow): EventEnvelope {
    return { ...this.store.toEvent(row), offset: { kind: 'sequence', value: Number(row.ordering) } };
  }

  private async read<Row extends object>(sql: string, params: readonly unknown[], what: string): Promise<Row[]> {
    if (this.store.closed) throw new JournalReadError(`Query ${what} failed: the read journal is closed`, { retriable: false });
    try {
      return await this.store.executor.query<Row>(sql, params);
    } catch (error) {
      throw new JournalReadError(`Query ${what} failed: ${messageOf(error)}`, { retriable: isRetriableDbError(error), cause: error });
    }
  }
}

function startAfter(offset: Offset): number {
  switch (offset.kind) {
    case 'none':
      return 0;
    case 'sequence':
      return offset.value;
    case 'timestamp':
      throw new JournalReadError('The Postgres read journal takes sequence offsets, not timestamp offsets', { retriable: false });
  }
}

function checkSlices(minSlice: number, maxSlice: number): void {
  try {
    checkSliceRange({ min: minSlice, max: maxSlice });
  } catch (error) {
    throw new JournalReadError(`eventsBySlices: minSlice / maxSlice out of range: ${messageOf(error)}`, { retriable: false, cause: error });
  }
}
