import { describeJournalContract } from '../testing/index.js';
import { cassandraFixture } from './cassandra-fixture.test.js';

// The same cases as every other store, once per single-writer mode. Current tag
// queries wait out the eventual-consistency delay themselves.
for (const singleWriter of ['lease', 'conditional'] as const) {
  describeJournalContract(`cassandra (${singleWriter})`, () => cassandraFixture(import.meta.url, { singleWriter }), {
    manyPersistenceIds: 200,
    liveTimeoutMs: 30_000,
    testTimeoutMs: 90_000,
  });
}
