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
export type * from './connector/data-record.js';
export type * from './connector/source.js';
export type * from './connector/sink.js';
export type * from './connector/dead-letter.js';
export * from './connector/connector-errors.js';
