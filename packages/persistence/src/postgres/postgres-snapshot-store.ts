/**
 * The Postgres snapshot store (also on PGlite): one row per persistence id
 * and sequence number, saved with an upsert, selected and deleted by criteria.
 */
import {
  isDataflowError,
  SNAPSHOT_EVENT_TYPE,
  SnapshotError,
  type SnapshotCriteria,
  type SnapshotMetadata,
  type SnapshotStore,
  type StoredSnapshot,
} from '@dataflow/core';
import { isRetriableDbError, messageOf } from './postgres-errors.js';
import type { PostgresStore } from './postgres-store.js';

interface SnapshotRow {
  readonly sequence_nr: string | number;
  readonly written_at: string | number;
  readonly schema_version: number;
  readonly serializer_id: string;
  readonly state: Uint8Array;
}

/** The criteria as `[minSeq, maxSeq, minTs, maxTs]` parameters ($2..$5). */
function bounds(criteria: SnapshotCriteria): number[] {
  return [
    criteria.minSequenceNr ?? 0,
    criteria.maxSequenceNr ?? Number.MAX_SAFE_INTEGER,
    criteria.minTimestamp ?? Number.MIN_SAFE_INTEGER,
    criteria.maxTimestamp ?? Number.MAX_SAFE_INTEGER,
  ];
}

const MATCHES = 'persistence_id = $1 AND sequence_nr BETWEEN $2 AND $3 AND written_at BETWEEN $4 AND $5';

/**
 * `SnapshotStore` on Postgres or PGlite. Create it with `createPostgresPersistence()`
 * or `createPglitePersistence()`.
 *
 * @example
 * ```ts
 * const { snapshots } = await createPglitePersistence({ dataDir: './data/journal' });
 * await snapshots.save({ persistenceId: 'pipeline-1', sequenceNr: 100, timestamp: Date.now() }, state);
 * const latest = await snapshots.loadLatest('pipeline-1');
 * ```
 */
export class PostgresSnapshotStore implements SnapshotStore {
  constructor(private readonly store: PostgresStore) {}

  async save(metadata: SnapshotMetadata, state: unknown, schemaVersion = 1): Promise<void> {
    const { persistenceId } = metadata;
    const { serializerId, bytes } = this.store.settings.serializers.serialize(state, { eventType: SNAPSHOT_EVENT_TYPE, schemaVersion });
    await this.run(persistenceId, 'save', (table) => [
      `INSERT INTO ${table} (persistence_id, sequence_nr, written_at, schema_version, serializer_id, state) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (persistence_id, sequence_nr) DO UPDATE SET written_at = EXCLUDED.written_at, schema_version = EXCLUDED.schema_version,
         serializer_id = EXCLUDED.serializer_id, state = EXCLUDED.state`,
      [persistenceId, metadata.sequenceNr, metadata.timestamp, schemaVersion, serializerId, bytes],
    ]);
  }

  async loadLatest(persistenceId: string, criteria: SnapshotCriteria = {}): Promise<StoredSnapshot | undefined> {
    const rows = await this.run<SnapshotRow>(persistenceId, 'load', (table) => [
      `SELECT sequence_nr, written_at, schema_version, serializer_id, state FROM ${table} WHERE ${MATCHES} ORDER BY sequence_nr DESC LIMIT 1`,
      [persistenceId, ...bounds(criteria)],
    ]);
    const row = rows[0];
    if (row === undefined) return undefined;
    try {
      return {
        metadata: { persistenceId, sequenceNr: Number(row.sequence_nr), timestamp: Number(row.written_at) },
        state: this.store.settings.serializers.deserialize(row.serializer_id, row.state, { eventType: SNAPSHOT_EVENT_TYPE, schemaVersion: row.schema_version }),
        schemaVersion: row.schema_version,
      };
    } catch (error) {
      if (isDataflowError(error)) throw error;
      throw new SnapshotError(persistenceId, 'cannot decode the snapshot', { retriable: false, cause: error });
    }
  }

  async delete(persistenceId: string, criteria: SnapshotCriteria): Promise<void> {
    await this.run(persistenceId, 'delete', (table) => [`DELETE FROM ${table} WHERE ${MATCHES}`, [persistenceId, ...bounds(criteria)]]);
  }

  close(): Promise<void> {
    return this.store.close();
  }

  private async run<Row extends object>(persistenceId: string, operation: string, statement: (table: string) => [string, unknown[]]): Promise<Row[]> {
    if (this.store.closed) throw new SnapshotError(persistenceId, `${operation}: the snapshot store is closed`, { retriable: false });
    const [sql, params] = statement(this.store.snapshotTable);
    try {
      return await this.store.executor.query<Row>(sql, params);
    } catch (error) {
      throw new SnapshotError(persistenceId, `${operation}: ${messageOf(error)}`, { retriable: isRetriableDbError(error), cause: error });
    }
  }
}
