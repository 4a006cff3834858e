/**
 * The query side of the journal (Pekko's read journal): streams of events by
 * persistence id or by tag, "current" (ends at what is stored now) or "live"
 * (keeps running until aborted). Projections build on these.
 */
import type { PersistedEvent } from './journal.js';

export * from './slices.js';

/**
 * A position in an `eventsByTag` stream, to resume after. Opaque to users:
 * store it as a whole (it is JSON-serializable) and hand it back.
 * - `none`: from the beginning;
 * - `sequence`: a global ordering number (Postgres, in-memory);
 * - `timestamp`: a time-based position with the sequence numbers already seen
 *   per persistence id at that time (Cassandra).
 */
export type Offset =
  | { readonly kind: 'none' }
  | { readonly kind: 'sequence'; readonly value: number }
  | { readonly kind: 'timestamp'; readonly value: number; readonly seen: Readonly<Record<string, number>> };

export const NoOffset: Offset = { kind: 'none' };

/** An event with the offset to resume after it. */
export interface EventEnvelope extends PersistedEvent {
  readonly offset: Offset;
}

export interface QueryOptions {
  /** Keep the stream open and deliver new events as they are written (default false: current only). */
  readonly live?: boolean;
  /** Ends a live stream. */
  readonly signal?: AbortSignal;
}

export interface ReadJournal {
  eventsByPersistenceId(
    persistenceId: string,
    fromSequenceNr: number,
    toSequenceNr?: number,
    options?: QueryOptions,
  ): AsyncIterable<EventEnvelope>;
  /**
   * Events carrying `tag`, after `offset`. Per persistence id in sequence
   * order, without gaps or duplicates; when a gap does not fill in time the
   * stream fails with `ReplayGapError` instead of skipping.
   */
  eventsByTag(tag: string, offset?: Offset, options?: QueryOptions): AsyncIterable<EventEnvelope>;
  /** Every persistence id that has events. */
  persistenceIds(options?: QueryOptions): AsyncIterable<string>;
}

/**
 * The slice query (Pekko r2dbc's `eventsBySlices`): every event of the persistence
 * ids of `entityType` (the id's prefix before its first `-`, see `entityTypeOf`)
 * whose slice (`sliceForPersistenceId`) is in `minSlice..maxSlice`, after `offset`.
 * Same guarantees and `Offset` / `QueryOptions` semantics as `eventsByTag`: per
 * persistence id in sequence order, without gaps or duplicates; deleted events
 * are not delivered. Several consumers over disjoint slice ranges together see
 * each event of the entity type exactly once.
 *
 * A store's read journal offers it when `supportsEventsBySlices(queries)` holds.
 *
 * @example
 * ```ts
 * if (supportsEventsBySlices(queries)) {
 *   for await (const envelope of queries.eventsBySlices('pipeline', 0, 511, NoOffset, { live: true, signal })) {
 *     project(envelope); // then store envelope.offset
 *   }
 * }
 * ```
 */
export interface SliceQueries {
  eventsBySlices(entityType: string, minSlice: number, maxSlice: number, offset?: Offset, options?: QueryOptions): AsyncIterable<EventEnvelope>;
}

/**
 * Whether a read journal offers `eventsBySlices`.
 *
 * @example
 * ```ts
 * const source = supportsEventsBySlices(queries) ? queries.eventsBySlices('pipeline', 0, 1023) : queries.eventsByTag('pipeline-events');
 * ```
 */
export function supportsEventsBySlices<Q extends ReadJournal>(queries: Q): queries is Q & SliceQueries {
  return typeof (queries as Partial<SliceQueries>).eventsBySlices === 'function';
}
