/**
 * What runs beside a node's pipelines: the read-model projections, the
 * Prometheus metrics endpoint (and, as they land, the admin API and the
 * console). Started
 * after the node, closed before it, in reverse order; a service that cannot
 * start stops the start with its cause (a taken port is a configuration
 * error naming the field).
 */
import type { NodeRuntimeConfig } from './config/load-config.js';
import type { DataflowNode } from './node/dataflow-node.js';
import type { NodeLogger } from './node/node-logger.js';
import { isDataflowError } from '@dataflow/core';
import type { SqlExecutor } from '@dataflow/persistence';
import type { FastifyInstance } from 'fastify';
import { createAdminApi, listensOffLoopback } from './api/admin-api.js';
import { registerConsole } from './api/console.js';
import type { ReadinessCheck } from './api/routes-system.js';
import type { PipelineRoutingOptions } from './cluster/pipeline-routing.js';
import type { ClusterProjections } from './cluster/cluster-projections.js';
import { createRedisFeatures, type RedisFeatures } from './redis/redis-features.js';
import { createNodeMetrics, type NodeMetrics } from './metrics/node-metrics.js';
import { startMetricsServer, type MetricsServer } from './metrics/metrics-server.js';
import { NodeConfigError } from './node/node-errors.js';
import { startNodeProjections, type NodeProjections } from './projections/node-projections.js';

/** How long a stop lets the admin API's requests in flight finish before it closes their connections. */
const API_DRAIN_MS = 5_000;

/** The services of a running node. */
export interface NodeServices {
  readonly projections: NodeProjections | undefined;
  /** The admin API and console, listening (`api.enabled`); `url` is where. */
  readonly api: { readonly app: FastifyInstance; readonly url: string } | undefined;
  /** Redis features (`redis.url`). */
  readonly redis: RedisFeatures | undefined;
  /** The node's metrics and their endpoint (`metrics.enabled`). */
  readonly metrics: { readonly metrics: NodeMetrics; readonly server: MetricsServer } | undefined;
  /** Closes every service (the node itself is not touched). */
  close(): Promise<void>;
  /** The service `close` waits for now (`the admin API`, ...), for a stop that takes too long to name it. */
  closing(): string | undefined;
}

/**
 * Starts the services the configuration asks for.
 *
 * @example
 * ```ts
 * const services = await startNodeServices(node, config, logger);
 * // ... until a signal
 * await services.close();
 * await node.shutdown();
 * ```
 */
export async function startNodeServices(
  node: DataflowNode,
  config: NodeRuntimeConfig,
  logger: NodeLogger,
  options: {
    readonly readiness?: readonly ReadinessCheck[];
    /** Cluster mode: the API forwards to the owners; the projections run split into slice ranges over the nodes (`cluster/`). */
    readonly cluster?: { readonly routing: PipelineRoutingOptions; readonly projections: ClusterProjections };
    /** Where `postgres` dead-letter targets without `connectionString` write, for the API to read (default the journal's database). */
    readonly deadLetterDatabase?: () => SqlExecutor | undefined;
  } = {},
): Promise<NodeServices> {
  const closers: { readonly name: string; readonly close: () => Promise<void> }[] = [];
  let closing: string | undefined;
  const close = async (): Promise<void> => {
    for (const closer of closers.splice(0).reverse()) {
      closing = closer.name;
      await closer.close().catch((error: unknown) => logger.warn(`${closer.name} did not close cleanly: ${error instanceof Error ? error.message : String(error)}`));
    }
    closing = undefined;
  };
  try {
    // The embedded store belongs to this node: its read-model tables are created at start. On a server, journal.migrate decides.
    const projections: NodeProjections | undefined = !config.projections.enabled
      ? undefined
      : options.cluster !== undefined
        ? options.cluster.projections
        : await startNodeProjections({ persistence: node.persistence, logger, migrate: config.journal.type === 'embedded' ? 'auto' : config.journal.migrate });
    if (projections !== undefined) closers.push({ name: 'the read-model projections', close: () => projections.close() });
    let metrics: NodeServices['metrics'];
    if (config.metrics.enabled) {
      const nodeMetrics = createNodeMetrics(node);
      closers.push({ name: 'the node metrics', close: () => Promise.resolve(nodeMetrics.close()) });
      if (projections !== undefined) nodeMetrics.observeProjections(projections.events);
      const server = await startMetricsServer({ registry: nodeMetrics.registry, port: config.metrics.port, host: config.metrics.host }).catch((error: unknown) => {
        throw isDataflowError(error, 'metrics/port-in-use') ? new NodeConfigError('metrics.port', `${error.message} (DATAFLOW_METRICS_PORT)`, { cause: error }) : error;
      });
      closers.push({ name: 'the metrics server', close: () => server.close() });
      logger.info(`metrics on ${server.url}`);
      metrics = { metrics: nodeMetrics, server };
    }
    // Redis (optional): shared counters, rate limits and status pub/sub; down, it only degrades these.
    const redis = config.redis === undefined ? undefined : createRedisFeatures({ url: config.redis.url, keyPrefix: config.redis.keyPrefix, nodeId: node.nodeId, logger });
    if (redis !== undefined) {
      // The pipelines' rate limits become shared by the nodes of this Redis (each call falls back to the node's bucket while Redis is down).
      const unshare = node.rateLimiter.share(redis.rateLimitBucket);
      closers.push({ name: 'the shared rate limits', close: () => Promise.resolve(unshare()) });
      const detach = redis.attach(node);
      closers.push({
        name: 'the Redis connection',
        close: async () => {
          detach();
          await redis.close();
        },
      });
    }
    let api: NodeServices['api'];
    if (config.api.enabled) {
      if (listensOffLoopback(config.api.host) && config.api.authToken === undefined) {
        throw new NodeConfigError('api.authToken', `is required when the API listens off loopback (api.host ${config.api.host}); set DATAFLOW_AUTH_TOKEN or DATAFLOW_AUTH_TOKEN_FILE`);
      }
      const readiness: ReadinessCheck[] = [...(redis === undefined ? [] : [{ name: 'redis', check: () => redis.state() }]), ...(options.readiness ?? [])];
      const app = await createAdminApi({
        node,
        logger,
        bodyLimit: config.api.bodyLimitBytes,
        readiness,
        ...(options.cluster === undefined ? {} : { cluster: options.cluster.routing }),
        ...(options.deadLetterDatabase === undefined ? {} : { deadLetterDatabase: options.deadLetterDatabase }),
        ...(redis === undefined ? {} : { remoteStatus: { subscribe: (listener) => redis.onStatus((m) => listener(m)) } }),
        ...(projections === undefined ? {} : { projections }),
        ...(config.api.authToken === undefined ? {} : { authToken: config.api.authToken }),
      });
      // Requests in flight, to name those a stop has to cut.
      const inFlight = new Map<object, string>();
      app.addHook('onRequest', (request, _reply, done) => {
        inFlight.set(request, `${request.method} ${request.url.split('?')[0] ?? ''}`);
        done();
      });
      app.addHook('onResponse', (request, _reply, done) => {
        inFlight.delete(request);
        done();
      });
      app.addHook('onRequestAbort', (request, done) => {
        inFlight.delete(request);
        done();
      });
      closers.push({
        name: 'the admin API (requests in flight)',
        close: async () => {
          // Requests in flight get API_DRAIN_MS to finish; then their connections are closed, so a request that never ends cannot hold the stop.
          const cut = setTimeout(() => {
            logger.warn(`the admin API still had ${inFlight.size} request(s) in flight ${API_DRAIN_MS} ms into the stop (${[...inFlight.values()].slice(0, 5).join(', ')}); closing their connections`);
            app.server.closeAllConnections();
          }, API_DRAIN_MS);
          try {
            await app.close();
          } finally {
            clearTimeout(cut);
          }
        },
      });
      await registerConsole(app);
      try {
        await app.listen({ host: config.api.host, port: config.api.port });
      } catch (error) {
        const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
        throw new NodeConfigError('api.port', inUse ? `port ${config.api.port} on ${config.api.host} is taken (DATAFLOW_API_PORT)` : `cannot listen on ${config.api.host}:${config.api.port}: ${(error as Error).message}`, { cause: error });
      }
      const address = app.server.address();
      const port = typeof address === 'object' && address !== null ? address.port : config.api.port;
      const url = `http://${config.api.host.includes(':') ? `[${config.api.host}]` : config.api.host}:${port}`;
      logger.info(`admin API and console on ${url}/ (OpenAPI: ${url}/api/v1/openapi.json)`);
      api = { app, url };
    }
    return { projections, metrics, api, redis, close, closing: () => closing };
  } catch (error) {
    await close();
    throw error;
  }
}
