/**
 * The Postgres read journal (also on PGlite): events by persistence id, by
 * tag (offset = the global `ordering`) and persistence ids, current and live.
 * Live queries look again as soon as an append of this process commits, and
 * every `pollIntervalMs` for other processes' appends. Tag and id queries
 * read only up to the safe ordering (`OrderingWatermark`, ADR 0003), so
 * "ordering > last seen" never skips a committed event although appends of
 * different ids commit in parallel, in any order.
 */
import { JournalReadError, type EventEnvelope, type Offset, type QueryOptions, type ReadJournal } from '@dataflow/core';
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
export class PostgresReadJournal implements ReadJournal {
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
    const sql = `SELECT ${EVENT_COLUMNS.split(', ').map((c) => `j.${c}`).join(', ')}
       FROM ${this.store.tagTable} t JOIN ${this.store.journalTable} j ON j.ordering = t.ordering
       WHERE t.tag = $1 AND t.ordering > $2 AND t.ordering <= $3 AND NOT j.deleted
       ORDER BY t.ordering LIMIT $4`;
    for await (const row of this.byOrdering<EventRow>(startAfter(offset), options, `eventsByTag(${tag})`, (after, upTo, limit) => [sql, [tag, after, upTo, limit]])) {
      yield this.envelope(row);
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
  private async *byOrdering<Row extends { ordering: string | number }>(
    after: number,
    options: QueryOptions,
    what: string,
    statement: (after: number, upTo: number, limit: number) => [string, unknown[]],
  ): AsyncIterable<Row> {
    const pageSize = this.store.settings.pageSize;
    const live = options.live === true;
    // Read before the safe ordering, so an append committing after it still wakes the wait below.
    let version = this.store.version;
    let upTo = await this.safeOrdering(options.signal, what);
    for (;;) {
      if (upTo === undefined || isAborted(options.signal)) return;
      const rows = await this.read<Row>(...statement(after, upTo, pageSize), what);
      for (const row of rows) {
        if (isAborted(options.signal)) return;
        after = Number(row.ordering);
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
