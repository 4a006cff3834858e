/**
 * Builds the Cassandra persistence plugin: journal, snapshot store and read
 * journal over one driver session.
 */
import { Client } from 'cassandra-driver';
import { SerializerRegistry, type PersistencePlugin } from '@dataflow/core';
import { CassandraJournal } from './cassandra-journal.js';
import { MessagesReader } from './messages-reader.js';
import { CassandraReadJournal } from './cassandra-read-journal.js';
import { assertKeyspaceName, createJournalSchema } from './cassandra-schema.js';
import { CassandraSession } from './cassandra-session.js';
import { asReadError, resolveSettings, type CassandraPersistenceSettings } from './cassandra-settings.js';
import { CassandraSnapshotStore } from './cassandra-snapshot-store.js';
import { TagViewWriter } from './tag-view-writer.js';

export type CassandraConnection =
  /** The plugin creates, connects and finally shuts down its own client. */
  | { readonly contactPoints: readonly string[]; readonly localDataCenter: string }
  /** A connected client owned by the caller: `close()` leaves it open. */
  | { readonly client: Client };

export type CassandraPersistenceOptions = CassandraPersistenceSettings & CassandraConnection;

/** The Cassandra plugin with its concrete parts. */
export interface CassandraPersistence extends PersistencePlugin {
  readonly journal: CassandraJournal;
  readonly snapshots: CassandraSnapshotStore;
  readonly queries: CassandraReadJournal;
}

/**
 * Connects to Cassandra and returns the plugin. With `autoCreate: true` the
 * keyspace and tables are created first (for development and tests; in
 * production apply `cql/001-journal.cql`).
 *
 * @example
 * ```ts
 * const persistence = await createCassandraPersistence({
 *   contactPoints: ['127.0.0.1:9042'], localDataCenter: 'datacenter1', keyspace: 'dataflow',
 * });
 * const { lastSequenceNr } = await persistence.journal.append('pipeline-1',
 *   [{ eventType: 'PipelineCreated', payload: { name: 'orders' }, tags: ['pipeline-events'] }],
 *   { expectedSequenceNr: 0, writerId: 'node-1' });
 * await persistence.close();
 * ```
 */
export async function createCassandraPersistence(options: CassandraPersistenceOptions): Promise<CassandraPersistence> {
  assertKeyspaceName(options.keyspace);
  const settings = resolveSettings(options);
  const owned = !('client' in options);
  const client =
    'client' in options
      ? options.client
      : new Client({
          contactPoints: [...options.contactPoints],
          localDataCenter: options.localDataCenter,
          pooling: { maxRequestsPerConnection: 2048 },
        });
  try {
    if (owned) await client.connect();
    if (options.autoCreate === true) await createJournalSchema(client, settings.keyspace, options.replication);
  } catch (error) {
    if (owned) await client.shutdown();
    throw asReadError(`Cannot start the Cassandra persistence plugin on keyspace ${settings.keyspace}`, error);
  }
  const serializers = options.serializers ?? new SerializerRegistry();
  const session = new CassandraSession(client, settings);
  const messages = new MessagesReader(session, serializers);
  const journal = new CassandraJournal(session, serializers, messages, new TagViewWriter(session));
  const snapshots = new CassandraSnapshotStore(session, serializers);
  const queries = new CassandraReadJournal(session, serializers, messages);
  let closing: Promise<void> | undefined;
  return {
    journal,
    snapshots,
    queries,
    close: () =>
      (closing ??= (async () => {
        await Promise.all([journal.close(), snapshots.close(), queries.close()]);
        if (owned) await client.shutdown();
      })()),
  };
}
