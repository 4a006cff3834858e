/**
 * `@dataflow/core`: the actor runtime, the persistence SPI with its in-memory
 * store, and the pipeline domain.
 */
export { DataflowError, isDataflowError, isRetriable, type DataflowErrorOptions } from './errors/dataflow-error.js';
export * from './persistence/persistence-errors.js';
export type * from './persistence/journal.js';
export type * from './persistence/snapshot-store.js';
export * from './persistence/queries.js';
export type * from './persistence/persistence-plugin.js';
