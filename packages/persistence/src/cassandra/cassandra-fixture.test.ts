/**
 * Test helper (not a test; named *.test.ts to stay out of the build) of the Cassandra tests in this folder: a plugin on a fresh
 * keyspace of the real test Cassandra, dropped again on cleanup.
 */
import { Client } from 'cassandra-driver';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { createCassandraPersistence, type CassandraPersistence } from './cassandra-persistence.js';
import type { CassandraPersistenceSettings } from './cassandra-settings.js';

export interface CassandraFixture {
  readonly plugin: CassandraPersistence;
  /** A second client for reaching into the tables directly. */
  readonly client: Client;
  readonly keyspace: string;
  cleanup(): Promise<void>;
}

let counter = 0;

/** Creates keyspace `testNamespace(fileUrl, suffix)` with every table and a plugin on it. */
export async function cassandraFixture(fileUrl: string, settings: Partial<CassandraPersistenceSettings> = {}): Promise<CassandraFixture> {
  const services = serviceSettings();
  const keyspace = testNamespace(fileUrl, `k${counter++}`);
  const client = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
  await client.connect();
  const plugin = await createCassandraPersistence({
    client,
    keyspace,
    autoCreate: true,
    eventualConsistencyDelayMs: 400,
    pollIntervalMs: 100,
    gapTimeoutMs: 3000,
    ...settings,
  });
  return {
    plugin,
    client,
    keyspace,
    cleanup: async () => {
      try {
        await plugin.close();
        await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
      } finally {
        await client.shutdown();
      }
    },
  };
}
