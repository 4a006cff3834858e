/**
 * Builds the embedded persistence plugin: the Postgres stores on PGlite with
 * a data directory. The node's default durable store when no server is set.
 */
import { PGlite } from '@electric-sql/pglite';
import { createSqlPersistence, type PostgresPersistence, type PostgresPersistenceOptions } from '../postgres/postgres-persistence.js';
import { pgliteExecutor } from './pglite-executor.js';

export interface PglitePersistenceOptions extends Omit<PostgresPersistenceOptions, 'ensureSchema'> {
  /** Directory of the database files (created if missing); omit for a database in memory. */
  readonly dataDir?: string;
  /** An already opened PGlite instance instead of `dataDir`; it is closed with the plugin. */
  readonly db?: PGlite;
}

/**
 * Opens (or creates) an embedded database and its tables.
 *
 * @example
 * ```ts
 * const persistence = await createPglitePersistence({ dataDir: './data/journal' });
 * await persistence.journal.append('p-1', [{ eventType: 'Started', payload: {} }], { expectedSequenceNr: 0, writerId: 'node' });
 * await persistence.close(); // flushes and closes the data directory
 * ```
 */
export async function createPglitePersistence(options: PglitePersistenceOptions = {}): Promise<PostgresPersistence> {
  const db = options.db ?? (await PGlite.create(options.dataDir === undefined ? {} : { dataDir: options.dataDir }));
  const executor = pgliteExecutor(db);
  try {
    return await createSqlPersistence(executor, { ...options, ensureSchema: true });
  } catch (error) {
    await executor.close();
    throw error;
  }
}
