/**
 * `@dataflow/connectors`.
 */
export { RedisLookupSource, type RedisLookupOptions } from './redis/redis-lookup.js';
export { createDeadLetterTarget, createSink, createSource, type ConnectorDefinition, type ConnectorDependencies } from './factory/create-connector.js';
export { allConnectorsRegistry, connectorSchemas, localConnectorRegistry, localConnectorSchemas } from './factory/local-connector-schemas.js';
export { GeneratorSource, generatorSourceDefinitionSchema, type GeneratedField, type GeneratorSourceDefinition, type GeneratorSourceDependencies } from './generator/generator-source.js';
export { systemPacingClock, type PacingClock } from './generator/pacing-clock.js';
export { FileSource, fileSourceDefinitionSchema, type FileSourceDefinition, type FileSourceOffset } from './file/file-source.js';
export { FileSink, fileSinkDefinitionSchema, type FileSinkDefinition, type FileSinkPosition } from './file/file-sink.js';
export { ConsoleSink, consoleSinkDefinitionSchema, type ConsoleSinkDefinition, type ConsoleSinkDependencies } from './console/console-sink.js';
export { TeeSink, teeSinkDefinitionSchema, type TeeSinkDefinition, type TeeSinkDependencies, type TeeSinkPosition } from './tee/tee-sink.js';
export { FileDeadLetterTarget, fileDeadLetterDefinitionSchema, type FileDeadLetterDefinition } from './dead-letter/file-dead-letter-target.js';
export {
  deadLetterDbError,
  deadLettersDdl,
  deadLettersTable,
  PostgresDeadLetterTarget,
  postgresDeadLetterDefinitionSchema,
  type PostgresDeadLetterDefinition,
  type PostgresDeadLetterDependencies,
} from './dead-letter/postgres-dead-letter-target.js';
export { PostgresDeadLetterQueue, type DeadLetterPage, type PurgeSelection, type StoredDeadLetter } from './dead-letter/postgres-dead-letter-queue.js';
export * from './kafka/index.js';
export * from './prometheus/index.js';
export * from './prometheus-remote-write/index.js';
export * from './prometheus-scrape/index.js';
export { CassandraSink, cassandraSinkDefinitionSchema, type CassandraSinkDefinition, type CassandraSinkDependencies } from './cassandra/cassandra-sink.js';
export { PostgresSink, postgresSinkDefinitionSchema, type PostgresSinkDefinition, type PostgresSinkDependencies } from './postgres/postgres-sink.js';
