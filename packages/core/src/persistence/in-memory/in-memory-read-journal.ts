/**
 * The in-memory read journal: `eventsByPersistenceId`, `eventsByTag` and
 * `eventsBySlices` (with the global ordering as a `sequence` offset) and
 * `persistenceIds`, current and live. Live streams wait for the next append and end when their signal aborts.
 */
import type { PersistedEvent } from '../journal.js';
import { JournalReadError } from '../persistence-errors.js';
import type { EventEnvelope, Offset, QueryOptions, ReadJournal, SliceQueries } from '../queries.js';
import { checkSliceRange, entityTypeOf, sliceForPersistenceId } from '../slices.js';
import type { InMemoryEventLog, StoredEventRow } from './in-memory-event-log.js';
import { toPersistedEvent } from './in-memory-journal.js';

/**
 * `ReadJournal` over the in-memory journal. Create it with `createInMemoryPersistence()`.
 *
 * @example
 * ```ts
 * const { queries } = createInMemoryPersistence();
 * const controller = new AbortController();
 * for await (const envelope of queries.eventsByTag('pipeline-events', NoOffset, { live: true, signal: controller.signal })) {
 *   project(envelope); // then store envelope.offset
 * }
 * ```
 */
export class InMemoryReadJournal implements ReadJournal, SliceQueries {
  constructor(private readonly log: InMemoryEventLog) {}

  async *eventsByPersistenceId(persistenceId: string, fromSequenceNr: number, toSequenceNr = Number.MAX_SAFE_INTEGER, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
    let next = Math.max(fromSequenceNr, 1);
    for (;;) {
      this.ensureOpen();
      if (options.signal?.aborted === true || next > toSequenceNr) return;
      const rows = this.log.byPersistenceId.get(persistenceId) ?? [];
      next = Math.max(next, (this.log.deletedTo.get(persistenceId) ?? 0) + 1);
      const row = rows[next - 1];
      if (row !== undefined) {
        yield envelope(this.log, row);
        next++;
        continue;
      }
      if (options.live !== true) return;
      await this.log.waitForChange(options.signal);
    }
  }

  eventsByTag(tag: string, offset: Offset = { kind: 'none' }, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
    return this.eventsMatching((row) => row.tags.includes(tag), offset, options);
  }

  async *eventsBySlices(entityType: string, minSlice: number, maxSlice: number, offset: Offset = { kind: 'none' }, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
    try {
      checkSliceRange({ min: minSlice, max: maxSlice });
    } catch (error) {
      throw new JournalReadError(`eventsBySlices: minSlice / maxSlice out of range: ${(error as Error).message}`, { retriable: false, cause: error });
    }
    const matches = (row: StoredEventRow): boolean => {
      if (entityTypeOf(row.persistenceId) !== entityType) return false;
      const slice = sliceForPersistenceId(row.persistenceId);
      return slice >= minSlice && slice <= maxSlice;
    };
    yield* this.eventsMatching(matches, offset, options);
  }

  /** The live (not deleted) rows that `matches` keeps, in global order after `offset`. */
  private async *eventsMatching(matches: (row: StoredEventRow) => boolean, offset: Offset, options: QueryOptions): AsyncIterable<EventEnvelope> {
    let after = startAfter(offset);
    // A current query ends at what is stored when it starts.
    const end = options.live === true ? Number.POSITIVE_INFINITY : this.log.rows.length;
    for (;;) {
      this.ensureOpen();
      if (options.signal?.aborted === true) return;
      const row = this.nextMatching(matches, after, end);
      if (row !== undefined) {
        after = row.ordering;
        yield envelope(this.log, row);
        continue;
      }
      if (options.live !== true) return;
      after = Math.max(after, Math.min(end, this.log.rows.length));
      await this.log.waitForChange(options.signal);
    }
  }

  async *persistenceIds(options: QueryOptions = {}): AsyncIterable<string> {
    let index = 0;
    const end = options.live === true ? Number.POSITIVE_INFINITY : this.log.persistenceIds.length;
    for (;;) {
      this.ensureOpen();
      if (options.signal?.aborted === true || index >= end) return;
      const id = this.log.persistenceIds[index];
      if (id !== undefined) {
        index++;
        yield id;
        continue;
      }
      if (options.live !== true) return;
      await this.log.waitForChange(options.signal);
    }
  }

  /** The first live (not deleted) row that `matches` keeps with `after < ordering <= end`. */
  private nextMatching(matches: (row: StoredEventRow) => boolean, after: number, end: number): StoredEventRow | undefined {
    const last = Math.min(end, this.log.rows.length);
    for (let ordering = after + 1; ordering <= last; ordering++) {
      const row = this.log.rows[ordering - 1];
      if (row === undefined || !matches(row)) continue;
      if (row.sequenceNr <= (this.log.deletedTo.get(row.persistenceId) ?? 0)) continue;
      return row;
    }
    return undefined;
  }

  private ensureOpen(): void {
    if (this.log.closed) throw new JournalReadError('Query failed: the read journal is closed', { retriable: false });
  }
}

function startAfter(offset: Offset): number {
  switch (offset.kind) {
    case 'none':
      return 0;
    case 'sequence':
      return offset.value;
    case 'timestamp':
      throw new JournalReadError('The in-memory read journal takes sequence offsets, not timestamp offsets', { retriable: false });
  }
}

function envelope(log: InMemoryEventLog, row: StoredEventRow): EventEnvelope {
  const event: PersistedEvent = toPersistedEvent(log, row);
  return { ...event, offset: { kind: 'sequence', value: row.ordering } };
}
