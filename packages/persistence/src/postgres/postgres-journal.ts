/**
 * The Postgres journal (also on PGlite): one row per event, atomic
 * multi-row appends in one transaction, conflicts detected by the primary key
 * (persistence_id, sequence_nr), typed errors with `retriable` and `cause`.
 */
import {
  ConcurrencyConflictError,
  isDataflowError,
  JournalReadError,
  JournalWriteError,
  type AppendOptions,
  type AppendResult,
  type Journal,
  type NewEvent,
  type PersistedEvent,
  type ReplayOptions,
} from '@dataflow/core';
import { errorCode, isRetriableDbError, messageOf, UNIQUE_VIOLATION } from './postgres-errors.js';
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
  private readonly insertColumns = 'persistence_id, sequence_nr, writer_id, event_type, schema_version, serializer_id, payload, tags, written_at';

  constructor(private readonly store: PostgresStore) {}

  async append(persistenceId: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> {
    const { expectedSequenceNr, writerId } = options;
    if (this.store.closed) throw new JournalWriteError(persistenceId, 'the journal is closed', { retriable: false });
    if (!Number.isSafeInteger(expectedSequenceNr) || expectedSequenceNr < 0) {
      throw new JournalWriteError(persistenceId, `expectedSequenceNr must be a non-negative integer, got ${expectedSequenceNr}`, { retriable: false });
    }
    // Serialize everything first: a bad payload fails the batch before any I/O.
    const timestamp = this.store.settings.now();
    const params: unknown[] = [];
    const tuples = events.map((event, i) => {
      const schemaVersion = event.schemaVersion ?? 1;
      const { serializerId, bytes } = this.store.settings.serializers.serialize(event.payload, { eventType: event.eventType, schemaVersion });
      const base = params.length;
      params.push(persistenceId, expectedSequenceNr + i + 1, writerId, event.eventType, schemaVersion, serializerId, bytes, [...new Set(event.tags ?? [])], timestamp);
      return `(${Array.from({ length: 9 }, (_, k) => `$${base + k + 1}`).join(', ')})`;
    });
    const { journalTable, tagTable } = this.store;
    try {
      await this.store.executor.transaction(async (tx) => {
        // The lock makes orderings visible in increasing order (ADR 0003); taken before the insert draws them.
        const [check] = await tx.query<{ highest: string | number }>(
          `SELECT (SELECT coalesce(max(sequence_nr), 0) FROM ${journalTable} WHERE persistence_id = $1) AS highest,
                  pg_advisory_xact_lock(hashtext($2)) AS locked`,
          [persistenceId, this.store.appendLockKey],
        );
        const highest = Number(check?.highest ?? 0);
        if (highest !== expectedSequenceNr) throw new ConcurrencyConflictError(persistenceId, expectedSequenceNr, highest);
        if (tuples.length === 0) return;
        await tx.query(
          `WITH inserted AS (INSERT INTO ${journalTable} (${this.insertColumns}) VALUES ${tuples.join(', ')} RETURNING ordering, tags)
           INSERT INTO ${tagTable} (tag, ordering) SELECT unnest(tags), ordering FROM inserted`,
          params,
        );
      });
    } catch (error) {
      if (isDataflowError(error)) throw error;
      if (errorCode(error) === UNIQUE_VIOLATION) throw new ConcurrencyConflictError(persistenceId, expectedSequenceNr, undefined, { cause: error });
      throw new JournalWriteError(persistenceId, messageOf(error), { retriable: isRetriableDbError(error), cause: error });
    }
    return { lastSequenceNr: expectedSequenceNr + events.length };
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

  async deleteTo(persistenceId: string, toSequenceNr: number): Promise<void> {
    if (this.store.closed) throw new JournalWriteError(persistenceId, 'the journal is closed', { retriable: false });
    const { journalTable, tagTable } = this.store;
    try {
      // Rows stay (with an empty payload) so the highest sequence number is kept and never reused.
      await this.store.executor.query(
        `WITH deleted AS (
           UPDATE ${journalTable} SET deleted = TRUE, payload = ''::bytea
           WHERE persistence_id = $1 AND sequence_nr <= $2 AND NOT deleted
           RETURNING ordering, tags)
         DELETE FROM ${tagTable} t USING deleted d WHERE t.ordering = d.ordering AND t.tag = ANY (d.tags)`,
        [persistenceId, toSequenceNr],
      );
    } catch (error) {
      throw new JournalWriteError(persistenceId, `deleteTo ${toSequenceNr}: ${messageOf(error)}`, { retriable: isRetriableDbError(error), cause: error });
    }
  }

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
