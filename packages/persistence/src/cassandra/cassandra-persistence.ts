/**
 * Builds the Cassandra persistence plugin: journal, snapshot store and read
 * journal over one driver session.
 */
import { Client, types } from 'cassandra-driver';
import { DataflowError, isDataflowError, SerializerRegistry, type PersistencePlugin } from '@dataflow/core';
import { CassandraJournal } from './cassandra-journal.js';
import { MessagesReader } from './messages-reader.js';
import { CassandraReadJournal } from './cassandra-read-journal.js';
import { assertKeyspaceName, checkCassandraSchema, migrateCassandra } from './cassandra-schema.js';
import { CassandraSession } from './cassandra-session.js';
import { asReadError, cassandraReconnection, resolveSettings, type CassandraPersistenceSettings, type SingleWriterMode } from './cassandra-settings.js';
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
 * The keyspace is written in the other single-writer mode than this journal is
 * configured with (recorded in `journal_settings` by the first journal that
 * started on it). Mixing them would let lease holders overwrite conditional
 * writers' heads; not retriable.
 */
export class SingleWriterModeMismatchError extends DataflowError<'journal/single-writer-mode-mismatch'> {
  constructor(
    readonly keyspace: string,
    readonly recorded: string,
    readonly configured: SingleWriterMode,
  ) {
    super(
      'journal/single-writer-mode-mismatch',
      `Keyspace ${keyspace} is written with singleWriter '${recorded}' (recorded in ${keyspace}.journal_settings), ` +
        `but this journal is configured with '${configured}': the modes must not be mixed on one keyspace (docs/adr/0002). ` +
        `Configure singleWriter: '${recorded}', or use another keyspace.`,
      { retriable: false },
    );
  }
}

/**
 * Records the single-writer mode in the keyspace if none is recorded yet
 * (a conditional insert, so two journals starting at once agree), and
 * refuses a journal configured with the other one.
 */
async function claimSingleWriterMode(client: Client, keyspace: string, mode: SingleWriterMode): Promise<void> {
  const result = await client.execute(
    `INSERT INTO ${keyspace}.journal_settings (name, value) VALUES ('single_writer', ?) IF NOT EXISTS`,
    [mode],
    { prepare: true, consistency: types.consistencies.quorum, serialConsistency: types.consistencies.serial },
  );
  const recorded = result.wasApplied() ? mode : (result.first()?.['value'] as string | undefined);
  if (recorded !== mode) throw new SingleWriterModeMismatchError(keyspace, String(recorded), mode);
}

/**
 * Connects to Cassandra and returns the plugin. At start it checks that the
 * keyspace's schema is current (`SchemaVersionError` naming
 * `dataflow migrate --journal cassandra` otherwise; it changes no DDL) and
 * that no journal of the other single-writer mode writes it
 * (`SingleWriterModeMismatchError`). With `autoCreate: true` (development and
 * tests) it applies the missing migrations instead of checking.
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
          policies: { reconnection: cassandraReconnection() },
        });
  try {
    if (owned) await client.connect();
    if (options.autoCreate === true) await migrateCassandra(client, settings.keyspace, options.replication);
    else await checkCassandraSchema(client, settings.keyspace);
    await claimSingleWriterMode(client, settings.keyspace, settings.singleWriter);
  } catch (error) {
    if (owned) await client.shutdown();
    if (isDataflowError(error)) throw error;
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
