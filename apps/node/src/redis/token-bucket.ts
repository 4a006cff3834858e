/**
 * A per-pipeline rate limit shared by all nodes: one token bucket per
 * pipeline in Redis (`<prefix>bucket:<pipeline>`, a hash of tokens and last
 * refill), taken and refilled atomically by one Lua script that ioredis runs
 * with EVALSHA (`defineCommand` caches the script; on NOSCRIPT it sends it
 * again). Time is Redis's own (`TIME`), so nodes with skewed clocks still share
 * one rate. A pipeline without a limit never touches Redis. When Redis cannot
 * answer `acquire` fails open (grants) and reports why: a missing Redis must
 * not stop pipelines; `take` (the pipelines' path, with the limit of their
 * definition) reports why too and rejects, so its caller can fall back to a
 * local bucket (`node/node-rate-limiter.ts`).
 */
import { isDataflowError } from '@dataflow/core';
import type { Redis } from 'ioredis';
import { InvalidRedisArgumentError, RedisUnavailableError } from './redis-errors.js';

/** A rate limit: `ratePerSec` tokens refilled per second, at most `burst` held. */
export interface RateLimit {
  readonly ratePerSec: number;
  readonly burst: number;
}

/** The answer of `acquire`: granted, or how long to wait before asking again. */
export type Acquired = { readonly granted: true } | { readonly granted: false; readonly waitMs: number };

/** Token buckets shared by all nodes, with the limit given per call. */
export interface SharedRateLimitBucket {
  /** See {@link TokenBucketLimiter.take}. */
  take(pipelineId: string, n: number, limit: RateLimit): Promise<Acquired>;
}

/** The shared limiter of `createTokenBucketLimiter`. */
export interface TokenBucketLimiter extends SharedRateLimitBucket {
  /** Takes `n` tokens from the pipeline's bucket; granted at once when it has no limit or Redis is down. */
  acquire(pipelineId: string, n: number): Promise<Acquired>;
  /** Sets (or with `undefined` removes) a pipeline's limit on this node; every node using it shares the bucket. */
  setLimit(pipelineId: string, limit: RateLimit | undefined): void;
  /**
   * Takes `n` tokens (1 to `limit.burst`) from the pipeline's shared bucket
   * with `limit` (a pipeline definition's `rateLimit`) instead of a
   * configured one. Rejects with `RedisUnavailableError` (after reporting it)
   * when Redis does not answer.
   */
  take(pipelineId: string, n: number, limit: RateLimit): Promise<Acquired>;
}

// KEYS[1] bucket; ARGV: tokens wanted, rate per second, burst. Returns { granted 0/1, wait ms }.
export const TOKEN_BUCKET_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wanted = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1])
local at = tonumber(bucket[2])
if tokens == nil or at == nil then tokens = burst; at = now end
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

type BucketRedis = Redis & { dataflowTokenBucket(key: string, wanted: number, rate: number, burst: number): Promise<[number, number]> };

/**
 * Returns the shared limiter on `client` (a client that fails fast while
 * disconnected); `onFailure` hears each failed call (the limiter granted).
 *
 * @example
 * ```ts
 * const limiter = createTokenBucketLimiter(client, 'dataflow:', { orders: { ratePerSec: 500, burst: 100 } }, report);
 * const answer = await limiter.acquire('orders', batch.length);
 * if (!answer.granted) await sleep(answer.waitMs);
 * ```
 */
export function createTokenBucketLimiter(
  client: Redis,
  keyPrefix: string,
  limits: Readonly<Record<string, RateLimit>>,
  onFailure: (error: RedisUnavailableError) => void,
): TokenBucketLimiter {
  const redis = client as BucketRedis;
  if (typeof redis.dataflowTokenBucket !== 'function') redis.defineCommand('dataflowTokenBucket', { numberOfKeys: 1, lua: TOKEN_BUCKET_LUA });
  const configured = new Map<string, RateLimit>();
  const setLimit = (pipelineId: string, limit: RateLimit | undefined): void => {
    if (limit === undefined) {
      configured.delete(pipelineId);
      return;
    }
    if (!(Number.isFinite(limit.ratePerSec) && limit.ratePerSec > 0)) throw new InvalidRedisArgumentError(`rateLimits.${pipelineId}.ratePerSec`, `must be a positive number (got ${limit.ratePerSec})`);
    if (!(Number.isFinite(limit.burst) && limit.burst >= 1)) throw new InvalidRedisArgumentError(`rateLimits.${pipelineId}.burst`, `must be at least 1 (got ${limit.burst})`);
    configured.set(pipelineId, limit);
  };
  for (const [pipelineId, limit] of Object.entries(limits)) setLimit(pipelineId, limit);
  /** Rejects with the reported `RedisUnavailableError` when Redis does not answer. */
  const take = async (pipelineId: string, n: number, limit: RateLimit): Promise<Acquired> => {
    if (!(Number.isInteger(n) && n > 0 && n <= limit.burst)) throw new InvalidRedisArgumentError('n', `must be an integer from 1 to the burst ${limit.burst} of ${pipelineId} (got ${n})`);
    try {
      const [granted, waitMs] = await redis.dataflowTokenBucket(`${keyPrefix}bucket:${pipelineId}`, n, limit.ratePerSec, limit.burst);
      return granted === 1 ? { granted: true } : { granted: false, waitMs };
    } catch (error) {
      const failure = new RedisUnavailableError(`acquire ${pipelineId}`, error);
      onFailure(failure);
      throw failure;
    }
  };
  return {
    setLimit,
    take,
    acquire: async (pipelineId, n) => {
      const limit = configured.get(pipelineId);
      if (limit === undefined) return { granted: true };
      try {
        return await take(pipelineId, n, limit);
      } catch (error) {
        if (isDataflowError(error, 'redis/unavailable')) return { granted: true }; // fail open, reported by take
        throw error;
      }
    },
  };
}
