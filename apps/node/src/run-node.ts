/**
 * The body of `npm start` (`main.ts` installs the signal handlers first and
 * then loads this): settings, logger, node, demo, and the stop. The process
 * ends one of four ways, each logged with its cause: a signal (0 after a
 * clean stop, also during the start), a bad setting (78), a failure the node
 * cannot cure such as another node writing the same journal (1), or a stop
 * that does not finish within `DATAFLOW_SHUTDOWN_TIMEOUT_MS` (1). An outage
 * is not an end: the node is `degraded` and logs it until it works again.
 */
import { InvalidPipelineDefinitionError, isDataflowError, type ConfiguredPipelineState, type PersistencePlugin } from '@dataflow/core';
import { access } from 'node:fs/promises';
import { hostname } from 'node:os';
import { DEMO_PIPELINE_ID, demoOutputPath, demoPipeline, fileSinkPath } from './demo/demo-pipeline.js';
import { ensureMetricsDemoTable, METRICS_DEMO_PIPELINE_ID, METRICS_DEMO_TABLE, metricsDemoPipeline } from './demo/metrics-demo.js';
import { createWinstonLogger, type LogLevel } from './logging/winston-logger.js';
import { startNode, type DataflowNode } from './node/dataflow-node.js';
import { NodeConfigError, NodeFailedError } from './node/node-errors.js';
import { claimJournalSchema, type SchemaClaim } from './node/schema-claim.js';
import type { NodeLogger } from './node/node-logger.js';
import { ensureWritableDirectory } from './node/node-persistence.js';
import { allConnectorsRegistry } from '@dataflow/connectors';
import { pgPoolExecutor, type SqlExecutor } from '@dataflow/persistence';
import pg from 'pg';
import { loadNodeConfig, type NodeRuntimeConfig } from './config/load-config.js';
import { withConnectionDefaults } from './node/connection-defaults.js';
import { localConnectorFactory } from './node/connector-factory.js';
import { startNodeServices, type NodeServices } from './node-services.js';
import type { ReadinessCheck } from './api/routes-system.js';
import { createNodeCluster, type NodeCluster } from './cluster/node-cluster.js';
import type { NodeStore } from './node/node-persistence.js';
import { describeError } from './node/node-supervisor.js';

export const EX_CONFIG = 78;

/**
 * What tells the node to stop: SIGINT, SIGTERM or SIGHUP, or (under `npm
 * start`) `parent-exit`: npm, the process that started it, is gone (npm dies
 * of a SIGHUP to its own pid without passing it on, and the node would run
 * on as an orphan holding the data directory).
 */
export type StopCause = NodeJS.Signals | 'parent-exit';

/** How a stop cause reads in the log: `SIGTERM received`, `the parent process (npm) is gone`. */
export function heard(cause: StopCause): string {
  return cause === 'parent-exit' ? 'the parent process (npm) is gone' : `${cause} received`;
}

/** The signals received so far, recorded from the first instant of the process by `main.ts`. */
export interface SignalWatch {
  /** The first stop cause, if one came already. */
  readonly first: StopCause | undefined;
  /** Resolves with the first stop cause. */
  readonly received: Promise<StopCause>;
  /** Where to report later signals (the stop is already under way then). */
  useLogger(logger: NodeLogger): void;
}

function resumePoint(state: ConfiguredPipelineState): string {
  const offset = JSON.stringify(state.checkpoint?.sourceOffset ?? 0);
  return `offset ${offset} (${state.metrics.recordsProcessed} records processed, ${state.metrics.batches} batches)`;
}

function pointFields(state: ConfiguredPipelineState): Record<string, unknown> {
  return {
    pipeline_id: state.pipelineId,
    offset: state.checkpoint?.sourceOffset ?? 0,
    total_records: state.metrics.recordsProcessed,
    batches: state.metrics.batches,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * A demo without a checkpoint starts from the beginning and its file sink
 * truncates the output: refuse when an output is there already (the journal
 * was deleted or replaced), unless told to overwrite it.
 */
async function refuseUnknownOutput(output: string, settings: NodeRuntimeConfig, logger: NodeLogger): Promise<void> {
  const found: string[] = [];
  for (const path of [output, `${output}.1`]) if (await exists(path)) found.push(path);
  if (found.length === 0) return;
  if (settings.node.overwriteOutput) {
    logger.warn(`the journal has no checkpoint for ${found.join(', ')}; overwriting it (DATAFLOW_OVERWRITE_OUTPUT is set)`, { output });
    return;
  }
  throw new NodeConfigError(
    'DATAFLOW_OVERWRITE_OUTPUT',
    `the output ${found.join(', ')} exists but the journal has no checkpoint for it (was the journal deleted or replaced?); ` +
      'starting from the beginning would truncate it: move it away, or set DATAFLOW_OVERWRITE_OUTPUT=1 to overwrite it',
  );
}

/** Creates and starts the demo on a first run; otherwise makes sure it runs again from its checkpoint. */
async function runDemo(node: DataflowNode, settings: NodeRuntimeConfig, logger: NodeLogger): Promise<void> {
  const recovered = node.recovered.find((p) => p.pipelineId === DEMO_PIPELINE_ID);
  if (recovered === undefined) {
    const output = demoOutputPath(settings.node.dataDir);
    await refuseUnknownOutput(output, settings, logger);
    await node.createPipeline(demoPipeline(settings.node.dataDir), { pipelineId: DEMO_PIPELINE_ID });
    await node.start(DEMO_PIPELINE_ID);
    logger.info(`starting pipeline demo from the beginning; output: ${output}`, { pipeline_id: DEMO_PIPELINE_ID, offset: 0, total_records: 0, batches: 0 });
    return;
  }
  // The path stored in the journal is the one written (with a shared journal, maybe not under this DATAFLOW_DATA_DIR).
  const output = fileSinkPath(recovered.definition) ?? demoOutputPath(settings.node.dataDir);
  switch (recovered.status) {
    case 'failed':
      logger.warn(
        `pipeline demo had failed (${recovered.error.message}); resetting it and trying again from its last checkpoint at ${resumePoint(recovered)}; output: ${output}`,
        { ...pointFields(recovered), error_tag: recovered.error.tag },
      );
      await node.reset(DEMO_PIPELINE_ID);
      await node.start(DEMO_PIPELINE_ID);
      return;
    case 'running':
      break;
    case 'paused':
      await node.resume(DEMO_PIPELINE_ID);
      break;
    case 'configured':
    case 'stopped':
      await node.start(DEMO_PIPELINE_ID);
      break;
  }
  logger.info(`resuming pipeline demo from ${resumePoint(recovered)}; output: ${output}`, pointFields(recovered));
}

/**
 * The live half of the demo: the node's own metrics scraped every 5 s into
 * `demo.prometheus_metrics` of its database. Needs the metrics endpoint and a
 * SQL database (embedded or Postgres); without them it is skipped, saying why.
 */
async function runMetricsDemo(node: DataflowNode, services: NodeServices, logger: NodeLogger): Promise<void> {
  const db = embeddedDatabase(node).executor;
  if (services.metrics === undefined || db === undefined) {
    logger.info(`the metrics demo is off: it needs ${services.metrics === undefined ? 'metrics.enabled' : 'a journal with a SQL database (embedded or postgres)'}`);
    return;
  }
  const id = METRICS_DEMO_PIPELINE_ID;
  await ensureMetricsDemoTable(db);
  const recovered = node.recovered.find((p) => p.pipelineId === id);
  if (recovered === undefined) {
    const url = `http://${loopbackOf(services.metrics.server.host)}:${services.metrics.server.port}/metrics`;
    await node.createPipeline(metricsDemoPipeline(url), { pipelineId: id });
    await node.start(id);
    logger.info(`starting pipeline ${id}: ${url} every 5 s into ${METRICS_DEMO_TABLE.schema}.${METRICS_DEMO_TABLE.table}`, { pipeline_id: id });
    return;
  }
  switch (recovered.status) {
    case 'failed':
      logger.warn(`pipeline ${id} had failed (${recovered.error.message}); resetting it and starting it again`, { pipeline_id: id });
      await node.reset(id);
      await node.start(id);
      return;
    case 'paused':
      await node.resume(id);
      return;
    case 'configured':
    case 'stopped':
      await node.start(id);
      return;
    case 'running':
      return;
  }
}

/** Where this process reaches a server listening on `host`. */
function loopbackOf(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** The last line about the demo: where it stopped and what the next start does with it. */
function stopLine(demo: ConfiguredPipelineState, logger: NodeLogger): void {
  switch (demo.status) {
    case 'failed':
      logger.error(
        `pipeline demo is failed at ${resumePoint(demo)}: ${demo.error.message}; it does not resume by itself (the next npm start resets it and tries again from there)`,
        { ...pointFields(demo), error_tag: demo.error.tag },
      );
      return;
    case 'stopped':
      logger.info(`pipeline demo had stopped at ${resumePoint(demo)}`, pointFields(demo));
      return;
    default:
      // The pipeline actor does not wait for a checkpoint append already sent when it stops: that one may still land.
      logger.info(
        `stopped pipeline demo at ${resumePoint(demo)}; npm start resumes from there (or one batch later, if the checkpoint being written at the stop landed)`,
        pointFields(demo),
      );
  }
}

/** Where `runNode` finds its configuration besides the environment. */
export interface RunNodeOptions {
  /** A configuration file given on the command line (`dataflow start --config`). */
  readonly configFile?: string;
}

/** The journal's SQL database, when the node's store has one (embedded PGlite or Postgres). */
function embeddedDatabase(node: DataflowNode | undefined): { executor?: SqlExecutor } {
  return node === undefined ? {} : databaseOf(node.persistence);
}

function databaseOf(persistence: PersistencePlugin): { executor?: SqlExecutor } {
  const executor = (persistence as { executor?: SqlExecutor }).executor;
  return executor === undefined ? {} : { executor };
}

/** The journal store the configuration chooses. */
export function storeOf(config: NodeRuntimeConfig, keyspaceClaim?: Extract<NodeStore, { type: 'cassandra' }>['claim']): NodeStore {
  switch (config.journal.type) {
    case 'embedded':
      return { type: 'pglite', dataDir: config.node.dataDir };
    case 'memory':
      return { type: 'memory' };
    case 'postgres':
      // loadNodeConfig refuses journal.type postgres without a URL.
      return { type: 'postgres', url: config.postgres.url ?? '', schema: config.postgres.schema, migrate: config.journal.migrate };
    case 'cassandra':
      return {
        type: 'cassandra',
        contactPoints: config.cassandra.contactPoints,
        localDataCenter: config.cassandra.localDataCenter,
        keyspace: config.cassandra.keyspace,
        migrate: config.journal.migrate,
        ...(config.cassandra.username === undefined ? {} : { username: config.cassandra.username }),
        ...(config.cassandra.password === undefined ? {} : { password: config.cassandra.password }),
        ...(config.node.id === undefined ? {} : { nodeId: config.node.id }),
        ...(keyspaceClaim === undefined ? {} : { claim: keyspaceClaim }),
      };
  }
}

/**
 * Runs the node until a signal or a failure and returns the exit code.
 *
 * @example
 * ```ts
 * process.exitCode = await runNode(signals, { configFile: 'dataflow.yaml' });
 * ```
 */
export async function runNode(signals: SignalWatch, options: RunNodeOptions = {}): Promise<number> {
  let config: NodeRuntimeConfig;
  try {
    config = await loadNodeConfig({ env: process.env, ...(options.configFile === undefined ? {} : { file: options.configFile }) });
  } catch (error) {
    const logger = createWinstonLogger();
    logger.error(`cannot start: ${describeError(error)}`);
    await logger.close();
    return EX_CONFIG;
  }
  const logger = createWinstonLogger({
    level: config.logging.level satisfies LogLevel,
    secrets: config.secrets,
    ...(config.logging.logstash === undefined ? {} : { logstash: config.logging.logstash }),
  });
  signals.useLogger(logger);
  const logstash = config.logging.logstash;
  const readiness: ReadinessCheck[] =
    logstash === undefined
      ? []
      : [
          {
            name: 'logstash',
            required: false,
            check: () => {
              const status = logger.logstash();
              if (status === undefined || status.connected) return { state: 'ok', detail: `${logstash.host}:${logstash.port}` };
              return { state: 'degraded', detail: `${logstash.host}:${logstash.port} unreachable; ${status.queued} lines wait, ${status.dropped} dropped so far` };
            },
          },
        ];
  try {
    return await run(config, signals, logger, readiness);
  } finally {
    await logger.close();
  }
}

/** `/ready`'s view of the cluster: connected to Redis, with the members seen and the shards held. */
function clusterReadiness(cluster: NodeCluster): ReadinessCheck {
  return {
    name: 'cluster',
    check: () => {
      const view = cluster.runtime.view();
      const detail = `node ${view.nodeId}: ${view.members.length} live members, ${view.shards.length} shards here${view.coordinator ? ', the coordinator here' : ''}`;
      if (view.conflict !== undefined) return { state: 'degraded', detail: view.conflict };
      return view.connected ? { state: 'ok', detail } : { state: 'degraded', detail: `Redis does not answer: leases lapse and their pipelines stop here; ${detail}` };
    },
  };
}

/**
 * Cluster mode: the configuration's pipelines are created through this
 * node's API, which forwards each to the node that owns its shard. A
 * pipeline that exists (200 with the same definition, 409 with another) is
 * left as it is; placement may take a few
 * ticks after the start (503), so those are retried for a minute.
 */
async function ensureConfiguredPipelinesInCluster(apiUrl: string, config: NodeRuntimeConfig, logger: NodeLogger): Promise<void> {
  const headers = { 'content-type': 'application/json', ...(config.api.authToken === undefined ? {} : { authorization: `Bearer ${config.api.authToken}` }) };
  for (const [index, entry] of config.pipelines.entries()) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const response = await fetch(`${apiUrl}/api/v1/pipelines`, { method: 'POST', headers, body: JSON.stringify({ id: entry.id, definition: entry.definition, start: entry.start }) });
      if (response.status === 201) {
        logger.info(`created pipeline ${entry.id}${entry.start ? ' and started it' : ''}`, { pipeline_id: entry.id });
        break;
      }
      // 200: it exists with this definition (the API starts it if `start` and it never was); 409: with another one. Either way it is left as it is.
      if (response.status === 200 || response.status === 409) break;
      const body = (await response.json().catch(() => ({}))) as { message?: string; details?: { field: string; message: string }[] };
      if (response.status === 400) {
        const first = body.details?.[0];
        throw new NodeConfigError(`pipelines[${index}].${first?.field ?? 'definition'}`, first?.message ?? body.message ?? 'is invalid');
      }
      if (response.status !== 503 || Date.now() > deadline) throw new Error(`pipeline ${entry.id} could not be created: HTTP ${response.status} ${body.message ?? ''}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/**
 * Creates the pipelines of the configuration that the journal does not know
 * yet (and starts those marked `start`); a pipeline the journal knows keeps
 * its recorded definition and state. A definition with a problem is a
 * `NodeConfigError` naming `pipelines[i].definition.<field>`.
 */
async function ensureConfiguredPipelines(node: DataflowNode, config: NodeRuntimeConfig, logger: NodeLogger): Promise<void> {
  const known = new Set(node.recovered.map((p) => p.pipelineId));
  for (const [index, entry] of config.pipelines.entries()) {
    if (known.has(entry.id)) {
      logger.info(`pipeline ${entry.id} is in the journal already: its recorded definition and state are kept`, { pipeline_id: entry.id });
      continue;
    }
    try {
      await node.createPipeline(entry.definition, { pipelineId: entry.id });
    } catch (error) {
      if (error instanceof InvalidPipelineDefinitionError) {
        const first = error.issues[0];
        const field = `pipelines[${index}].definition${first === undefined || first.path === '' ? '' : `.${first.path}`}`;
        throw new NodeConfigError(field, error.message, { cause: error });
      }
      throw error;
    }
    if (entry.start) await node.start(entry.id);
    logger.info(`created pipeline ${entry.id}${entry.start ? ' and started it' : ''}`, { pipeline_id: entry.id });
  }
}

async function run(config: NodeRuntimeConfig, signals: SignalWatch, logger: NodeLogger, readiness: readonly ReadinessCheck[]): Promise<number> {
  if (signals.first !== undefined) {
    logger.info(`${heard(signals.first)} while starting: the node did not start`);
    return 0;
  }
  // Postgres sinks and dead-letter tables without their own connectionString use the configured server (its URL never enters a definition).
  const sinkPool = config.postgres.url === undefined ? undefined : new pg.Pool({ connectionString: config.postgres.url, max: 5, connectionTimeoutMillis: 5_000 });
  sinkPool?.on('error', (error) => logger.warn('an idle Postgres connection of the sinks failed', { error: error.message }));
  try {
    return await runWith(config, signals, logger, sinkPool, readiness);
  } finally {
    await sinkPool?.end().catch(() => undefined);
  }
}

/**
 * Outside a cluster, a node holds its journal alone from before its start to
 * after its stop: a Postgres schema (src/node/schema-claim.ts) or a Cassandra
 * keyspace (`claimCassandraKeyspace`, taken when the store opens).
 */
async function runWith(config: NodeRuntimeConfig, signals: SignalWatch, logger: NodeLogger, sinkPool: pg.Pool | undefined, readiness: readonly ReadinessCheck[]): Promise<number> {
  if (config.journal.type === 'cassandra' && !config.cluster.enabled) {
    const keyspace = config.cassandra.keyspace;
    let resolveLost: (error: NodeFailedError) => void = () => undefined;
    const lost = new Promise<NodeFailedError>((resolve) => (resolveLost = resolve));
    const nodeId = config.node.id ?? `${hostname()}-${process.pid}`;
    // A signal ends a wait for another node's claim at once (it would otherwise hold the stop for up to the claim's TTL).
    const told = new AbortController();
    void signals.received.then(() => told.abort());
    const claim: Extract<NodeStore, { type: 'cassandra' }>['claim'] = {
      signal: told.signal,
      holder: `node ${nodeId} (pid ${process.pid} on ${hostname()}, started ${new Date().toISOString()})`,
      onEvent: (event) => {
        if (event.type === 'waiting') {
          logger.info(`keyspace ${keyspace} is in use by ${event.holder}: waiting for its claim to lapse (a node that ended without letting it go)`);
        } else if (event.type === 'renewal-failed') logger.warn(`the claim on keyspace ${keyspace} cannot be renewed: ${describeError(event.error)}`);
        else if (event.type === 'renewed') logger.info(`the claim on keyspace ${keyspace} is renewed again after ${Math.round(event.afterFailedMs / 1000)} s`);
        else logger.warn(`the claim on keyspace ${keyspace} had lapsed (Cassandra out of reach for ${Math.round(event.afterFailedMs / 1000)} s) and is taken again`);
      },
      onLost: (error) => resolveLost(new NodeFailedError('keyspace claim', `${error.message}; this node stops rather than write beside it`, error)),
    };
    return runClaimed(config, signals, logger, sinkPool, readiness, lost, storeOf(config, claim));
  }
  let claim: SchemaClaim | undefined;
  // A URL that is not postgres:// is reported by the journal's own checks (the claim would only fail to connect).
  if (config.journal.type === 'postgres' && !config.cluster.enabled && /^postgres(ql)?:\/\//.test(config.postgres.url ?? '')) {
    try {
      claim = await claimJournalSchema({ url: config.postgres.url ?? '', schema: config.postgres.schema, nodeId: config.node.id ?? `${hostname()}-${process.pid}`, logger });
    } catch (error) {
      logger.error(`cannot start: ${describeError(error)}`);
      return isDataflowError(error, 'node/invalid-config') ? EX_CONFIG : 1;
    }
  }
  try {
    return await runClaimed(config, signals, logger, sinkPool, readiness, claim?.lost, storeOf(config));
  } finally {
    await claim?.release();
  }
}

async function runClaimed(
  config: NodeRuntimeConfig,
  signals: SignalWatch,
  logger: NodeLogger,
  sinkPool: pg.Pool | undefined,
  readiness: readonly ReadinessCheck[],
  claimLost: Promise<NodeFailedError> | undefined,
  store: NodeStore,
): Promise<number> {
  let node: DataflowNode | undefined;
  let startSignal: StopCause | undefined;
  void signals.received.then((signal) => {
    if (startSignal === undefined && node === undefined) {
      startSignal = signal;
      logger.info(`${heard(signal)} while starting: stopping as soon as the start is done`);
    }
  });
  // Cluster mode: membership and leases in Redis decide which pipelines run here (src/cluster/).
  const cluster = config.cluster.enabled ? createNodeCluster(config, logger, () => (node as DataflowNode).persistence) : undefined;
  try {
    if (config.journal.type === 'embedded' || config.demo) await ensureWritableDirectory(config.node.dataDir, 'DATAFLOW_DATA_DIR');
    node = await startNode({
      store,
      logger,
      ...(cluster !== undefined ? { nodeId: cluster.nodeId, cluster: cluster.hooks } : config.node.id === undefined ? {} : { nodeId: config.node.id }),
      connectorRegistry: allConnectorsRegistry,
      // A Postgres sink or dead-letter table without a connectionString writes to the node's database: the postgres.url server,
      // else the embedded one (given with the store, so the pipelines that resume during the start have it too).
      connectors: (persistence) => localConnectorFactory(sinkPool !== undefined ? { pool: sinkPool } : databaseOf(persistence)),
      // A definition without deadLetter keeps refused records in the node's database, when the node has one.
      prepareDefinition: (definition) =>
        withConnectionDefaults(definition, {
          kafka: config.kafka,
          cassandra: config.cassandra,
          // On a server, in the node's schema: its dead letters stay apart from other applications' and other clusters'.
          ...(sinkPool !== undefined
            ? { deadLetters: { type: 'postgres', schema: config.postgres.schema } }
            : config.journal.type === 'embedded'
              ? { deadLetters: { type: 'postgres' } }
              : {}),
        }),
    });
  } catch (error) {
    await cluster?.stop().catch(() => undefined);
    if (isDataflowError(error, 'journal/keyspace-claim-aborted') && startSignal !== undefined) {
      logger.info(`${heard(startSignal)} while waiting for the keyspace claim (${error.message}): the node did not start`);
      return 0;
    }
    logger.error(`cannot start: ${describeError(error)}`);
    return isDataflowError(error, 'node/invalid-config') ? EX_CONFIG : 1;
  }
  logger.info(`node ${node.nodeId} started; journal: ${node.storeDescription}${config.source === undefined ? '' : `; configuration: ${config.source}`}`);
  let services: NodeServices;
  try {
    const deadLetterDb = sinkPool === undefined ? undefined : pgPoolExecutor(sinkPool, { ownsPool: false, lockTimeoutMs: 0 });
    services = await startNodeServices(node, config, logger, {
      readiness: cluster === undefined ? readiness : [...readiness, clusterReadiness(cluster)],
      // The API reads the dead letters where the targets write them: the postgres.url pool, else the embedded database.
      deadLetterDatabase: () => deadLetterDb ?? embeddedDatabase(node).executor,
      ...(cluster === undefined ? {} : { cluster: { routing: cluster.routing, projections: cluster.projections } }),
    });
    if (cluster !== undefined) {
      if (services.api === undefined) throw new NodeConfigError('api.enabled', 'must be true in cluster mode: the nodes forward requests to each other through it');
      await cluster.start(node, services.api.url);
    }
  } catch (error) {
    logger.error(`cannot start: ${describeError(error)}`);
    await cluster?.stop().catch(() => undefined);
    await node.shutdown().catch(() => undefined);
    return isDataflowError(error, 'node/invalid-config') ? EX_CONFIG : 1;
  }
  // Nothing else may keep the event loop alive (a failed pipeline, a journal being waited for): the node runs until told to stop.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  let code = 0;
  try {
    if (startSignal === undefined) {
      if (config.demo) {
        await runDemo(node, config, logger);
        await runMetricsDemo(node, services, logger);
      }
      if (cluster === undefined) await ensureConfiguredPipelines(node, config, logger);
      else if (services.api !== undefined) await ensureConfiguredPipelinesInCluster(services.api.url, config, logger);
      const ended = await Promise.race([
        signals.received.then((signal) => ({ signal })),
        node.failure.then((failure) => ({ failure })),
        ...(claimLost === undefined ? [] : [claimLost.then((failure) => ({ failure }))]),
      ]);
      if ('signal' in ended) logger.info(`${heard(ended.signal)}: stopping`);
      else {
        logger.error(`the node stops: ${ended.failure.message}`, { component: ended.failure.component });
        code = 1;
      }
    }
  } catch (error) {
    logger.error(`the pipelines could not start: ${describeError(error)}`);
    code = isDataflowError(error, 'node/invalid-config') ? EX_CONFIG : 1;
  } finally {
    clearInterval(keepAlive);
  }
  return stop(node, services, config, logger, code, cluster);
}

async function stop(node: DataflowNode, services: NodeServices, config: NodeRuntimeConfig, logger: NodeLogger, code: number, cluster: NodeCluster | undefined): Promise<number> {
  const timeoutMs = config.node.shutdownTimeoutMs;
  let step = 'the cluster hand-over';
  const timeout = setTimeout(() => {
    const waitingFor = step === 'the services' ? (services.closing() ?? step) : step;
    logger.error(`the node did not stop within ${timeoutMs} ms (DATAFLOW_SHUTDOWN_TIMEOUT_MS): still waiting for ${waitingFor}; exiting without a clean stop`);
    process.exit(1);
  }, timeoutMs);
  try {
    // Cluster: hand the pipelines and the coordinator over first, so the other nodes take them at once.
    if (cluster !== undefined) {
      await cluster.stop().catch((error: unknown) => logger.warn(`the cluster hand-over was not clean: ${describeError(error)}`));
      logger.info('left the cluster; its pipelines are handed over');
    }
    step = 'the services';
    await services.close();
    step = 'the pipelines and the journal';
    const { pipelines } = await node.shutdown();
    const demo = pipelines.find((p) => p.pipelineId === DEMO_PIPELINE_ID);
    if (demo !== undefined) stopLine(demo, logger);
    else logger.info(`node ${node.nodeId} stopped; ${pipelines.length} pipelines`);
    return code;
  } catch (error) {
    logger.error(`the node did not stop cleanly: ${describeError(error)}`);
    return 1;
  } finally {
    clearTimeout(timeout);
  }
}
