/**
 * The shared state behind the in-memory journal, read journal and snapshot
 * store: events in their serialized form (so every read hands out a fresh
 * copy and the same payloads fail here as in a durable store), a global
 * ordering for tag queries, and wake-ups for live queries.
 */
import type { SerializerRegistry } from '../serialization/serializer-registry.js';

/** One stored event; `ordering` is its 1-based global position. */
export interface StoredEventRow {
  readonly persistenceId: string;
  readonly sequenceNr: number;
  readonly ordering: number;
  readonly eventType: string;
  readonly schemaVersion: number;
  readonly tags: readonly string[];
  readonly timestamp: number;
  readonly writerId: string;
  readonly serializerId: string;
  readonly bytes: Uint8Array;
}

export interface StoredSnapshotRow {
  readonly sequenceNr: number;
  readonly timestamp: number;
  readonly schemaVersion: number;
  readonly serializerId: string;
  readonly bytes: Uint8Array;
}

/** What instances opened on one in-memory store share (the stored data and the live queries to wake). */
interface SharedLog {
  readonly rows: StoredEventRow[];
  readonly byPersistenceId: Map<string, StoredEventRow[]>;
  readonly persistenceIds: string[];
  readonly deletedTo: Map<string, number>;
  readonly snapshots: Map<string, Map<number, StoredSnapshotRow>>;
  waiters: Set<() => void>;
}

export class InMemoryEventLog {
  /** Every event in write order; `rows[i].ordering === i + 1`. */
  readonly rows: StoredEventRow[];
  readonly byPersistenceId: Map<string, StoredEventRow[]>;
  /** Persistence ids in the order of their first event. */
  readonly persistenceIds: string[];
  readonly deletedTo: Map<string, number>;
  readonly snapshots: Map<string, Map<number, StoredSnapshotRow>>;
  private readonly shared: SharedLog;
  /** Per instance: closing one instance leaves the others (and the data) usable. */
  private closedFlag = false;

  constructor(
    readonly serializers: SerializerRegistry,
    readonly now: () => number,
    /** Another instance whose stored data this one shares (a second "process" on the same store). */
    sharedWith?: InMemoryEventLog,
  ) {
    this.shared = sharedWith?.shared ?? {
      rows: [],
      byPersistenceId: new Map(),
      persistenceIds: [],
      deletedTo: new Map(),
      snapshots: new Map(),
      waiters: new Set(),
    };
    ({ rows: this.rows, byPersistenceId: this.byPersistenceId, persistenceIds: this.persistenceIds, deletedTo: this.deletedTo, snapshots: this.snapshots } =
      this.shared);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  highestSequenceNr(persistenceId: string): number {
    return this.byPersistenceId.get(persistenceId)?.at(-1)?.sequenceNr ?? 0;
  }

  /** Stores already validated rows of one persistence id at once and wakes live queries. */
  appendRows(persistenceId: string, rows: readonly Omit<StoredEventRow, 'ordering'>[]): void {
    let own = this.byPersistenceId.get(persistenceId);
    if (own === undefined) {
      own = [];
      this.byPersistenceId.set(persistenceId, own);
      this.persistenceIds.push(persistenceId);
    }
    for (const row of rows) {
      const stored: StoredEventRow = { ...row, ordering: this.rows.length + 1 };
      this.rows.push(stored);
      own.push(stored);
    }
    this.notify();
  }

  /**
   * Resolves on the next append, on close, or when `signal` aborts. The caller
   * checks for new data before waiting, in the same synchronous step, so no
   * wake-up is lost.
   */
  waitForChange(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        this.shared.waiters.delete(wake);
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      if (this.closedFlag || signal?.aborted === true) {
        resolve();
        return;
      }
      this.shared.waiters.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  close(): void {
    this.closedFlag = true;
    this.notify();
  }

  private notify(): void {
    const waiters = this.shared.waiters;
    this.shared.waiters = new Set();
    for (const wake of waiters) wake();
  }
}
