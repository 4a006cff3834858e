/** The persistence contract on PGlite with a data directory. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { describeJournalContract } from '../testing/journal-contract.js';
import { createSqlPersistence } from '../postgres/postgres-persistence.js';
import { pgliteExecutor } from './pglite-executor.js';
import { createPglitePersistence } from './pglite-persistence.js';

describeJournalContract(
  'pglite',
  async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'dataflow-pglite-contract-'));
    const db = await PGlite.create({ dataDir });
    const plugin = await createPglitePersistence({ db, pollIntervalMs: 10, pageSize: 10 });
    return {
      plugin,
      // PGlite is one connection in this process, and one process per data directory: a second
      // instance is a second plugin (own group writer, own close) on the same database.
      openInstance: async () => ({
        plugin: await createSqlPersistence(pgliteExecutor(db, { ownsDatabase: false }), { pollIntervalMs: 10, pageSize: 10 }),
        crash: () => Promise.resolve(),
      }),
      cleanup: async () => {
        await plugin.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  },
  { manyPersistenceIds: 500 },
);
