/** The persistence contract on a Postgres server, one schema per store. */
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { describeJournalContract } from '../testing/journal-contract.js';
import { createPostgresPersistence } from './postgres-persistence.js';

let stores = 0;

describeJournalContract(
  'postgres',
  async () => {
    const schema = testNamespace(import.meta.url, String(++stores));
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 10 });
    const plugin = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true, pollIntervalMs: 20 });
    return {
      plugin,
      cleanup: async () => {
        await plugin.close();
        try {
          await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        } finally {
          await pool.end();
        }
      },
    };
  },
);
