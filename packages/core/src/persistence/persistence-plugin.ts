/**
 * A complete persistence back end: what an actor system needs to run
 * event-sourced behaviors and what projections need to read them back.
 */
import type { Journal } from './journal.js';
import type { ReadJournal } from './queries.js';
import type { SnapshotStore } from './snapshot-store.js';

export interface PersistencePlugin {
  readonly journal: Journal;
  readonly snapshots: SnapshotStore;
  readonly queries: ReadJournal;
  /** Closes journal, snapshot store and queries. */
  close(): Promise<void>;
}
