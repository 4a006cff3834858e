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
import { Redis } from 'ioredis';

/** A status change as published. */
export interface StatusMessage {
  readonly pipelineId: string;
  readonly status: string;
  readonly from: string;
  readonly nodeId: string;
  readonly at: string;
}

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
}

export interface RedisFeatures {
  /** `ok`, or `degraded` with why (for `/ready`). */
  state(): { readonly state: 'ok' | 'degraded'; readonly detail?: string };
  /** Counts records of a pipeline (also fed by `attach`). */
  count(pipelineId: string, records: number): void;
  /** Writes the counts gathered so far (the timer does it every second). */
  flush(): Promise<void>;
  /** Records per second of a pipeline over the last `seconds` full seconds, from all nodes; undefined when Redis is down. */
  recordsPerSecond(pipelineId: string, seconds?: number): Promise<number | undefined>;
  /** Takes `n` tokens from the bucket `key` (`ratePerSec` refill, `burst` capacity); fails open (granted) when Redis is down. */
  acquire(key: string, n: number, ratePerSec: number, burst: number): Promise<{ readonly granted: boolean; readonly waitMs: number }>;
  publishStatus(message: Omit<StatusMessage, 'nodeId' | 'at'>): Promise<void>;
  /** Status changes published by any node (this one included). */
  onStatus(listener: (message: StatusMessage) => void): () => void;
  cachedStatus<T>(pipelineId: string, read: () => Promise<T>): Promise<T>;
  /** Feeds the counters and publishes the status changes of `node`. */
  attach(node: Pick<DataflowNode, 'events'>): () => void;
  /** Counts dropped because Redis was down. */
  readonly dropped: number;
  close(): Promise<void>;
}

// KEYS[1] bucket; ARGV: now ms, tokens wanted, rate per second, burst. Returns { granted 0/1, wait ms }.
const TOKEN_BUCKET = `
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local now = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local rate = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local tokens = tonumber(bucket[1])
local at = tonumber(bucket[2])
if tokens == nil then tokens = burst; at = now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local granted = 0
local wait = 0
if tokens >= wanted then
  tokens = tokens - wanted
  granted = 1
else
  wait = math.ceil((wanted - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
return { granted, wait }
`;

type LimitedRedis = Redis & { tokenBucket(key: string, now: number, wanted: number, rate: number, burst: number): Promise<[number, number]> };

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
  const client = new Redis(options.url, settings) as LimitedRedis;
  client.defineCommand('tokenBucket', { numberOfKeys: 1, lua: TOKEN_BUCKET });
  const subscriber = new Redis(options.url, { ...settings, enableOfflineQueue: true });
  let problem: string | undefined = 'connecting';
  let reported = false;
  const degrade = (why: string): void => {
    problem = why;
    if (!reported) options.logger.warn(`redis ${redacted(options.url)} is unavailable (${why}): counters, shared rate limits and status pub/sub are degraded; pipelines keep running`);
    reported = true;
  };
  client.on('ready', () => {
    if (reported) options.logger.info(`redis ${redacted(options.url)} is available again`);
    problem = undefined;
    reported = false;
  });
  client.on('error', (error: Error) => degrade(error.message));
  let closing = false;
  client.on('close', () => {
    if (!closing) degrade('connection lost');
  });
  subscriber.on('error', () => undefined); // the client's state speaks for Redis; this one reconnects by itself

  const listeners = new Set<(message: StatusMessage) => void>();
  const channel = `${prefix}status`;
  subscriber.on('message', (_channel: string, text: string) => {
    let message: StatusMessage;
    try {
      message = JSON.parse(text) as StatusMessage;
    } catch {
      return; // not ours
    }
    if (typeof message.pipelineId !== 'string') return;
    void client.del(`${prefix}status:${message.pipelineId}`).catch(() => undefined);
    for (const listener of listeners) listener(message);
  });
  void subscriber.subscribe(channel).catch(() => undefined);

  let pending = new Map<string, number>();
  let dropped = 0;
  const flush = async (): Promise<void> => {
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    const second = Math.floor(Date.now() / 1000);
    const multi = client.pipeline();
    for (const [pipelineId, records] of batch) {
      const key = `${prefix}rate:${pipelineId}`;
      multi.hincrby(key, String(second), records).expire(key, 120);
    }
    let failed = false;
    try {
      // A pipeline resolves with an error per command instead of rejecting.
      const results = await multi.exec();
      failed = results === null || results.some(([error]) => error !== null);
    } catch {
      failed = true;
    }
    if (failed) for (const records of batch.values()) dropped += records;
  };
  const timer = setInterval(() => void flush(), options.flushIntervalMs ?? 1_000);
  timer.unref();

  const features: RedisFeatures = {
    state: () => (problem === undefined ? { state: 'ok' } : { state: 'degraded', detail: problem }),
    count: (pipelineId, records) => {
      if (records > 0) pending.set(pipelineId, (pending.get(pipelineId) ?? 0) + records);
    },
    flush,
    recordsPerSecond: async (pipelineId, seconds = 10) => {
      const now = Math.floor(Date.now() / 1000);
      const fields = Array.from({ length: seconds }, (_, i) => String(now - 1 - i));
      try {
        const values = await client.hmget(`${prefix}rate:${pipelineId}`, ...fields);
        return values.reduce((sum, v) => sum + (v === null ? 0 : Number(v)), 0) / seconds;
      } catch {
        return undefined;
      }
    },
    acquire: async (key, n, ratePerSec, burst) => {
      if (!(ratePerSec > 0) || !(burst >= n) || !(n > 0)) throw new RangeError(`acquire: need 0 < n <= burst and a positive rate (n ${n}, burst ${burst}, rate ${ratePerSec})`);
      try {
        const [granted, waitMs] = await client.tokenBucket(`${prefix}bucket:${key}`, Date.now(), n, ratePerSec, burst);
        return { granted: granted === 1, waitMs };
      } catch {
        return { granted: true, waitMs: 0 }; // fail open: a missing Redis must not stop pipelines
      }
    },
    publishStatus: async (message) => {
      const full: StatusMessage = { ...message, nodeId: options.nodeId, at: new Date().toISOString() };
      await client.publish(channel, JSON.stringify(full)).catch(() => undefined);
    },
    onStatus: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    cachedStatus: async <T>(pipelineId: string, read: () => Promise<T>): Promise<T> => {
      const key = `${prefix}status:${pipelineId}`;
      const cached = await client.get(key).catch(() => null);
      if (cached !== null) return JSON.parse(cached) as T;
      const value = await read();
      await client.set(key, JSON.stringify(value), 'PX', statusTtlMs).catch(() => undefined);
      return value;
    },
    attach: (node) => {
      const offBatch = node.events.on('pipeline.batch.completed', (e) => features.count(e.pipelineId, e.records));
      const offStatus = node.events.on('pipeline.status.changed', (e) => void features.publishStatus({ pipelineId: e.pipelineId, status: e.to, from: e.from }));
      return () => {
        offBatch();
        offStatus();
      };
    },
    get dropped() {
      return dropped;
    },
    close: async () => {
      closing = true;
      clearInterval(timer);
      await flush();
      listeners.clear();
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
