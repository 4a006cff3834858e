/** The persistence contract on PGlite with a data directory. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeJournalContract } from '../testing/journal-contract.js';
import { createPglitePersistence } from './pglite-persistence.js';

describeJournalContract(
  'pglite',
  async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'dataflow-pglite-contract-'));
    const plugin = await createPglitePersistence({ dataDir, pollIntervalMs: 10 });
    return {
      plugin,
      cleanup: async () => {
        await plugin.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  },
  { manyPersistenceIds: 500 },
);
