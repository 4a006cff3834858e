/**
 * The in-memory journal: a complete implementation of the `Journal` port for
 * tests and single-process use. Appends are atomic, conflicts are detected
 * like in a durable store, and payloads go through the serializer registry.
 */
import { isDataflowError } from '../../errors/dataflow-error.js';
import type { AppendOptions, AppendResult, Journal, NewEvent, PersistedEvent, ReplayOptions } from '../journal.js';
import { ConcurrencyConflictError, JournalReadError, JournalWriteError } from '../persistence-errors.js';
import type { InMemoryEventLog, StoredEventRow } from './in-memory-event-log.js';

/**
 * `Journal` kept in memory. Create it with `createInMemoryPersistence()`,
 * which shares its state with the matching snapshot store and read journal.
 *
 * @example
 * ```ts
 * const { journal } = createInMemoryPersistence();
 * await journal.append('counter-1', [{ eventType: 'Added', payload: { n: 1 } }], { expectedSequenceNr: 0, writerId: 'w1' });
 * for await (const event of journal.replay('counter-1', 1)) handle(event.payload);
 * ```
 */
export class InMemoryJournal implements Journal {
  constructor(private readonly log: InMemoryEventLog) {}

  append(persistenceId: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> {
    // The executor turns a synchronous throw into a rejection.
    return new Promise((resolve) => resolve(this.appendNow(persistenceId, events, options)));
  }

  // The in-memory store has nothing to wait for, but the port is asynchronous.
  // eslint-disable-next-line @typescript-eslint/require-await
  async *replay(persistenceId: string, fromSequenceNr: number, toSequenceNr = Number.MAX_SAFE_INTEGER, options: ReplayOptions = {}): AsyncIterable<PersistedEvent> {
    for (const row of this.rowsToReplay(persistenceId, fromSequenceNr, toSequenceNr, options)) yield toPersistedEvent(this.log, row);
  }

  highestSequenceNr(persistenceId: string): Promise<number> {
    if (this.log.closed) return Promise.reject(closedError('highestSequenceNr'));
    return Promise.resolve(this.log.highestSequenceNr(persistenceId));
  }

  deleteTo(persistenceId: string, toSequenceNr: number): Promise<void> {
    if (this.log.closed) return Promise.reject(new JournalWriteError(persistenceId, 'the journal is closed', { retriable: false }));
    const upTo = Math.min(toSequenceNr, this.log.highestSequenceNr(persistenceId));
    if (upTo > (this.log.deletedTo.get(persistenceId) ?? 0)) this.log.deletedTo.set(persistenceId, upTo);
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.log.close();
    return Promise.resolve();
  }

  private appendNow(persistenceId: string, events: readonly NewEvent[], options: AppendOptions): AppendResult {
    const { expectedSequenceNr, writerId } = options;
    if (this.log.closed) throw new JournalWriteError(persistenceId, 'the journal is closed', { retriable: false });
    if (!Number.isSafeInteger(expectedSequenceNr) || expectedSequenceNr < 0) {
      throw new JournalWriteError(persistenceId, `expectedSequenceNr must be a non-negative integer, got ${expectedSequenceNr}`, { retriable: false });
    }
    const highest = this.log.highestSequenceNr(persistenceId);
    if (highest !== expectedSequenceNr) throw new ConcurrencyConflictError(persistenceId, expectedSequenceNr, highest);
    const timestamp = this.log.now();
    // Serialize everything before storing anything: one bad payload fails the whole batch.
    const rows = events.map((event, i) => {
      const schemaVersion = event.schemaVersion ?? 1;
      let serialized;
      try {
        serialized = this.log.serializers.serialize(event.payload, { eventType: event.eventType, schemaVersion });
      } catch (error) {
        if (isDataflowError(error)) throw error;
        throw new JournalWriteError(persistenceId, 'serialization failed', { retriable: false, cause: error });
      }
      return {
        persistenceId,
        sequenceNr: expectedSequenceNr + i + 1,
        eventType: event.eventType,
        schemaVersion,
        tags: [...new Set(event.tags ?? [])],
        timestamp,
        writerId,
        serializerId: serialized.serializerId,
        bytes: serialized.bytes,
      };
    });
    this.log.appendRows(persistenceId, rows);
    return { lastSequenceNr: expectedSequenceNr + events.length };
  }

  /** Rows in `[from, to]` that are not deleted; checks for close and abort before each one. */
  private *rowsToReplay(persistenceId: string, fromSequenceNr: number, toSequenceNr: number, options: ReplayOptions): Generator<StoredEventRow> {
    this.ensureOpen('replay');
    const rows = this.log.byPersistenceId.get(persistenceId) ?? [];
    const from = Math.max(fromSequenceNr, (this.log.deletedTo.get(persistenceId) ?? 0) + 1);
    const max = options.max ?? Number.MAX_SAFE_INTEGER;
    let delivered = 0;
    // Sequence numbers are gap-free and 1-based, so row i holds sequence number i + 1.
    for (let i = from - 1; i < rows.length && delivered < max; i++) {
      const row = rows[i];
      if (row === undefined || row.sequenceNr > toSequenceNr || options.signal?.aborted === true) return;
      this.ensureOpen('replay');
      yield row;
      delivered++;
    }
  }

  private ensureOpen(operation: string): void {
    if (this.log.closed) throw closedError(operation);
  }
}

function closedError(operation: string): JournalReadError {
  return new JournalReadError(`Journal ${operation} failed: the journal is closed`, { retriable: false });
}

/** Deserializes a stored row into a fresh event (callers may mutate it freely). */
export function toPersistedEvent(log: InMemoryEventLog, row: StoredEventRow): PersistedEvent {
  const payload = log.serializers.deserialize(row.serializerId, row.bytes, { eventType: row.eventType, schemaVersion: row.schemaVersion });
  return {
    persistenceId: row.persistenceId,
    sequenceNr: row.sequenceNr,
    payload,
    eventType: row.eventType,
    schemaVersion: row.schemaVersion,
    tags: [...row.tags],
    timestamp: row.timestamp,
    writerId: row.writerId,
  };
}
