/**
 * The Cassandra snapshot store: table `snapshots`, one partition per
 * persistence id, newest sequence number first, read and written at
 * `snapshotConsistency` (the journal's write consistency by default: events
 * may be deleted behind a snapshot, and the journal's `deleteTo` only deletes
 * what a snapshot readable at its own consistency covers). A snapshot that
 * cannot be loaded is skipped for the next older one, up to
 * `snapshotLoadAttempts` snapshots (Pekko's load attempts).
 */
import {
  isDataflowError,
  SNAPSHOT_EVENT_TYPE,
  SnapshotError,
  type SerializerRegistry,
  type SnapshotCriteria,
  type SnapshotMetadata,
  type SnapshotStore,
  type StoredSnapshot,
} from '@dataflow/core';
import type { CassandraSession, Row } from './cassandra-session.js';
import { isRetriableDriverError } from './cassandra-settings.js';
import { toNumber } from './event-row.js';

/**
 * `SnapshotStore` on Cassandra. Create it with `createCassandraPersistence()`.
 *
 * @example
 * ```ts
 * await persistence.snapshots.save({ persistenceId: 'pipeline-1', sequenceNr: 100, timestamp: Date.now() }, state, 2);
 * const latest = await persistence.snapshots.loadLatest('pipeline-1');
 * ```
 */
export class CassandraSnapshotStore implements SnapshotStore {
  private closed = false;
  private readonly q: Record<'insert' | 'select' | 'deleteRange' | 'deleteOne', string>;

  constructor(
    private readonly session: CassandraSession,
    private readonly serializers: SerializerRegistry,
  ) {
    const ks = session.keyspace;
    this.q = {
      insert:
        `INSERT INTO ${ks}.snapshots (persistence_id, sequence_nr, timestamp, ser_id, ser_manifest, schema_version, snapshot_data) ` +
        'VALUES (?, ?, ?, ?, ?, ?, ?)',
      select: `SELECT * FROM ${ks}.snapshots WHERE persistence_id = ? AND sequence_nr >= ? AND sequence_nr <= ?`,
      deleteRange: `DELETE FROM ${ks}.snapshots WHERE persistence_id = ? AND sequence_nr >= ? AND sequence_nr <= ?`,
      deleteOne: `DELETE FROM ${ks}.snapshots WHERE persistence_id = ? AND sequence_nr = ?`,
    };
  }

  async save(metadata: SnapshotMetadata, state: unknown, schemaVersion = 1): Promise<void> {
    const { persistenceId } = metadata;
    this.ensureOpen(persistenceId);
    await this.guard(persistenceId, 'save', async () => {
      const manifest = { eventType: SNAPSHOT_EVENT_TYPE, schemaVersion };
      const stored = this.serializers.serialize(state, manifest);
      const bytes = Buffer.from(stored.bytes.buffer, stored.bytes.byteOffset, stored.bytes.byteLength);
      await this.session.execute(
        this.q.insert,
        [persistenceId, metadata.sequenceNr, metadata.timestamp, stored.serializerId, SNAPSHOT_EVENT_TYPE, schemaVersion, bytes],
        { consistency: this.session.settings.snapshotConsistency, idempotent: true },
      );
    });
  }

  /**
   * The newest snapshot matching `criteria` that can be loaded. One that
   * cannot (it does not deserialize) is reported (`snapshot.load-failed`) and
   * the next older one tried, up to `snapshotLoadAttempts` snapshots; when all
   * of those fail, the first failure is thrown. A failed read of the table is
   * thrown at once.
   */
  async loadLatest(persistenceId: string, criteria: SnapshotCriteria = {}): Promise<StoredSnapshot | undefined> {
    this.ensureOpen(persistenceId);
    const { snapshotLoadAttempts, onEvent } = this.session.settings;
    return this.guard(persistenceId, 'load', async () => {
      let firstFailure: Error | undefined;
      let attempts = 0;
      for await (const row of this.matching(persistenceId, criteria)) {
        attempts++;
        const metadata = toMetadata(persistenceId, row);
        const schemaVersion = row['schema_version'] as number;
        try {
          const bytes = row['snapshot_data'] as Buffer | null;
          if (bytes === null) throw new SnapshotError(persistenceId, `snapshot ${metadata.sequenceNr} has no data`, { retriable: false });
          const state = this.serializers.deserialize(row['ser_id'] as string, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
            eventType: SNAPSHOT_EVENT_TYPE,
            schemaVersion,
          });
          return { metadata, state, schemaVersion };
        } catch (error) {
          firstFailure ??= error instanceof Error ? error : new SnapshotError(persistenceId, `loading snapshot ${metadata.sequenceNr} failed`, { retriable: false, cause: error });
          onEvent({ type: 'snapshot.load-failed', persistenceId, sequenceNr: metadata.sequenceNr, error });
          if (attempts >= snapshotLoadAttempts) break;
        }
      }
      if (firstFailure !== undefined) throw firstFailure;
      return undefined;
    });
  }

  async delete(persistenceId: string, criteria: SnapshotCriteria): Promise<void> {
    this.ensureOpen(persistenceId);
    await this.guard(persistenceId, 'delete', async () => {
      const options = { consistency: this.session.settings.snapshotConsistency, idempotent: true };
      if (criteria.minTimestamp === undefined && criteria.maxTimestamp === undefined) {
        await this.session.execute(this.q.deleteRange, [persistenceId, criteria.minSequenceNr ?? 0, criteria.maxSequenceNr ?? Number.MAX_SAFE_INTEGER], options);
        return;
      }
      const doomed: number[] = [];
      for await (const row of this.matching(persistenceId, criteria)) doomed.push(toNumber(row['sequence_nr']));
      for (const sequenceNr of doomed) await this.session.execute(this.q.deleteOne, [persistenceId, sequenceNr], options);
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Rows matching `criteria`, highest sequence number first. */
  private async *matching(persistenceId: string, criteria: SnapshotCriteria): AsyncIterable<Row> {
    const rows = this.session.rows(
      this.q.select,
      [persistenceId, criteria.minSequenceNr ?? 0, criteria.maxSequenceNr ?? Number.MAX_SAFE_INTEGER],
      this.session.settings.snapshotConsistency,
      100,
    );
    for await (const row of rows) {
      const timestamp = toNumber(row['timestamp']);
      if (criteria.minTimestamp !== undefined && timestamp < criteria.minTimestamp) continue;
      if (criteria.maxTimestamp !== undefined && timestamp > criteria.maxTimestamp) continue;
      yield row;
    }
  }

  private async guard<T>(persistenceId: string, operation: string, task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } catch (error) {
      if (isDataflowError(error)) throw error;
      throw new SnapshotError(persistenceId, `${operation} failed`, { retriable: isRetriableDriverError(error), cause: error });
    }
  }

  private ensureOpen(persistenceId: string): void {
    if (this.closed) throw new SnapshotError(persistenceId, 'the snapshot store is closed', { retriable: false });
  }
}

function toMetadata(persistenceId: string, row: Row): SnapshotMetadata {
  return { persistenceId, sequenceNr: toNumber(row['sequence_nr']), timestamp: toNumber(row['timestamp']) };
}
