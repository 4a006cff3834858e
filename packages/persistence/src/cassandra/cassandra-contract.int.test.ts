import { Client } from 'cassandra-driver';
import { serviceSettings } from '@dataflow/test-env';
import { describeJournalContract, type ContractFixture } from '../testing/index.js';
import { cassandraFixture } from './cassandra-fixture.test.js';
import { createCassandraPersistence } from './cassandra-persistence.js';

// The same cases as every other store, once per single-writer mode. Current tag
// queries wait out the eventual-consistency delay themselves.
for (const singleWriter of ['lease', 'conditional'] as const) {
  describeJournalContract(`cassandra (${singleWriter})`, () => contractFixture(singleWriter), {
    manyPersistenceIds: 200,
    liveTimeoutMs: 30_000,
    testTimeoutMs: 90_000,
  });
}

/** The shared fixture, plus further instances on its keyspace, each with its own client (a second process). */
async function contractFixture(singleWriter: 'lease' | 'conditional'): Promise<ContractFixture> {
  const fixture = await cassandraFixture(import.meta.url, { singleWriter });
  return {
    plugin: fixture.plugin,
    cleanup: () => fixture.cleanup(),
    openInstance: async () => {
      const services = serviceSettings();
      const client = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
      await client.connect();
      const plugin = await createCassandraPersistence({
        client,
        keyspace: fixture.keyspace,
        eventualConsistencyDelayMs: 400,
        pollIntervalMs: 100,
        gapTimeoutMs: 3000,
        singleWriter,
      });
      const close = async (): Promise<void> => {
        try {
          await plugin.close();
        } finally {
          await client.shutdown();
        }
      };
      return {
        plugin: { journal: plugin.journal, snapshots: plugin.snapshots, queries: plugin.queries, close },
        // A crash: the client goes away without the plugin's close (no lease released, nothing drained).
        crash: () => client.shutdown(),
      };
    },
  };
}
