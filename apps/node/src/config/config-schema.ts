/**
 * The schema of a node's configuration: what a YAML file (`dataflow.yaml`,
 * `--config`, `DATAFLOW_CONFIG`) may say, with defaults that run a node on
 * embedded storage with no external service. Unknown keys are refused (a
 * typo is an error naming the key, never a silently ignored setting).
 *
 * Secrets (`postgres.url`, `cassandra.password`, `redis.url`,
 * `api.authToken`) are given as a string or as
 * `{ file: <path> }` / `{ env: <NAME> }`, resolved by `load-config.ts`; the
 * resolved values are never printed (see `describeConfig`).
 */
import * as z from 'zod';

const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;

/** A secret as written in the file, before it is resolved. */
const secretInput = z.union([
  z.string().min(1, 'must not be empty'),
  z.strictObject({ file: z.string().min(1, 'names the file holding the secret') }),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'names an environment variable') }),
]);

const port = z.number({ error: 'expected a port number' }).int('expected a whole number').min(0).max(65_535);
const host = z.string().min(1).max(253);
const hostPort = z.string().regex(/^[^\s:]+(:\d{1,5})?$/, 'expected host or host:port');

const nodeSection = z
  .strictObject({
    /** Names this node in logs, metrics and the journal's writer ids (default `<hostname>-<pid>`). */
    id: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'letters, digits, _ . - (at most 100)').optional(),
    /** Embedded journal, read models and demo output (default `./data`). */
    dataDir: z.string().min(1).default('data'),
    /** How long a stop may take before the process exits anyway, with code 1. */
    shutdownTimeoutMs: z.number().int().min(1).default(30_000),
    /** A demo without a checkpoint may overwrite an existing output file. */
    overwriteOutput: z.boolean().default(false),
  })
  .prefault({});

const journalSection = z
  .strictObject({
    /** `embedded` (PGlite under node.dataDir), `memory` (lost at exit), `postgres`, `cassandra`. */
    type: z.enum(['embedded', 'memory', 'postgres', 'cassandra']).default('embedded'),
    /** `check`: refuse a schema missing a migration (run `dataflow migrate`); `auto`: migrate at start. */
    migrate: z.enum(['check', 'auto']).default('check'),
  })
  .prefault({});

const postgresSection = z
  .strictObject({
    url: secretInput.optional(),
    schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'expected a lower-case SQL identifier').default('dataflow'),
  })
  .prefault({});

const cassandraSection = z
  .strictObject({
    contactPoints: z.array(hostPort).min(1).default(['127.0.0.1:9042']),
    localDataCenter: z.string().min(1).default('datacenter1'),
    keyspace: z.string().regex(/^[a-z_][a-z0-9_]{0,47}$/, 'expected a lower-case CQL identifier').default('dataflow'),
    username: z.string().min(1).optional(),
    password: secretInput.optional(),
  })
  .prefault({});

const kafkaSection = z
  .strictObject({
    brokers: z.array(hostPort).min(1).default(['127.0.0.1:9092']),
    /** The client library behind the Kafka connectors (ADR 0008). */
    client: z.enum(['platformatic', 'kafkajs']).default('platformatic'),
    clientId: z.string().min(1).default('dataflow'),
  })
  .prefault({});

const redisSection = z.strictObject({
  url: secretInput,
  keyPrefix: z.string().max(100).default('dataflow:'),
});

const loggingSection = z
  .strictObject({
    level: z.enum(LOG_LEVELS).default('info'),
    logstash: z.strictObject({ host, port: port.min(1) }).optional(),
  })
  .prefault({});

const apiSection = z
  .strictObject({
    enabled: z.boolean().default(true),
    /** Off loopback, a bearer token is required. */
    host: host.default('127.0.0.1'),
    port: port.default(8080),
    authToken: secretInput.optional(),
    /** Largest request body accepted (413 above). */
    bodyLimitBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
  })
  .prefault({});

const metricsSection = z
  .strictObject({
    enabled: z.boolean().default(true),
    host: host.default('127.0.0.1'),
    port: port.default(9095),
  })
  .prefault({});

const projectionsSection = z
  .strictObject({
    /** Keep `pipeline_status` and `pipeline_metrics_hourly` current (on the embedded or Postgres store). */
    enabled: z.boolean().default(true),
  })
  .prefault({});

const clusterSection = z
  .strictObject({
    /** Share the pipelines with the other nodes on the same journal and Redis (needs redis.url and a postgres or cassandra journal). */
    enabled: z.boolean().default(false),
    /** The admin API as the other nodes reach it (default http://<api.host, or the host name when it listens on every address>:<api.port>). */
    advertiseUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Pipelines map to this many shards; every node of a cluster must use the same number. */
    shards: z.number().int().min(1).max(4096).default(64),
    /**
     * The read-model projections are split into this many slice ranges (of 1 024 slices), each run by one live node;
     * every node of a cluster must use the same number (a node joining with another one is refused).
     */
    projectionRanges: z.number().int().min(1, 'at least 1').max(1024, 'at most 1024 (there are 1 024 slices)').default(4),
    /** Time-to-live of memberships and leases: a killed node's pipelines move after it. */
    leaseTtlMs: z.number().int().min(1_000).max(600_000).default(10_000),
    /** How often a node heartbeats, renews its leases and places its pipelines. */
    tickMs: z.number().int().min(100).max(60_000).default(1_000),
    /** Nodes with the same prefix (and Redis) form one cluster. */
    keyPrefix: z.string().regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'letters, digits, _ . : - (at most 100)').default('dataflow:cluster:'),
  })
  .prefault({});

const pipelineEntry = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'letters, digits, _ or - (at most 100)'),
  /** Start it when it is created (a pipeline already in the journal keeps its own state). */
  start: z.boolean().default(true),
  /** A pipeline definition, validated by the node (field-level errors name `pipelines[i].definition.<field>`). */
  definition: z.record(z.string(), z.unknown()),
});

/** The whole configuration file. */
export const nodeConfigSchema = z.strictObject({
  node: nodeSection,
  journal: journalSection,
  postgres: postgresSection,
  cassandra: cassandraSection,
  kafka: kafkaSection,
  redis: redisSection.optional(),
  logging: loggingSection,
  api: apiSection,
  metrics: metricsSection,
  projections: projectionsSection,
  cluster: clusterSection,
  /** The built-in demo pipelines (`true` in the default configuration). */
  demo: z.boolean().default(false),
  pipelines: z.array(pipelineEntry).max(10_000).default([]),
});

/** A secret as the file wrote it. */
export type SecretInput = z.infer<typeof secretInput>;
/** The configuration as parsed, secrets not yet resolved. */
export type ParsedNodeConfig = z.infer<typeof nodeConfigSchema>;
export { LOG_LEVELS as CONFIG_LOG_LEVELS };
