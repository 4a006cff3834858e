/**
 * Recovery of an event-sourced entity: the latest snapshot plus the events
 * after it, upcast and folded into state. All or nothing: any failure (a read
 * error, an event handler that throws, an event that cannot be upcast, a hole
 * in the sequence numbers) ends in a `RecoveryFailedError` and no state.
 */
import { isRetriable } from '../errors/dataflow-error.js';
import type { Journal, PersistedEvent } from '../persistence/journal.js';
import type { SnapshotStore } from '../persistence/snapshot-store.js';
import type { EventSourcedBehavior } from './event-sourced.js';
import { RecoveryFailedError } from './event-sourcing-errors.js';

/** The journal and snapshot store an entity persists to (a `PersistencePlugin` fits). */
export interface EntityPersistence {
  readonly journal: Journal;
  readonly snapshots: SnapshotStore;
}

/** A recovered entity. */
export interface Recovered<State> {
  readonly state: State;
  /** Highest sequence number of the entity (0 when it has no history). */
  readonly sequenceNr: number;
  /** Sequence number of the snapshot recovery started from, if any. */
  readonly snapshotSequenceNr: number | undefined;
  readonly eventsReplayed: number;
}

/**
 * Rebuilds the state of `persistenceId` from `persistence`.
 *
 * @example
 * ```ts
 * const { state, sequenceNr } = await recoverState(counter, 'counter-1', persistence);
 * ```
 */
export async function recoverState<Evt, State>(
  behavior: EventSourcedBehavior<never, Evt, State>,
  persistenceId: string,
  persistence: EntityPersistence,
): Promise<Recovered<State>> {
  const readFailed = (what: string, error: unknown, sequenceNr?: number): RecoveryFailedError =>
    new RecoveryFailedError(persistenceId, sequenceNr, `${what} failed`, { retriable: isRetriable(error), cause: error });

  let snapshot;
  try {
    snapshot = await persistence.snapshots.loadLatest(persistenceId);
  } catch (error) {
    throw readFailed('loading the latest snapshot', error);
  }
  let state = behavior.emptyState;
  if (snapshot !== undefined) {
    try {
      state = behavior.upcastState(snapshot.schemaVersion, snapshot.state);
    } catch (error) {
      throw new RecoveryFailedError(persistenceId, snapshot.metadata.sequenceNr, `upcasting the snapshot (v${snapshot.schemaVersion}) failed`, {
        retriable: false,
        cause: error,
      });
    }
  }
  let sequenceNr = snapshot?.metadata.sequenceNr ?? 0;
  let eventsReplayed = 0;

  const events = persistence.journal.replay(persistenceId, sequenceNr + 1)[Symbol.asyncIterator]();
  for (;;) {
    let next;
    try {
      next = await events.next();
    } catch (error) {
      throw readFailed('replaying events', error, sequenceNr + 1);
    }
    if (next.done === true) break;
    const stored = next.value;
    if (stored.sequenceNr !== sequenceNr + 1) {
      throw new RecoveryFailedError(persistenceId, sequenceNr + 1, `expected event ${sequenceNr + 1}, the journal returned ${stored.sequenceNr}`, {
        retriable: false,
      });
    }
    try {
      const event = behavior.upcast(stored.eventType, stored.schemaVersion, stored.payload);
      state = behavior.onEvent(state, event);
    } catch (error) {
      await events.return?.();
      throw new RecoveryFailedError(persistenceId, stored.sequenceNr, `applying ${stored.eventType}@v${stored.schemaVersion} failed`, {
        retriable: false,
        cause: error,
      });
    }
    sequenceNr = stored.sequenceNr;
    eventsReplayed++;
  }

  let highest;
  try {
    highest = await persistence.journal.highestSequenceNr(persistenceId);
  } catch (error) {
    throw readFailed('reading the highest sequence number', error);
  }
  if (highest > sequenceNr) {
    // Either events after the snapshot are missing, or another writer appended meanwhile: never start on a partial history.
    throw new RecoveryFailedError(persistenceId, sequenceNr + 1, `the journal holds events up to ${highest} but replay ended at ${sequenceNr}`, {
      retriable: true,
    });
  }
  return { state, sequenceNr, snapshotSequenceNr: snapshot?.metadata.sequenceNr, eventsReplayed };
}

/** What the journal holds after a known sequence number. */
export interface HeadAfter {
  /** The events after `afterSequenceNr`, in order (possibly fewer than up to `highest` when some were deleted). */
  readonly events: readonly PersistedEvent[];
  /** The highest sequence number of the persistence id. */
  readonly highest: number;
}

/**
 * Reads the head of `persistenceId` beyond `afterSequenceNr`: used after a
 * write whose outcome is unknown, to find out whether it was stored before
 * writing again.
 *
 * @example
 * ```ts
 * const { events, highest } = await readHeadAfter(journal, 'counter-1', 41);
 * const mine = events.every((e) => e.writerId === writerId);
 * ```
 */
export async function readHeadAfter(journal: Journal, persistenceId: string, afterSequenceNr: number): Promise<HeadAfter> {
  const events: PersistedEvent[] = [];
  for await (const event of journal.replay(persistenceId, afterSequenceNr + 1)) events.push(event);
  const highest = await journal.highestSequenceNr(persistenceId);
  return { events, highest };
}
