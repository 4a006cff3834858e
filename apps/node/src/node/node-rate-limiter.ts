/**
 * The rate limiter a node gives its pipelines (the core `RateLimiter` port):
 * a pipeline definition's `rateLimit` is held by one token bucket per
 * pipeline. With Redis (`share(redis.rateLimitBucket)`) the bucket is shared
 * by every node of the cluster (`redis/token-bucket.ts`); without it, or
 * while Redis does not answer, an in-process bucket holds the same limit per
 * node (two nodes running one pipeline then admit twice the rate). Redis
 * down never stops a pipeline: each refused call is reported by the Redis
 * features (`/ready` says `redis: degraded`) and served by the local bucket.
 * Waiting happens on the node's scheduler and stops when the pipeline's
 * generation is aborted.
 */
import { isDataflowError, localTokenBucket, rateLimiterOf, type Clock, type RateLimiter, type Scheduler, type TokenBucket, type TokenGrant } from '@dataflow/core';
import type { SharedRateLimitBucket } from '../redis/token-bucket.js';

/** A node's limiter: local until a shared bucket is attached. */
export interface NodeRateLimiter extends RateLimiter {
  /** Uses `bucket` (shared through Redis) from now on; the returned function goes back to the local bucket. */
  share(bucket: SharedRateLimitBucket): () => void;
  /** `shared` while a shared bucket is attached (Redis may still be down: then calls fall back one by one). */
  readonly mode: 'local' | 'shared';
  /** Calls the shared bucket refused because Redis was down (served by the local bucket instead). */
  readonly fallbacks: number;
}

/**
 * Creates a node's rate limiter on `clock` and `scheduler`.
 *
 * @example
 * ```ts
 * const limiter = createNodeRateLimiter({ clock: systemClock, scheduler: systemScheduler });
 * const unshare = limiter.share(redis.rateLimitBucket);
 * await limiter.acquire({ pipelineId: 'orders', records: 100, limit: { recordsPerSecond: 200, burst: 200 } }, signal);
 * ```
 */
export function createNodeRateLimiter(options: { readonly clock: Clock; readonly scheduler: Scheduler }): NodeRateLimiter {
  const local = localTokenBucket(options.clock);
  let shared: SharedRateLimitBucket | undefined;
  let fallbacks = 0;
  const bucket: TokenBucket = {
    take: async (request): Promise<TokenGrant> => {
      const current = shared;
      if (current === undefined) return local.take(request);
      try {
        return await current.take(request.pipelineId, request.records, { ratePerSec: request.limit.recordsPerSecond, burst: request.limit.burst });
      } catch (error) {
        // Reported by the Redis features (counted, logged, /ready degraded); the local bucket holds the limit meanwhile.
        if (!isDataflowError(error, 'redis/unavailable')) throw error;
        fallbacks++;
        return local.take(request);
      }
    },
  };
  const limiter = rateLimiterOf(bucket, options.scheduler);
  return {
    acquire: (request, signal) => limiter.acquire(request, signal),
    share(next) {
      shared = next;
      return () => {
        if (shared === next) shared = undefined;
      };
    },
    get mode() {
      return shared === undefined ? 'local' : 'shared';
    },
    get fallbacks() {
      return fallbacks;
    },
  };
}
