/** The persistence contract on a Postgres server, one schema per store. */
import { randomUUID } from 'node:crypto';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { describeJournalContract } from '../testing/journal-contract.js';
import { createPostgresPersistence } from './postgres-persistence.js';

let stores = 0;

describeJournalContract('postgres', async () => {
  const schema = testNamespace(import.meta.url, String(++stores));
  const connectionString = serviceSettings().postgresUrl;
  const pool = new pg.Pool({ connectionString, max: 10 });
  // A small page, so the queries' paging is exercised (and a current query's end is tested across pages).
  const settings = { schema, pollIntervalMs: 20, pageSize: 10 };
  const plugin = await createPostgresPersistence({ pool, ownsPool: false, ensureSchema: true, ...settings });
  return {
    plugin,
    openInstance: async () => {
      // Its own pool, as another process would have; named so a "crash" can kill exactly its connections.
      const applicationName = `contract-${randomUUID().slice(0, 8)}`;
      const own = new pg.Pool({ connectionString, max: 4, application_name: applicationName });
      own.on('error', () => undefined); // idle connections killed by crash()
      const instance = await createPostgresPersistence({ pool: own, ...settings });
      return {
        plugin: instance,
        crash: async () => {
          // The server ends its sessions as if the process died: in-flight statements commit or roll back on their own.
          await pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()', [applicationName]);
          await own.end().catch(() => undefined);
        },
      };
    },
    cleanup: async () => {
      await plugin.close();
      try {
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await pool.end();
      }
    },
  };
});
