/**
 * The Postgres journal (also on PGlite): one row per event, atomic
 * multi-row appends in one statement of the schema's `append_events` function
 * (grouped with concurrent ones, see `PostgresGroupWriter`), conflicts checked
 * under the append lock and backed by the primary key (persistence_id,
 * sequence_nr), typed errors with `retriable` and `cause`.
 */
import {
  JournalReadError,
  JournalWriteError,
  type AppendOptions,
  type AppendResult,
  type Journal,
  type NewEvent,
  type PersistedEvent,
  type ReplayOptions,
} from '@dataflow/core';
import { isRetriableDbError, messageOf } from './postgres-errors.js';
import { PostgresGroupWriter } from './postgres-group-writer.js';
import { EVENT_COLUMNS, isAborted, type EventRow, type PostgresStore } from './postgres-store.js';

/**
 * `Journal` on Postgres or PGlite. Create it with `createPostgresPersistence()`
 * or `createPglitePersistence()`.
 *
 * @example
 * ```ts
 * const { journal } = await createPostgresPersistence({ pool, schema: 'dataflow' });
 * await journal.append('pipeline-1', [{ eventType: 'PipelineCreated', payload: { name: 'p' }, tags: ['pipeline-events'] }],
 *   { expectedSequenceNr: 0, writerId: 'node-1' });
 * ```
 */
export class PostgresJournal implements Journal {
  private readonly writer: PostgresGroupWriter;

  constructor(private readonly store: PostgresStore) {
    this.writer = new PostgresGroupWriter(store);
    store.onClose(() => this.writer.drained());
  }

  /**
   * Appends `events` atomically. Appends made while another is being written
   * share the next statement (group commit); each still succeeds or fails alone.
   */
  async append(persistenceId: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> {
    const { expectedSequenceNr, writerId } = options;
    if (this.store.closed) throw new JournalWriteError(persistenceId, 'the journal is closed', { retriable: false });
    if (!Number.isSafeInteger(expectedSequenceNr) || expectedSequenceNr < 0) {
      throw new JournalWriteError(persistenceId, `expectedSequenceNr must be a non-negative integer, got ${expectedSequenceNr}`, { retriable: false });
    }
    // Serialize everything first: a bad payload fails the batch before any I/O.
    const writtenAt = this.store.settings.now();
    const serialized = events.map((event) => {
      const schemaVersion = event.schemaVersion ?? 1;
      const { serializerId, bytes } = this.store.settings.serializers.serialize(event.payload, { eventType: event.eventType, schemaVersion });
      return { eventType: event.eventType, schemaVersion, serializerId, bytes, tags: [...new Set(event.tags ?? [])] };
    });
    return this.writer.submit({ persistenceId, expectedSequenceNr, writerId, writtenAt, events: serialized });
  }

  async *replay(persistenceId: string, fromSequenceNr: number, toSequenceNr = Number.MAX_SAFE_INTEGER, options: ReplayOptions = {}): AsyncIterable<PersistedEvent> {
    let next = Math.max(1, fromSequenceNr);
    let remaining = options.max ?? Number.MAX_SAFE_INTEGER;
    const pageSize = this.store.settings.pageSize;
    while (remaining > 0 && next <= toSequenceNr) {
      if (isAborted(options.signal)) return;
      const rows = await this.read(
        `SELECT ${EVENT_COLUMNS} FROM ${this.store.journalTable}
         WHERE persistence_id = $1 AND sequence_nr >= $2 AND sequence_nr <= $3 AND NOT deleted
         ORDER BY sequence_nr LIMIT $4`,
        [persistenceId, next, toSequenceNr, Math.min(pageSize, remaining)],
        `replay of ${persistenceId}`,
      );
      for (const row of rows) {
        if (isAborted(options.signal)) return;
        yield this.store.toEvent(row);
        next = Number(row.sequence_nr) + 1;
        remaining--;
      }
      if (rows.length < pageSize) return;
    }
  }

  async highestSequenceNr(persistenceId: string): Promise<number> {
    const [row] = await this.read<{ highest: string | number }>(
      `SELECT coalesce(max(sequence_nr), 0) AS highest FROM ${this.store.journalTable} WHERE persistence_id = $1`,
      [persistenceId],
      `highestSequenceNr of ${persistenceId}`,
    );
    return Number(row?.highest ?? 0);
  }

  /**
   * Removes the events up to `toSequenceNr` with their tag rows. Two rows of
   * an id stay as tombstones (no payload, no tags, never replayed): its first,
   * so `persistenceIds` still lists it, and its highest, so the highest
   * sequence number is kept and never reused.
   */
  async deleteTo(persistenceId: string, toSequenceNr: number): Promise<void> {
    if (this.store.closed) throw new JournalWriteError(persistenceId, 'the journal is closed', { retriable: false });
    const { journalTable, tagTable } = this.store;
    try {
      await this.store.executor.query(
        `WITH bounds AS (
           SELECT max(sequence_nr) AS highest FROM ${journalTable} WHERE persistence_id = $1
         ), removed AS (
           DELETE FROM ${journalTable} j USING bounds b
           WHERE j.persistence_id = $1 AND j.sequence_nr <= $2 AND j.sequence_nr > 1 AND j.sequence_nr < b.highest
           RETURNING j.ordering, j.tags
         ), tombstones AS (
           UPDATE ${journalTable} j SET deleted = TRUE, payload = ''::bytea FROM bounds b
           WHERE j.persistence_id = $1 AND j.sequence_nr <= $2 AND (j.sequence_nr = 1 OR j.sequence_nr = b.highest) AND NOT j.deleted
           RETURNING j.ordering, j.tags
         )
         DELETE FROM ${tagTable} t
         USING (SELECT ordering, tags FROM removed UNION ALL SELECT ordering, tags FROM tombstones) d
         WHERE t.ordering = d.ordering AND t.tag = ANY (d.tags)`,
        [persistenceId, toSequenceNr],
      );
    } catch (error) {
      throw new JournalWriteError(persistenceId, `deleteTo ${toSequenceNr}: ${messageOf(error)}`, { retriable: isRetriableDbError(error), cause: error });
    }
  }

  /** Waits for appends already submitted, then closes the store. */
  close(): Promise<void> {
    return this.store.close();
  }

  private async read<Row extends object = EventRow>(sql: string, params: readonly unknown[], what: string): Promise<Row[]> {
    if (this.store.closed) throw new JournalReadError(`Journal ${what} failed: the journal is closed`, { retriable: false });
    try {
      return await this.store.executor.query<Row>(sql, params);
    } catch (error) {
      throw new JournalReadError(`Journal ${what} failed: ${messageOf(error)}`, { retriable: isRetriableDbError(error), cause: error });
    }
  }
}
