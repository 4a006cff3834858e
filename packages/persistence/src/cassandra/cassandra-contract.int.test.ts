import { describeJournalContract } from '../testing/index.js';
import { cassandraFixture } from './cassandra-test-fixture.js';

// The same cases as every other store; the tag views lag by the read journal's
// eventual-consistency delay, which current queries already wait out themselves.
describeJournalContract('cassandra', () => cassandraFixture(import.meta.url), {
  manyPersistenceIds: 200,
  liveTimeoutMs: 30_000,
  testTimeoutMs: 90_000,
});
