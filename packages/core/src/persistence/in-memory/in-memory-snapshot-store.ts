/**
 * The in-memory snapshot store: snapshots per persistence id and sequence
 * number, selected and deleted by criteria, serialized like in a durable store.
 */
import { isDataflowError } from '../../errors/dataflow-error.js';
import { SnapshotError } from '../persistence-errors.js';
import { SNAPSHOT_EVENT_TYPE } from '../serialization/serializer.js';
import type { SnapshotCriteria, SnapshotMetadata, SnapshotStore, StoredSnapshot } from '../snapshot-store.js';
import type { InMemoryEventLog, StoredSnapshotRow } from './in-memory-event-log.js';

/**
 * `SnapshotStore` kept in memory. Create it with `createInMemoryPersistence()`.
 *
 * @example
 * ```ts
 * const { snapshots } = createInMemoryPersistence();
 * await snapshots.save({ persistenceId: 'counter-1', sequenceNr: 100, timestamp: Date.now() }, { total: 42 });
 * const latest = await snapshots.loadLatest('counter-1'); // { metadata, state: { total: 42 }, schemaVersion: 1 }
 * ```
 */
export class InMemorySnapshotStore implements SnapshotStore {
  constructor(private readonly log: InMemoryEventLog) {}

  save(metadata: SnapshotMetadata, state: unknown, schemaVersion = 1): Promise<void> {
    try {
      this.ensureOpen(metadata.persistenceId);
      const serialized = this.log.serializers.serialize(state, { eventType: SNAPSHOT_EVENT_TYPE, schemaVersion });
      let own = this.log.snapshots.get(metadata.persistenceId);
      if (own === undefined) {
        own = new Map();
        this.log.snapshots.set(metadata.persistenceId, own);
      }
      own.set(metadata.sequenceNr, { sequenceNr: metadata.sequenceNr, timestamp: metadata.timestamp, schemaVersion, ...serialized });
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(asSnapshotError(metadata.persistenceId, error));
    }
  }

  loadLatest(persistenceId: string, criteria: SnapshotCriteria = {}): Promise<StoredSnapshot | undefined> {
    try {
      this.ensureOpen(persistenceId);
      let latest: StoredSnapshotRow | undefined;
      for (const row of this.log.snapshots.get(persistenceId)?.values() ?? []) {
        if (matches(row, criteria) && (latest === undefined || row.sequenceNr > latest.sequenceNr)) latest = row;
      }
      if (latest === undefined) return Promise.resolve(undefined);
      const state = this.log.serializers.deserialize(latest.serializerId, latest.bytes, { eventType: SNAPSHOT_EVENT_TYPE, schemaVersion: latest.schemaVersion });
      return Promise.resolve({
        metadata: { persistenceId, sequenceNr: latest.sequenceNr, timestamp: latest.timestamp },
        state,
        schemaVersion: latest.schemaVersion,
      });
    } catch (error) {
      return Promise.reject(asSnapshotError(persistenceId, error));
    }
  }

  delete(persistenceId: string, criteria: SnapshotCriteria): Promise<void> {
    try {
      this.ensureOpen(persistenceId);
      const own = this.log.snapshots.get(persistenceId);
      for (const row of [...(own?.values() ?? [])]) if (matches(row, criteria)) own?.delete(row.sequenceNr);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(asSnapshotError(persistenceId, error));
    }
  }

  close(): Promise<void> {
    this.log.close();
    return Promise.resolve();
  }

  private ensureOpen(persistenceId: string): void {
    if (this.log.closed) throw new SnapshotError(persistenceId, 'the snapshot store is closed', { retriable: false });
  }
}

function matches(row: StoredSnapshotRow, criteria: SnapshotCriteria): boolean {
  return (
    row.sequenceNr <= (criteria.maxSequenceNr ?? Number.POSITIVE_INFINITY) &&
    row.sequenceNr >= (criteria.minSequenceNr ?? 0) &&
    row.timestamp <= (criteria.maxTimestamp ?? Number.POSITIVE_INFINITY) &&
    row.timestamp >= (criteria.minTimestamp ?? Number.NEGATIVE_INFINITY)
  );
}

function asSnapshotError(persistenceId: string, error: unknown): Error {
  if (isDataflowError(error)) return error;
  return new SnapshotError(persistenceId, 'unexpected failure', { retriable: false, cause: error });
}
