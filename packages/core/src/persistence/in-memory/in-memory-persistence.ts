/**
 * Builds the in-memory persistence plugin: journal, snapshot store and read
 * journal sharing one store. The default for tests and for a node run without
 * a database; the contract suite of `@dataflow/persistence/testing` pins it to
 * the same behaviour as the durable stores.
 */
import type { PersistencePlugin } from '../persistence-plugin.js';
import { SerializerRegistry } from '../serialization/serializer-registry.js';
import { InMemoryEventLog } from './in-memory-event-log.js';
import { InMemoryJournal } from './in-memory-journal.js';
import { InMemoryReadJournal } from './in-memory-read-journal.js';
import { InMemorySnapshotStore } from './in-memory-snapshot-store.js';

export interface InMemoryPersistenceOptions {
  /** Epoch milliseconds for event timestamps; defaults to `Date.now`. Pass a test clock in tests. */
  readonly now?: () => number;
  /** Serializers and payload size limit; defaults to JSON with a 1 MiB limit. */
  readonly serializers?: SerializerRegistry;
}

/** The in-memory plugin with its concrete parts. */
export interface InMemoryPersistence extends PersistencePlugin {
  readonly journal: InMemoryJournal;
  readonly snapshots: InMemorySnapshotStore;
  readonly queries: InMemoryReadJournal;
  /**
   * Opens another instance on the same stored data, as a second process on
   * one database would be: it sees every event and snapshot, races on the
   * same sequence numbers, and has its own `close()`.
   */
  openInstance(): InMemoryPersistence;
}

/**
 * Creates an empty in-memory persistence back end.
 *
 * Payloads are serialized on write and deserialized on every read, so callers
 * can never change stored history through an object they hold, and a payload
 * a durable store would refuse (too large, not serializable) is refused here too.
 *
 * @example
 * ```ts
 * let now = 0;
 * const persistence = createInMemoryPersistence({ now: () => now });
 * await persistence.journal.append('p-1', [{ eventType: 'Started', payload: {} }], { expectedSequenceNr: 0, writerId: 'w' });
 * now += 1000;
 * await persistence.close();
 * ```
 */
export function createInMemoryPersistence(options: InMemoryPersistenceOptions = {}): InMemoryPersistence {
  return instanceOn(new InMemoryEventLog(options.serializers ?? new SerializerRegistry(), options.now ?? Date.now));
}

function instanceOn(log: InMemoryEventLog): InMemoryPersistence {
  return {
    journal: new InMemoryJournal(log),
    snapshots: new InMemorySnapshotStore(log),
    queries: new InMemoryReadJournal(log),
    close: () => {
      log.close();
      return Promise.resolve();
    },
    openInstance: () => instanceOn(new InMemoryEventLog(log.serializers, log.now, log)),
  };
}
