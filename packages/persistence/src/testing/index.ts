/**
 * `@dataflow/persistence/testing`: the contract suite every persistence store
 * passes. Needs `vitest` (a peer dependency of this entry point).
 */
export { describeJournalContract, type ContractFixture, type JournalContractOptions } from './journal-contract.js';
