/**
 * The Postgres read journal (also on PGlite): events by persistence id, by
 * tag (offset = the global `ordering`) and persistence ids, current and live.
 * Live queries look again as soon as an append of this process commits, and
 * every `pollIntervalMs` for other processes' appends; because appends make
 * orderings visible in increasing order (ADR 0003), "ordering > last seen"
 * never skips a committed event.
 */
import { JournalReadError, type EventEnvelope, type Offset, type QueryOptions, type ReadJournal } from '@dataflow/core';
import { isRetriableDbError, messageOf } from './postgres-errors.js';
import { EVENT_COLUMNS, isAborted, type EventRow, type PostgresStore } from './postgres-store.js';

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
  constructor(private readonly store: PostgresStore) {}

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
    let after = startAfter(offset);
    // A current query ends at what is visible when it starts: every ordering up to it is settled.
    const end = options.live === true ? Number.MAX_SAFE_INTEGER : await this.maxOrdering();
    const pageSize = this.store.settings.pageSize;
    for (;;) {
      if (isAborted(options.signal)) return;
      const version = this.store.version;
      const rows = await this.read<EventRow>(
        `SELECT ${EVENT_COLUMNS.split(', ').map((c) => `j.${c}`).join(', ')}
         FROM ${this.store.tagTable} t JOIN ${this.store.journalTable} j ON j.ordering = t.ordering
         WHERE t.tag = $1 AND t.ordering > $2 AND t.ordering <= $3 AND NOT j.deleted
         ORDER BY t.ordering LIMIT $4`,
        [tag, after, end, pageSize],
        `eventsByTag(${tag})`,
      );
      for (const row of rows) {
        if (isAborted(options.signal)) return;
        after = Number(row.ordering);
        yield this.envelope(row);
      }
      if (rows.length < pageSize) {
        if (options.live !== true) return;
        await this.store.waitForAppend(version, options.signal);
      }
    }
  }

  async *persistenceIds(options: QueryOptions = {}): AsyncIterable<string> {
    let after = 0;
    const end = options.live === true ? Number.MAX_SAFE_INTEGER : await this.maxOrdering();
    const pageSize = this.store.settings.pageSize;
    for (;;) {
      if (isAborted(options.signal)) return;
      const version = this.store.version;
      // Every persistence id has exactly one row with sequence number 1 (deleted rows stay).
      const rows = await this.read<{ persistence_id: string; ordering: string | number }>(
        `SELECT persistence_id, ordering FROM ${this.store.journalTable}
         WHERE sequence_nr = 1 AND ordering > $1 AND ordering <= $2 ORDER BY ordering LIMIT $3`,
        [after, end, pageSize],
        'persistenceIds',
      );
      for (const row of rows) {
        if (isAborted(options.signal)) return;
        after = Number(row.ordering);
        yield row.persistence_id;
      }
      if (rows.length < pageSize) {
        if (options.live !== true) return;
        await this.store.waitForAppend(version, options.signal);
      }
    }
  }

  private async maxOrdering(): Promise<number> {
    const [row] = await this.read<{ max: string | number }>(`SELECT coalesce(max(ordering), 0) AS max FROM ${this.store.journalTable}`, [], 'max ordering');
    return Number(row?.max ?? 0);
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
