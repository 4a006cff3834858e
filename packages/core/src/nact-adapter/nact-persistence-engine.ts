/**
 * Exposes any DataFlow journal and snapshot store as a persistence engine of
 * nact (the shape of nact's `AbstractPersistenceEngine`), so actors written
 * with nact's `spawnPersistent` run on our stores. Each nact event becomes one
 * atomic append that expects the sequence number before it, so a second
 * writer is refused (`ConcurrencyConflictError`) instead of forking history.
 *
 * The types here are structural: no public type mentions nact.
 */
import { randomUUID } from 'node:crypto';
import type { Journal, PersistedEvent } from '../persistence/journal.js';
import type { SnapshotStore } from '../persistence/snapshot-store.js';

/** An event in nact's shape. */
export interface NactEvent {
  readonly data: unknown;
  readonly sequenceNumber: number;
  readonly key: string;
  readonly createdAt: number;
  readonly isDeleted: boolean;
  readonly tags: readonly string[];
}

/** A snapshot in nact's shape. */
export interface NactSnapshot {
  readonly data: unknown;
  readonly sequenceNumber: number;
  readonly key: string;
  readonly createdAt: number;
}

/** nact's event stream: awaitable as an array, or folded with `reduce`. */
export interface NactEventStream extends PromiseLike<NactEvent[]> {
  reduce<U>(callback: (previous: U, event: NactEvent, index: number) => U, initial: U): Promise<U>;
}

/** The methods nact calls on its persistence engine. */
export interface NactPersistenceEngine {
  events(persistenceKey: string, offset?: number, limit?: number, tags?: readonly string[]): NactEventStream;
  persist(event: NactEvent): Promise<void>;
  latestSnapshot(persistenceKey: string): Promise<NactSnapshot | undefined>;
  takeSnapshot(snapshot: NactSnapshot): Promise<void>;
}

export interface NactPersistenceEngineOptions {
  /** The stored event type of a nact message (default: its `type` field when a string, else `nact-event`). */
  eventType?(data: unknown): string;
  /** Writer id stored with the events (default: a random one per engine). */
  readonly writerId?: string;
}

/**
 * Wraps `persistence` as a nact persistence engine.
 *
 * @example
 * ```ts
 * const system = start(configurePersistence(nactPersistenceEngine(createInMemoryPersistence())));
 * const counter = spawnPersistent(system, async (state = 0, msg, ctx) => {
 *   if (!ctx.recovering) await ctx.persist(msg);
 *   return state + msg.n;
 * }, 'counter-1');
 * ```
 */
export function nactPersistenceEngine(
  persistence: { readonly journal: Journal; readonly snapshots: SnapshotStore },
  options: NactPersistenceEngineOptions = {},
): NactPersistenceEngine {
  const { journal, snapshots } = persistence;
  const writerId = options.writerId ?? `nact-${randomUUID()}`;
  const eventTypeOf = (data: unknown): string => (options.eventType === undefined ? defaultEventType(data) : options.eventType(data));

  return {
    events(persistenceKey, offset = 0, limit, tags) {
      const toSequenceNr = limit === undefined ? undefined : offset + limit;
      const required = tags ?? [];
      async function* matching(): AsyncGenerator<NactEvent> {
        for await (const event of journal.replay(persistenceKey, offset + 1, toSequenceNr)) {
          if (required.every((tag) => event.tags.includes(tag))) yield toNactEvent(event);
        }
      }
      const all = async (): Promise<NactEvent[]> => {
        const events: NactEvent[] = [];
        for await (const event of matching()) events.push(event);
        return events;
      };
      return {
        then: (onFulfilled, onRejected) => all().then(onFulfilled, onRejected),
        async reduce<U>(callback: (previous: U, event: NactEvent, index: number) => U, initial: U): Promise<U> {
          let accumulator = initial;
          let index = 0;
          for await (const event of matching()) accumulator = callback(accumulator, event, index++);
          return accumulator;
        },
      };
    },

    async persist(event) {
      await journal.append(event.key, [{ payload: event.data, eventType: eventTypeOf(event.data), tags: event.tags }], {
        expectedSequenceNr: event.sequenceNumber - 1,
        writerId,
      });
    },

    async latestSnapshot(persistenceKey) {
      const snapshot = await snapshots.loadLatest(persistenceKey);
      if (snapshot === undefined) return undefined;
      return {
        data: snapshot.state,
        sequenceNumber: snapshot.metadata.sequenceNr,
        key: persistenceKey,
        createdAt: snapshot.metadata.timestamp,
      };
    },

    async takeSnapshot(snapshot) {
      await snapshots.save({ persistenceId: snapshot.key, sequenceNr: snapshot.sequenceNumber, timestamp: snapshot.createdAt }, snapshot.data);
    },
  };
}

function toNactEvent(event: PersistedEvent): NactEvent {
  return {
    data: event.payload,
    sequenceNumber: event.sequenceNr,
    key: event.persistenceId,
    createdAt: event.timestamp,
    isDeleted: false,
    tags: [...event.tags].sort(),
  };
}

function defaultEventType(data: unknown): string {
  const type = typeof data === 'object' && data !== null ? (data as { type?: unknown }).type : undefined;
  return typeof type === 'string' ? type : 'nact-event';
}
