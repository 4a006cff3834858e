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

export class InMemoryEventLog {
  /** Every event in write order; `rows[i].ordering === i + 1`. */
  readonly rows: StoredEventRow[] = [];
  readonly byPersistenceId = new Map<string, StoredEventRow[]>();
  /** Persistence ids in the order of their first event. */
  readonly persistenceIds: string[] = [];
  readonly deletedTo = new Map<string, number>();
  readonly snapshots = new Map<string, Map<number, StoredSnapshotRow>>();
  private waiters = new Set<() => void>();
  private closedFlag = false;

  constructor(
    readonly serializers: SerializerRegistry,
    readonly now: () => number,
  ) {}

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
        this.waiters.delete(wake);
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      if (this.closedFlag || signal?.aborted === true) {
        resolve();
        return;
      }
      this.waiters.add(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  close(): void {
    this.closedFlag = true;
    this.notify();
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }
}
