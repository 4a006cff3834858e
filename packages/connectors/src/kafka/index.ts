/**
 * The Kafka client port, its two adapters and their typed errors.
 */
export { createKafkaClient } from './kafka-client.js';
export { KafkaSource, kafkaSourceDefinitionSchema, parseKafkaSourceDefinition, type KafkaSourceDefinition, type KafkaSourceDefinitionInput } from './kafka-source.js';
export { KafkaSink, kafkaSinkDefinitionSchema, parseKafkaSinkDefinition, type KafkaSinkDefinition, type KafkaSinkDefinitionInput } from './kafka-sink.js';
export { deadLetterRecord, KafkaDeadLetterTarget, kafkaDeadLetterDefinitionSchema, parseKafkaDeadLetterDefinition, type KafkaDeadLetterDefinition } from './kafka-dead-letter-target.js';
export { decodeKafkaSourceOffset, encodeKafkaSourceOffset, type KafkaSourceOffset } from './kafka-source-offset.js';
export {
  kafkaClientOptionsSchema,
  kafkaConsumerOptionsSchema,
  kafkaProducerOptionsSchema,
  parseKafkaClientOptions,
  parseKafkaConsumerOptions,
  parseKafkaProducerOptions,
  type KafkaClientOptions,
  type KafkaClientOptionsInput,
  type KafkaConsumerOptionsInput,
  type KafkaProducerOptionsInput,
} from './kafka-options.js';
export {
  KafkaClientStateError,
  KafkaOperationError,
  KafkaProducerFencedError,
  KafkaRebalanceError,
  KafkaRebalanceListenerError,
  type KafkaError,
} from './kafka-errors.js';
export type {
  ConsumedRecord,
  KafkaAdapterName,
  KafkaAdmin,
  KafkaClient,
  KafkaCompression,
  KafkaConsumer,
  KafkaConsumerSettings,
  KafkaProducer,
  KafkaProducerSettings,
  KafkaTransaction,
  NewTopic,
  PartitionOffsets,
  PollOptions,
  ProducedPartition,
  ProducerRecord,
  RebalanceListener,
  TopicDescription,
  TopicPartition,
  TopicPartitionOffset,
} from './kafka-port.js';
