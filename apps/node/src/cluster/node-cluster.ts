/**
 * What `dataflow start` adds in cluster mode (`cluster.enabled`): a Redis
 * connection for membership and leases, the runtime that places pipelines
 * and the coordinator, the node hooks, the API routing, the read-model
 * projections split into slice ranges spread over the nodes, and the pipelines of the configuration file,
 * created through the API so that each lands on the node that owns it.
 */
import type { PersistencePlugin } from '@dataflow/core';
import { Redis } from 'ioredis';
import { hostname } from 'node:os';
import type { NodeRuntimeConfig } from '../config/load-config.js';
import type { NodeClusterConfig, DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { startNodeProjections } from '../projections/node-projections.js';
import { ClusterRedis } from './cluster-redis.js';
import { ClusterRuntime } from './cluster-runtime.js';
import type { PipelineRoutingOptions } from './pipeline-routing.js';
import { spawnRemoteCoordinator } from './remote-coordinator.js';
import { ClusterProjections } from './cluster-projections.js';
import { sliceRanges } from '@dataflow/projections';
import { remoteTasks } from './remote-tasks.js';

export interface NodeCluster {
  readonly nodeId: string;
  readonly runtime: ClusterRuntime;
  readonly projections: ClusterProjections;
  /** For `startNode`. */
  readonly hooks: NodeClusterConfig;
  /** For the admin API. */
  readonly routing: PipelineRoutingOptions;
  /** Joins the cluster; `apiUrl` is where this node's API listens. */
  start(node: DataflowNode, apiUrl: string): Promise<void>;
  /** Hands everything over and leaves; closes the Redis connection. */
  stop(): Promise<void>;
}

/**
 * @example
 * ```ts
 * const cluster = createNodeCluster(config, logger, () => node.persistence);
 * const node = await startNode({ ...options, nodeId: cluster.nodeId, cluster: cluster.hooks });
 * ```
 */
export function createNodeCluster(config: NodeRuntimeConfig, logger: NodeLogger, persistence: () => PersistencePlugin): NodeCluster {
  const settings = config.cluster;
  const redisUrl = config.redis?.url;
  if (redisUrl === undefined) throw new TypeError('cluster mode needs redis.url (checked when the configuration is loaded)');
  const nodeId = config.node.id ?? `${hostname()}-${process.pid}`;
  // Fail fast while disconnected (no offline queue), and never wait long for an answer: the lease watchdog must not depend on Redis.
  const client = new Redis(redisUrl, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: Math.max(500, Math.floor(settings.leaseTtlMs / 5)),
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    lazyConnect: false,
  });
  let lastError = '';
  client.on('error', (error: Error) => {
    if (error.message === lastError) return;
    lastError = error.message;
    logger.warn(`cluster: Redis connection: ${error.message}`);
  });
  client.on('ready', () => (lastError = ''));
  const redis = new ClusterRedis(client, { nodeId, keyPrefix: settings.keyPrefix, ttlMs: settings.leaseTtlMs });
  const ranges = sliceRanges(settings.projectionRanges);
  const projections = new ClusterProjections(() => startNodeProjections({ persistence: persistence(), logger, migrate: config.journal.migrate, sliceRanges: ranges }));
  const runtime = new ClusterRuntime({
    redis,
    logger,
    shards: settings.shards,
    tickMs: settings.tickMs,
    // A node with projections.enabled false takes no range: the ranges spread over the nodes that run projections.
    ...(config.projections.enabled ? { projectionRanges: { ranges, onRange: (range, runs) => projections.onRange(range, runs) } } : {}),
  });
  const authToken = config.api.authToken;
  let started: DataflowNode | undefined;
  return {
    nodeId,
    runtime,
    projections,
    hooks: {
      hosts: (pipelineId) => runtime.hosts(pipelineId),
      remoteCoordinator: (system) => spawnRemoteCoordinator(system, { holderUrl: () => runtime.coordinatorUrl(), ...(authToken === undefined ? {} : { authToken }) }),
      onTakenOver: (pipelineId) => logger.warn(`cluster: pipeline ${pipelineId} was written by another node; it runs there now`, { pipeline_id: pipelineId }),
      remoteTasks: remoteTasks({ nodeId, ownerOf: (taskId) => runtime.ownerOf(taskId), ...(authToken === undefined ? {} : { authToken }) }),
    },
    routing: {
      nodeId,
      ownerOf: (pipelineId) => runtime.ownerOf(pipelineId),
      coordinatorOwner: () => runtime.coordinatorOwner(),
      view: () => ({ ...runtime.view(), hosted: [...(started?.hostedPipelines() ?? [])].sort() }),
      ...(authToken === undefined ? {} : { authToken }),
    },
    start: async (node, apiUrl) => {
      started = node;
      if (config.projections.enabled) await projections.open();
      await runtime.start(node, settings.advertiseUrl?.replace(/\/+$/, '') ?? advertised(apiUrl));
    },
    stop: async () => {
      try {
        await runtime.stop();
        await projections.close();
      } finally {
        client.disconnect();
      }
    },
  };
}

/** The API's URL as other nodes reach it: a wildcard listen address becomes the host name. */
function advertised(apiUrl: string): string {
  const url = new URL(apiUrl);
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]') url.hostname = hostname();
  return url.origin;
}
