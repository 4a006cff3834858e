/**
 * The option schemas of this package's local connectors, by kind and type, in
 * the shape core's `connectorRegistry` takes: pipeline validation checks
 * `source`, `sink` and `deadLetter` options against them.
 */
import { connectorRegistry, type ConnectorRegistry, type ConnectorSchemas } from '@dataflow/core';
import { consoleSinkDefinitionSchema } from '../console/console-sink.js';
import { fileDeadLetterDefinitionSchema } from '../dead-letter/file-dead-letter-target.js';
import { postgresDeadLetterDefinitionSchema } from '../dead-letter/postgres-dead-letter-target.js';
import { fileSinkDefinitionSchema } from '../file/file-sink.js';
import { fileSourceDefinitionSchema } from '../file/file-source.js';
import { generatorSourceDefinitionSchema } from '../generator/generator-source.js';
import { teeSinkDefinitionSchema } from '../tee/tee-sink.js';
import { cassandraSinkDefinitionSchema } from '../cassandra/cassandra-sink.js';
import { postgresSinkDefinitionSchema } from '../postgres/postgres-sink.js';
import { remoteWriteSourceDefinitionSchema } from '../prometheus-remote-write/remote-write-source.js';
import { kafkaDeadLetterDefinitionSchema } from '../kafka/kafka-dead-letter-target.js';
import { kafkaSinkDefinitionSchema } from '../kafka/kafka-sink.js';
import { kafkaSourceDefinitionSchema } from '../kafka/kafka-source.js';
import { scrapeSourceDefinitionSchema } from '../prometheus-scrape/scrape-source.js';

/**
 * Option schemas of the generator and file sources, the file, console and
 * tee sinks, and the file and Postgres dead-letter targets.
 *
 * @example
 * ```ts
 * const registry = connectorRegistry({ sources: { ...localConnectorSchemas.sources, kafka: kafkaSourceSchema } });
 * ```
 */
export const localConnectorSchemas = {
  sources: { generator: generatorSourceDefinitionSchema, file: fileSourceDefinitionSchema },
  sinks: { file: fileSinkDefinitionSchema, console: consoleSinkDefinitionSchema, tee: teeSinkDefinitionSchema },
  deadLetters: { file: fileDeadLetterDefinitionSchema, postgres: postgresDeadLetterDefinitionSchema },
} as const satisfies ConnectorSchemas;

/**
 * A registry of the local connectors, for `validatePipelineDefinition`.
 *
 * @example
 * ```ts
 * const result = validatePipelineDefinition(input, { connectors: localConnectorRegistry });
 * ```
 */
export const localConnectorRegistry: ConnectorRegistry = connectorRegistry(localConnectorSchemas);

/**
 * Option schemas of every connector `createSource` / `createSink` /
 * `createDeadLetterTarget` build: the local ones plus the Kafka source, sink
 * and dead-letter target, the Prometheus scrape and remote-write sources and the
 * Cassandra and Postgres sinks; the Kafka source declares `parallelTasks`.
 *
 * @example
 * ```ts
 * const result = validatePipelineDefinition(input, { connectors: connectorRegistry(connectorSchemas) });
 * ```
 */
export const connectorSchemas = {
  sources: { ...localConnectorSchemas.sources, kafka: kafkaSourceDefinitionSchema, 'prometheus-scrape': scrapeSourceDefinitionSchema, 'prometheus-remote-write': remoteWriteSourceDefinitionSchema },
  sinks: { ...localConnectorSchemas.sinks, kafka: kafkaSinkDefinitionSchema, cassandra: cassandraSinkDefinitionSchema, postgres: postgresSinkDefinitionSchema },
  deadLetters: { ...localConnectorSchemas.deadLetters, kafka: kafkaDeadLetterDefinitionSchema },
  /**
   * A Kafka source is a consumer-group member: `parallelism: N` runs N members of one group (ADR 0013); its offsets can be committed in
   * a Kafka sink's transaction, which the sink does with `exactlyOnce` (under any other source it cannot).
   */
  sourceCapabilities: { kafka: { parallelTasks: true, offsetsCommittedBySink: true } },
  sinkCapabilities: { kafka: { commitsSourceOffsets: (options) => (options['exactlyOnce'] === true ? 'exactlyOnce' : undefined) } },
} as const satisfies ConnectorSchemas;

/** A registry of every connector this package builds (`connectorSchemas`). */
export const allConnectorsRegistry: ConnectorRegistry = connectorRegistry(connectorSchemas);
