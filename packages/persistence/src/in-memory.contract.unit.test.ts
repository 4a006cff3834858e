/** The persistence contract run against the in-memory store of `@dataflow/core`. */
import { createInMemoryPersistence } from '@dataflow/core';
import { describeJournalContract } from './testing/journal-contract.js';

describeJournalContract('in-memory', () => {
  const plugin = createInMemoryPersistence();
  return Promise.resolve({ plugin, cleanup: () => plugin.close() });
});
