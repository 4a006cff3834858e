/**
 * Opens the journal a node runs on: embedded PGlite under the data directory
 * by default, a Postgres server when a URL is configured, a Cassandra
 * cluster, memory (nothing survives), or a plugin the caller owns (tests,
 * embedding). Failures become `NodeConfigError`s that say
 * which setting is wrong, so `main` can exit with a clear message.
 *
 * Schema: the embedded journal migrates itself (it belongs to this node).
 * Against a Postgres server the node runs no DDL at start: it checks that
 * every migration of this release is applied and refuses to start otherwise,
 * naming `dataflow migrate` (see src/cli/); `DATAFLOW_MIGRATE=auto` (the
 * store's `migrate: 'auto'`) opts in to migrating at start instead.
 */
import { createInMemoryPersistence, isDataflowError, type PersistencePlugin } from '@dataflow/core';
import {
  cassandraReconnection,
  claimCassandraKeyspace,
  createCassandraPersistence,
  createPglitePersistence,
  createPostgresPersistence,
  KeyspaceClaimAbortedError,
  KeyspaceClaimedError,
  SchemaVersionError,
  type KeyspaceClaim,
  type KeyspaceClaimEvent,
  type KeyspaceClaimLostError,
} from '@dataflow/persistence';
import { Client } from 'cassandra-driver';
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { NodeConfigError } from './node-errors.js';
import type { NodeLogger } from './node-logger.js';

/** Postgres' `shared_buffers` of the embedded journal, in MiB: it appends and re-reads recent rows, 128 MB of cache buy nothing. */
export const PGLITE_SHARED_BUFFERS_MB = 16;

/** Where a node keeps its journal and snapshots. */
export type NodeStore =
  /** Embedded Postgres (PGlite) in `<dataDir>/journal`: no server needed. */
  | { readonly type: 'pglite'; readonly dataDir: string }
  /**
   * A Postgres server, tables in `schema` (default `dataflow`). `migrate`:
   * `'check'` (default) refuses a schema that misses a migration, naming
   * `dataflow migrate`; `'auto'` applies the missing migrations at start.
   */
  | { readonly type: 'postgres'; readonly url: string; readonly schema?: string; readonly migrate?: NodeMigrateMode }
  /** A Cassandra cluster (keyspace checked, or migrated when `migrate` is `'auto'`). */
  | {
      readonly type: 'cassandra';
      readonly contactPoints: readonly string[];
      readonly localDataCenter: string;
      readonly keyspace: string;
      readonly username?: string;
      readonly password?: string;
      readonly migrate?: NodeMigrateMode;
      /** Names this node in the journal's writer leases. */
      readonly nodeId?: string;
      /**
       * Hold the keyspace alone while the node runs (outside a cluster): a
       * second process is refused at start, naming this one (see
       * `claimCassandraKeyspace`). `onLost`: another process took it.
       */
      readonly claim?: {
        readonly holder: string;
        readonly onEvent?: (event: KeyspaceClaimEvent) => void;
        readonly onLost: (error: KeyspaceClaimLostError) => void;
        /** Aborted when the process is told to stop: a wait for another node's claim ends at once. */
        readonly signal?: AbortSignal;
      };
    }
  /** In memory: everything is lost when the process ends (tries and tests). */
  | { readonly type: 'memory' }
  /** A plugin owned by the caller: the node does not close it. */
  | { readonly type: 'plugin'; readonly plugin: PersistencePlugin };

/** What a node does about a Postgres server's schema at start (`DATAFLOW_MIGRATE`). */
export type NodeMigrateMode = 'check' | 'auto';

/** An open store and whether the node closes it at shutdown. */
export interface OpenedStore {
  readonly plugin: PersistencePlugin;
  readonly owned: boolean;
  /** Where it is, for logs (a Postgres URL without its password). */
  readonly description: string;
}

/**
 * Opens `store`.
 *
 * @example
 * ```ts
 * const { plugin } = await openNodeStore({ type: 'pglite', dataDir: './data' }, logger);
 * ```
 */
export async function openNodeStore(store: NodeStore, logger: NodeLogger): Promise<OpenedStore> {
  switch (store.type) {
    case 'plugin':
      return { plugin: store.plugin, owned: false, description: 'a plugin given by the caller' };
    case 'pglite':
      return openPglite(store.dataDir);
    case 'postgres':
      return openPostgres(store.url, store.schema ?? 'dataflow', store.migrate ?? 'check', logger);
    case 'cassandra':
      return openCassandra(store);
    case 'memory':
      return { plugin: createInMemoryPersistence(), owned: true, description: 'memory (nothing survives the process)' };
  }
}

/** Creates `dir` if needed and checks this process may write in it. */
export async function ensureWritableDirectory(dir: string, setting: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (error) {
    throw new NodeConfigError(setting, `the directory ${dir} cannot be created or is not writable (${messageOf(error)})`, { cause: error });
  }
}

async function openPglite(dataDir: string): Promise<OpenedStore> {
  await ensureWritableDirectory(dataDir, 'DATAFLOW_DATA_DIR');
  const journalDir = join(dataDir, 'journal');
  try {
    // Memory: initdb of a new directory runs in a child process, and shared_buffers is 16 MB instead of 128 (see pglite-data-dir.ts).
    const plugin = await createPglitePersistence({ dataDir: journalDir, initializeInChildProcess: true, sharedBuffersMb: PGLITE_SHARED_BUFFERS_MB });
    return { plugin, owned: true, description: `embedded PGlite in ${journalDir}` };
  } catch (error) {
    if (isDataflowError(error, 'persistence/data-dir-locked')) {
      throw new NodeConfigError('DATAFLOW_DATA_DIR', `${error.message} (two nodes on one embedded journal lose each other's writes)`, { cause: error });
    }
    throw new NodeConfigError('DATAFLOW_DATA_DIR', `cannot open the embedded journal in ${journalDir} (${messageOf(error)})`, { cause: error });
  }
}

async function openPostgres(url: string, schema: string, migrate: NodeMigrateMode, logger: NodeLogger): Promise<OpenedStore> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new NodeConfigError('DATAFLOW_POSTGRES_URL', 'is not a URL; expected postgres://user[:password]@host[:port]/database', { cause: error });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new NodeConfigError('DATAFLOW_POSTGRES_URL', `has the scheme ${parsed.protocol}; expected postgres:// or postgresql://`);
  }
  const shown = redacted(parsed);
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5_000 });
  // An idle client can die with its server; the pool replaces it. Say so rather than crash the process.
  pool.on('error', (error) => logger.warn('an idle Postgres connection failed', { url: shown, error: error.message }));
  try {
    // 'check': one read of <schema>.schema_migrations, no DDL; a schema that is too old fails with SchemaVersionError.
    const plugin = await createPostgresPersistence({ pool, schema, ensureSchema: migrate === 'auto' });
    return { plugin, owned: true, description: `Postgres ${shown} (schema ${schema})` };
  } catch (error) {
    // createPostgresPersistence has ended the pool already (it owns it): ending it again only adds "Called end on pool more than once".
    if (error instanceof SchemaVersionError) {
      // Not retriable: waiting does not migrate the schema; an operator runs the command the message names.
      throw new NodeConfigError(
        'DATAFLOW_POSTGRES_SCHEMA',
        `${error.message} (with DATAFLOW_POSTGRES_URL set, or --url), or set DATAFLOW_MIGRATE=auto to migrate at start`,
        { cause: error },
      );
    }
    throw new NodeConfigError('DATAFLOW_POSTGRES_URL', `cannot use ${shown} (${messageOf(error)})`, { retriable: true, cause: error });
  }
}

async function openCassandra(store: Extract<NodeStore, { type: 'cassandra' }>): Promise<OpenedStore> {
  const where = `Cassandra ${store.contactPoints.join(',')} (keyspace ${store.keyspace})`;
  const client = new Client({
    contactPoints: [...store.contactPoints],
    localDataCenter: store.localDataCenter,
    pooling: { maxRequestsPerConnection: 2048 },
    // Back within seconds of Cassandra after an outage, not after the driver's default backoff of up to 10 minutes.
    policies: { reconnection: cassandraReconnection() },
    ...(store.username === undefined ? {} : { credentials: { username: store.username, password: store.password ?? '' } }),
  });
  try {
    await client.connect();
  } catch (error) {
    await client.shutdown().catch(() => undefined);
    throw new NodeConfigError('cassandra.contactPoints', `cannot connect to ${where} (${messageOf(error)})`, { retriable: true, cause: error });
  }
  let claim: KeyspaceClaim | undefined;
  try {
    const plugin = await createCassandraPersistence({
      client,
      keyspace: store.keyspace,
      autoCreate: store.migrate === 'auto',
      ...(store.nodeId === undefined ? {} : { nodeId: store.nodeId }),
    });
    // Before any pipeline resumes: a second node on this keyspace would run the same pipelines and write the same sinks.
    if (store.claim !== undefined) {
      const { holder, onEvent, onLost, signal } = store.claim;
      claim = await claimCassandraKeyspace(client, store.keyspace, { holder, ...(onEvent === undefined ? {} : { onEvent }), ...(signal === undefined ? {} : { signal }) }).catch(async (error: unknown) => {
        await plugin.close().catch(() => undefined);
        throw error;
      });
      void claim.lost.then(onLost);
    }
    const held = claim;
    // The claim goes after the node's last journal write, before the client.
    return { plugin: { ...plugin, close: () => plugin.close().finally(async () => { await held?.release(); await client.shutdown(); }) }, owned: true, description: where };
  } catch (error) {
    await client.shutdown().catch(() => undefined);
    if (error instanceof KeyspaceClaimAbortedError) throw error; // told to stop while waiting: not a configuration problem
    if (error instanceof KeyspaceClaimedError) {
      throw new NodeConfigError(
        'cassandra.keyspace',
        `another node runs on ${where}: ${error.message}. Two nodes on one keyspace outside a cluster would run the same pipelines and write the same sinks: ` +
          'give each node its own keyspace, or run them as a cluster (cluster.enabled)',
        { cause: error },
      );
    }
    if (error instanceof SchemaVersionError) {
      throw new NodeConfigError('cassandra.keyspace', `${error.message}, or set DATAFLOW_MIGRATE=auto to migrate at start`, { cause: error });
    }
    throw new NodeConfigError('cassandra.keyspace', `cannot use ${where} (${messageOf(error)})`, { retriable: isDataflowError(error) && error.retriable, cause: error });
  }
}

/** `url` with its password (if any) as `***`, for messages and logs. */
export function redacted(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password !== '') copy.password = '***';
  return copy.href;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
