/**
 * `@dataflow/node`: the runnable DataFlow node (pipelines, coordinator and
 * journal in one process). `main.ts` runs it from the command line.
 */
export { startNode, type DataflowNode, type NodeConfig, type ShutdownReport } from './node/dataflow-node.js';
export { localConnectorFactory } from './node/connector-factory.js';
export { openNodeStore, type NodeStore, type OpenedStore } from './node/node-persistence.js';
export { NodeConfigError, NodeUnavailableError, PipelineNotFoundError } from './node/node-errors.js';
export type { LogFields, NodeLogger } from './node/node-logger.js';
export { createNodeMetrics, REPORTED_PIPELINE_STATUSES, type MetricsSource, type NodeMetrics, type NodeMetricsOptions } from './metrics/node-metrics.js';
export { DEFAULT_METRICS_PORT, startMetricsServer, type MetricsServer, type MetricsServerOptions } from './metrics/metrics-server.js';
export { InvalidMetricValueError, MetricsPortInUseError, MetricsServerError } from './metrics/metrics-errors.js';
export { createRedisFeatures, type RedisFeatures, type RedisFeaturesOptions, type StatusMessage } from './redis/redis-features.js';
export { createTokenBucketLimiter, type Acquired, type RateLimit, type TokenBucketLimiter } from './redis/token-bucket.js';
export { InvalidRedisArgumentError, RedisUnavailableError } from './redis/redis-errors.js';
