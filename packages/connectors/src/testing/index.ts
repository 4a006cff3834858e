/**
 * `@dataflow/connectors/testing`: connectors for tests.
 */
export { InMemorySink, type InjectedFailure, type InMemorySinkStatus } from '../memory/in-memory-sink.js';
export { describeKafkaClientContract, type KafkaContractOptions } from '../kafka/testing/kafka-client-contract.js';
export { generateNodeExporterText, type GeneratedPage } from '@dataflow/core/testing';
