/**
 * The snapshot store port: the state of a persistence id after a given
 * sequence number, so recovery can start there instead of at event 1.
 */

export interface SnapshotMetadata {
  readonly persistenceId: string;
  /** The state includes every event up to and including this sequence number. */
  readonly sequenceNr: number;
  /** Epoch milliseconds. */
  readonly timestamp: number;
}

export interface StoredSnapshot {
  readonly metadata: SnapshotMetadata;
  readonly state: unknown;
  /** Version of the state's schema, for upcasting old snapshots. */
  readonly schemaVersion: number;
}

/** Which snapshots an operation considers; every bound is inclusive. */
export interface SnapshotCriteria {
  readonly maxSequenceNr?: number;
  readonly minSequenceNr?: number;
  readonly maxTimestamp?: number;
  readonly minTimestamp?: number;
}

export interface SnapshotStore {
  /** Saves (or replaces) the snapshot at `metadata.sequenceNr`. */
  save(metadata: SnapshotMetadata, state: unknown, schemaVersion?: number): Promise<void>;
  /** The snapshot with the highest sequence number matching `criteria`, if any. */
  loadLatest(persistenceId: string, criteria?: SnapshotCriteria): Promise<StoredSnapshot | undefined>;
  /** Deletes every snapshot matching `criteria`. */
  delete(persistenceId: string, criteria: SnapshotCriteria): Promise<void>;
  close(): Promise<void>;
}
