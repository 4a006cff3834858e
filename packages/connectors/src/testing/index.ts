/**
 * `@dataflow/connectors/testing`: connectors for tests.
 */
export { InMemorySink, type InjectedFailure, type InMemorySinkStatus } from '../memory/in-memory-sink.js';
