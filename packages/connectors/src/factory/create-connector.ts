/**
 * Builds sources, sinks and dead-letter targets from definition objects
 * (`{ type: 'file', ...options }`, e.g. a pipeline definition's `source`).
 * Options are validated by each connector's schema; a bad definition throws
 * `InvalidConnectorOptionsError` listing every field-level issue.
 */
import { InvalidConnectorOptionsError, type ConnectorError, type DeadLetterTarget, type Sink, type Source } from '@dataflow/core';
import type { Writable } from 'node:stream';
import type pg from 'pg';
import type { SqlExecutor } from '@dataflow/persistence';
import { ConsoleSink, type ConsoleSinkDefinition } from '../console/console-sink.js';
import { FileDeadLetterTarget, type FileDeadLetterDefinition } from '../dead-letter/file-dead-letter-target.js';
import { PostgresDeadLetterTarget, type PostgresDeadLetterDefinition } from '../dead-letter/postgres-dead-letter-target.js';
import { FileSink, type FileSinkDefinition } from '../file/file-sink.js';
import { FileSource, type FileSourceDefinition } from '../file/file-source.js';
import { GeneratorSource, type GeneratorSourceDefinition } from '../generator/generator-source.js';
import { TeeSink, type TeeSinkDefinition } from '../tee/tee-sink.js';
import { CassandraSink, type CassandraSinkDefinition } from '../cassandra/cassandra-sink.js';
import { PostgresSink, type PostgresSinkDefinition } from '../postgres/postgres-sink.js';
import { parseRemoteWriteSourceDefinition, RemoteWriteSource } from '../prometheus-remote-write/remote-write-source.js';
import type { PacingClock } from '../generator/pacing-clock.js';
import { KafkaDeadLetterTarget } from '../kafka/kafka-dead-letter-target.js';
import { KafkaSink } from '../kafka/kafka-sink.js';
import { KafkaSource } from '../kafka/kafka-source.js';
import { ScrapeSource } from '../prometheus-scrape/scrape-source.js';

/** A connector definition: its type and options. A pipeline stage's `onError` is allowed and ignored here. */
export interface ConnectorDefinition {
  readonly type: string;
  readonly [option: string]: unknown;
}

/** What connectors may take from their environment; each uses the parts it needs. */
export interface ConnectorDependencies {
  /** Paces the generator source (default: wall clock). */
  readonly clock?: PacingClock;
  /** Where the console sink prints (default: standard output). */
  readonly stream?: Writable;
  /** A Postgres pool shared with the application, for Postgres sinks and dead-letter targets without their own `connectionString`. */
  readonly pool?: pg.Pool;
  /** A database shared with the application (e.g. an embedded PGlite) for Postgres sinks and dead-letter targets without their own `connectionString`; wins over `pool`. */
  readonly executor?: SqlExecutor;
  /** Told when an idle pooled Postgres connection of a dead-letter target dies. */
  readonly onIdleConnectionError?: (error: ConnectorError) => void;
}

// The casts only name the input type: every constructor validates its definition with its schema.
type Factory<T> = (options: Record<string, unknown>, dependencies: ConnectorDependencies) => T;

const sources: Readonly<Record<string, Factory<Source>>> = {
  generator: (o, d) => new GeneratorSource(o as GeneratorSourceDefinition, d.clock === undefined ? {} : { clock: d.clock }),
  file: (o) => new FileSource(o as FileSourceDefinition),
  'prometheus-remote-write': (o) => new RemoteWriteSource(parseRemoteWriteSourceDefinition(o)),
  kafka: (o) => new KafkaSource(o),
  'prometheus-scrape': (o) => new ScrapeSource(o),
};

const sinks: Readonly<Record<string, Factory<Sink>>> = {
  file: (o) => new FileSink(o as FileSinkDefinition),
  console: (o, d) => new ConsoleSink(o as ConsoleSinkDefinition, d.stream === undefined ? {} : { stream: d.stream }),
  tee: (o, d) => new TeeSink(o as TeeSinkDefinition, { createSink: (definition) => createSink(definition, d) }),
  cassandra: (o) => new CassandraSink(o as CassandraSinkDefinition),
  kafka: (o) => new KafkaSink(o),
  postgres: (o, d) =>
    new PostgresSink(o as PostgresSinkDefinition, {
      // A sink with its own connectionString writes there, never to the application's database.
      ...((o as PostgresSinkDefinition).connectionString !== undefined ? {} : { ...(d.pool === undefined ? {} : { pool: d.pool }), ...(d.executor === undefined ? {} : { executor: d.executor }) }),
      ...(d.onIdleConnectionError === undefined ? {} : { onIdleConnectionError: d.onIdleConnectionError }),
    }),
};

const deadLetterTargets: Readonly<Record<string, Factory<DeadLetterTarget>>> = {
  file: (o) => new FileDeadLetterTarget(o as FileDeadLetterDefinition),
  kafka: (o) => new KafkaDeadLetterTarget(o),
  postgres: (o, d) =>
    new PostgresDeadLetterTarget(o as PostgresDeadLetterDefinition, {
      // A target with its own connectionString writes there, never to the application's database.
      ...((o as PostgresDeadLetterDefinition).connectionString !== undefined ? {} : { ...(d.pool === undefined ? {} : { pool: d.pool }), ...(d.executor === undefined ? {} : { executor: d.executor }) }),
      ...(d.onIdleConnectionError === undefined ? {} : { onIdleConnectionError: d.onIdleConnectionError }),
    }),
};

function create<T>(kind: string, factories: Readonly<Record<string, Factory<T>>>, definition: ConnectorDefinition, dependencies: ConnectorDependencies): T {
  const { onError: _onError, ...options } = definition;
  const factory = Object.hasOwn(factories, definition.type) ? factories[definition.type] : undefined;
  if (factory === undefined) {
    throw new InvalidConnectorOptionsError(String(definition.type), [
      { path: 'type', message: `Unknown ${kind} type ${JSON.stringify(definition.type)}; known: ${Object.keys(factories).sort().join(', ')}` },
    ]);
  }
  return factory(options, dependencies);
}

/**
 * Creates a source from its definition.
 *
 * @example
 * ```ts
 * const source = createSource({ type: 'file', path: 'orders.csv', format: 'csv' });
 * ```
 */
export function createSource(definition: ConnectorDefinition, dependencies: ConnectorDependencies = {}): Source {
  return create('source', sources, definition, dependencies);
}

/**
 * Creates a sink from its definition.
 *
 * @example
 * ```ts
 * const sink = createSink({ type: 'file', path: 'out/orders.jsonl', format: 'jsonl', maxBytes: 64_000_000 });
 * ```
 */
export function createSink(definition: ConnectorDefinition, dependencies: ConnectorDependencies = {}): Sink {
  return create('sink', sinks, definition, dependencies);
}

/**
 * Creates a dead-letter target from its definition.
 *
 * @example
 * ```ts
 * const target = createDeadLetterTarget({ type: 'postgres', connectionString: 'postgres://postgres@127.0.0.1/dataflow', schema: 'ops' });
 * ```
 */
export function createDeadLetterTarget(definition: ConnectorDefinition, dependencies: ConnectorDependencies = {}): DeadLetterTarget {
  return create('dead-letter', deadLetterTargets, definition, dependencies);
}
