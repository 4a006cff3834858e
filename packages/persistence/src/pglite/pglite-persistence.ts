/**
 * Builds the embedded persistence plugin: the Postgres stores on PGlite with
 * a data directory. The node's default durable store when no server is set.
 * A data directory is locked for the process that opens it
 * (`data-dir-lock.ts`): a second process fails at once, naming the holder.
 */
import { PGlite } from '@electric-sql/pglite';
import { createSqlPersistence, type PostgresPersistence, type PostgresPersistenceOptions } from '../postgres/postgres-persistence.js';
import { lockDataDirectory, type DataDirectoryLock } from './data-dir-lock.js';
import { initializeDataDirectory, pgliteStartParams } from './pglite-data-dir.js';
import { pgliteExecutor } from './pglite-executor.js';

export interface PglitePersistenceOptions extends Omit<PostgresPersistenceOptions, 'ensureSchema'> {
  /** Directory of the database files (created if missing, then locked for this process); omit for a database in memory. */
  readonly dataDir?: string;
  /** An already opened PGlite instance instead of `dataDir`; it is closed with the plugin. */
  readonly db?: PGlite;
  /** Postgres' `shared_buffers` in MiB for a database opened from `dataDir` (default: Postgres' 128). */
  readonly sharedBuffersMb?: number;
  /** Create a new `dataDir` in a short-lived child process, so initdb's memory does not stay in this one (default false). */
  readonly initializeInChildProcess?: boolean;
}

/**
 * Opens (or creates) an embedded database and its tables.
 *
 * @example
 * ```ts
 * const persistence = await createPglitePersistence({ dataDir: './data/journal' });
 * await persistence.journal.append('p-1', [{ eventType: 'Started', payload: {} }], { expectedSequenceNr: 0, writerId: 'node' });
 * await persistence.close(); // flushes and closes the data directory, and releases its lock
 * ```
 */
export async function createPglitePersistence(options: PglitePersistenceOptions = {}): Promise<PostgresPersistence> {
  const dataDir = options.db === undefined ? options.dataDir : undefined;
  const lock: DataDirectoryLock | undefined = dataDir === undefined ? undefined : await lockDataDirectory(dataDir);
  try {
    if (dataDir !== undefined && options.initializeInChildProcess === true) await initializeDataDirectory(dataDir);
    const db =
      options.db ??
      (await PGlite.create({
        ...(dataDir === undefined ? {} : { dataDir }),
        ...(options.sharedBuffersMb === undefined ? {} : { startParams: pgliteStartParams({ sharedBuffersMb: options.sharedBuffersMb }) }),
      }));
    const executor = pgliteExecutor(db);
    let plugin: PostgresPersistence;
    try {
      plugin = await createSqlPersistence(executor, { ...options, ensureSchema: true });
    } catch (error) {
      await executor.close();
      throw error;
    }
    if (lock === undefined) return plugin;
    return { ...plugin, close: () => plugin.close().finally(() => lock.release()) };
  } catch (error) {
    await lock?.release();
    throw error;
  }
}
