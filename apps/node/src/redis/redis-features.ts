/**
 * What Redis does for a node, where a shared, fast store earns its place:
 *
 * - **live throughput counters** per pipeline shared by all nodes: records per
 *   second in one-second buckets (`HINCRBY <prefix>rate:<pipeline> <second>`,
 *   kept 2 minutes), fed from the node's `pipeline.batch.completed` events and
 *   flushed once a second in one round trip, never per record;
 * - a **token bucket** per key shared by all nodes (one Lua script, run with
 *   EVALSHA): `acquire(key, n, ratePerSec, burst)` grants or says how long to
 *   wait;
 * - **pub/sub of status changes** (`<prefix>status`): every node publishes its
 *   pipelines' changes and hears the others', for live feeds across nodes;
 * - a **cache of status reads** (`<prefix>status:<pipeline>`, short TTL),
 *   dropped when a change for that pipeline is heard.
 *
 * Redis down never stops a pipeline or throws into a caller: commands fail
 * fast (no offline queue), counters are dropped and counted, `acquire` fails
 * open, cache reads miss, and `state()` says `degraded` with the cause for
 * `/ready` until the connection is back.
 */
import type { DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
export type { StatusMessage } from './status-feed.js';
import { Redis } from 'ioredis';
import { RedisUnavailableError } from './redis-errors.js';
import { createStatusFeed, type StatusMessage } from './status-feed.js';
import { createThroughputCounters } from './throughput-counters.js';
import { createTokenBucketLimiter, type Acquired, type RateLimit, type SharedRateLimitBucket } from './token-bucket.js';

export interface RedisFeaturesOptions {
  readonly url: string;
  /** Prefix of every key and channel (default `dataflow:`). */
  readonly keyPrefix?: string;
  readonly nodeId: string;
  readonly logger: NodeLogger;
  /** How long a cached status lives, ms (default 5 000). */
  readonly statusTtlMs?: number;
  /** How often counters are flushed, ms (default 1 000). */
  readonly flushIntervalMs?: number;
  /** Shared rate limits per pipeline id (more with `setRateLimit`). */
  readonly rateLimits?: Readonly<Record<string, RateLimit>>;
}

export interface RedisFeatures {
  /** `ok`, or `degraded` with why (for `/ready`). */
  state(): { readonly state: 'ok' } | { readonly state: 'degraded'; readonly detail: string; readonly cause?: RedisUnavailableError };
  /** Counts records of a pipeline (also fed by `attach`). */
  count(pipelineId: string, records: number): void;
  /** Writes the counts gathered so far (the timer does it every second). */
  flush(): Promise<void>;
  /** Records per second of a pipeline over the last `seconds` full seconds, from all nodes; undefined when Redis is down. */
  recordsPerSecond(pipelineId: string, seconds?: number): Promise<number | undefined>;
  /** Takes `n` tokens from the pipeline's shared bucket; granted at once without a limit, and (fail open) when Redis is down. */
  acquire(pipelineId: string, n: number): Promise<Acquired>;
  /** Sets or (with `undefined`) removes a pipeline's shared rate limit on this node. */
  setRateLimit(pipelineId: string, limit: RateLimit | undefined): void;
  /** The shared buckets with a limit given per call (a pipeline definition's `rateLimit`); rejects with `RedisUnavailableError` when Redis is down. */
  readonly rateLimitBucket: SharedRateLimitBucket;
  publishStatus(message: Omit<StatusMessage, 'nodeId' | 'at'>): Promise<void>;
  /** Status changes published by any node (this one included). */
  onStatus(listener: (message: StatusMessage) => void): () => void;
  cachedStatus<T>(pipelineId: string, read: () => Promise<T>): Promise<T>;
  /** Feeds the counters and publishes the status changes of `node`. */
  attach(node: Pick<DataflowNode, 'events'>): () => void;
  /** Counts dropped because Redis was down. */
  readonly dropped: number;
  /** Commands that failed because Redis was down (each degraded one feature for one call). */
  readonly failures: number;
  close(): Promise<void>;
}

/**
 * Connects (lazily; a Redis that is down at start only makes the features
 * degraded) and returns the features.
 *
 * @example
 * ```ts
 * const redis = createRedisFeatures({ url: 'redis://127.0.0.1:6379', nodeId: node.nodeId, logger });
 * const detach = redis.attach(node);
 * await redis.recordsPerSecond('orders'); // from every node
 * ```
 */
export function createRedisFeatures(options: RedisFeaturesOptions): RedisFeatures {
  const prefix = options.keyPrefix ?? 'dataflow:';
  const statusTtlMs = options.statusTtlMs ?? 5_000;
  const settings = {
    lazyConnect: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 8), 5_000),
  };
  const client = new Redis(options.url, settings);
  const subscriber = new Redis(options.url, { ...settings, enableOfflineQueue: true, autoResubscribe: false });
  let problem: { detail: string; cause?: RedisUnavailableError } | undefined = { detail: 'connecting' };
  let reported = false;
  let failures = 0;
  const degrade = (detail: string, cause?: RedisUnavailableError): void => {
    problem = cause === undefined ? { detail } : { detail, cause };
    if (!reported) options.logger.warn(`redis ${redacted(options.url)} is unavailable (${detail}): counters, shared rate limits and status pub/sub are degraded; pipelines keep running`);
    reported = true;
  };
  /** A command failed: counted, logged at debug, and the cause kept for `state()`; never thrown into the caller. */
  const failed = (operation: string, error: unknown): void => {
    failures++;
    const cause = error instanceof RedisUnavailableError ? error : new RedisUnavailableError(operation, error);
    options.logger.debug(cause.message);
    if (problem === undefined && client.status !== 'ready') degrade(cause.message, cause);
    else if (problem !== undefined) problem = { detail: problem.detail, cause };
  };
  client.on('ready', () => {
    if (reported) options.logger.info(`redis ${redacted(options.url)} is available again`);
    problem = undefined;
    reported = false;
  });
  client.on('error', (error: Error) => degrade(error.message, new RedisUnavailableError('connect', error)));
  let closing = false;
  client.on('close', () => {
    if (!closing) degrade('connection lost');
  });
  // The subscriber reconnects by itself and resubscribes; its errors are the same outage the client reports.
  subscriber.on('error', (error: Error) => options.logger.debug(`redis subscriber: ${error.message}`));

  const feed = createStatusFeed({ client, subscriber, keyPrefix: prefix, nodeId: options.nodeId, statusTtlMs, logger: options.logger, onFailure: (error) => failed(error.operation, error) });

  const counters = createThroughputCounters(client, prefix, (error) => failed(error.operation, error));
  const flush = (): Promise<void> => counters.flush();
  const timer = setInterval(() => void flush(), options.flushIntervalMs ?? 1_000);
  timer.unref();
  const limiter = createTokenBucketLimiter(client, prefix, options.rateLimits ?? {}, (error) => failed('acquire', error));

  const features: RedisFeatures = {
    state: () => (problem === undefined ? { state: 'ok' } : { state: 'degraded', ...problem }),
    count: (pipelineId, records) => counters.count(pipelineId, records),
    flush,
    recordsPerSecond: (pipelineId, seconds) => counters.recordsPerSecond(pipelineId, seconds),
    acquire: (pipelineId, n) => limiter.acquire(pipelineId, n),
    setRateLimit: (pipelineId, limit) => limiter.setLimit(pipelineId, limit),
    rateLimitBucket: { take: (pipelineId, n, limit) => limiter.take(pipelineId, n, limit) },
    publishStatus: (message) => feed.publish(message),
    onStatus: (listener) => feed.onStatus(listener),
    cachedStatus: (pipelineId, read) => feed.cached(pipelineId, read),
    attach: (node) => {
      const offBatch = node.events.on('pipeline.batch.completed', (e) => features.count(e.pipelineId, e.records));
      const offStatus = node.events.on('pipeline.status.changed', (e) => void features.publishStatus({ pipelineId: e.pipelineId, status: e.to, from: e.from }));
      return () => {
        offBatch();
        offStatus();
      };
    },
    get dropped() {
      return counters.dropped;
    },
    get failures() {
      return failures;
    },
    close: async () => {
      closing = true;
      clearInterval(timer);
      await flush();
      feed.close();
      subscriber.disconnect();
      client.disconnect();
    },
  };
  return features;
}

function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.href;
  } catch {
    return '(redis url)';
  }
}
