/** The persistence contract run against the in-memory store of `@dataflow/core`. */
import { createInMemoryPersistence } from '@dataflow/core';
import { describeJournalContract } from './testing/journal-contract.js';

describeJournalContract('in-memory', () => {
  const plugin = createInMemoryPersistence();
  return Promise.resolve({
    plugin,
    // A crashed in-memory instance has nothing to release: it is just dropped.
    openInstance: () => Promise.resolve({ plugin: plugin.openInstance(), crash: () => Promise.resolve() }),
    cleanup: () => plugin.close(),
  });
});
