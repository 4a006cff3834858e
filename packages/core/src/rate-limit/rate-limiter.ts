/**
 * The rate-limit port: how many records a pipeline may read per second. The
 * pipeline runtime asks its `RateLimiter` after each poll for the records it
 * read, before they go any further; the records stay unacknowledged while it
 * waits, so the source sees back-pressure and nothing is lost. A limiter is
 * one of two things: a `TokenBucket` that grants or says how long to wait
 * (`rateLimiterOf` turns it into a `RateLimiter` that waits on a scheduler),
 * or anything else that resolves once the records may pass.
 *
 * `localTokenBucket` is the in-process bucket (per process, not shared);
 * `apps/node` shares one bucket per pipeline across nodes through Redis.
 */
import type { Clock } from '../clock/clock.js';
import type { Scheduler } from '../clock/scheduler.js';

/** A limit: `recordsPerSecond` refilled continuously, at most `burst` records taken at once after a pause. */
export interface RateLimit {
  readonly recordsPerSecond: number;
  /** At least 1; a request never asks for more than this at once. */
  readonly burst: number;
}

/** Records a pipeline asks to pass. `records` is from 1 to `limit.burst` (the runtime splits larger batches). */
export interface RateLimitRequest {
  readonly pipelineId: string;
  readonly records: number;
  readonly limit: RateLimit;
}

/**
 * Admits records of a pipeline at the pipeline's rate.
 *
 * @example
 * ```ts
 * const limiter = rateLimiterOf(localTokenBucket(systemClock), systemScheduler);
 * await limiter.acquire({ pipelineId: 'orders', records: 100, limit: { recordsPerSecond: 200, burst: 200 } }, signal);
 * ```
 */
export interface RateLimiter {
  /**
   * Resolves once the records may pass; rejects with `signal.reason` as soon
   * as `signal` is aborted (a stop or a retry of the pipeline cuts the wait).
   */
  acquire(request: RateLimitRequest, signal: AbortSignal): Promise<void>;
}

/** The answer of a bucket: granted (the tokens are taken), or how long to wait before asking again. */
export type TokenGrant = { readonly granted: true } | { readonly granted: false; readonly waitMs: number };

/** A token bucket per pipeline: takes `records` tokens at once or says how long until it could. */
export interface TokenBucket {
  take(request: RateLimitRequest): TokenGrant | Promise<TokenGrant>;
}

/**
 * A `RateLimiter` that asks `bucket` and, while not granted, waits the
 * bucket's `waitMs` on `scheduler` (a test clock in tests) before asking again.
 *
 * @example
 * ```ts
 * const limiter = rateLimiterOf(localTokenBucket(clock), clock); // a TestClock is both
 * ```
 */
export function rateLimiterOf(bucket: TokenBucket, scheduler: Scheduler): RateLimiter {
  return {
    async acquire(request, signal) {
      for (;;) {
        signal.throwIfAborted();
        const grant = await bucket.take(request);
        if (grant.granted) return;
        await sleep(scheduler, Math.max(1, grant.waitMs), signal);
      }
    },
  };
}

function sleep(scheduler: Scheduler, delayMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const onAbort = (): void => {
      handle.cancel();
      reject(signal.reason as Error);
    };
    const handle = scheduler.schedule(delayMs, () => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * An in-process token bucket per pipeline id: full (`burst`) at first,
 * refilled at `recordsPerSecond` by `clock`. Its limit holds per process: two
 * nodes running the same pipeline each admit the full rate.
 *
 * @example
 * ```ts
 * const bucket = localTokenBucket(systemClock);
 * bucket.take({ pipelineId: 'orders', records: 10, limit: { recordsPerSecond: 5, burst: 10 } }); // { granted: true }
 * ```
 */
export function localTokenBucket(clock: Clock): TokenBucket {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take({ pipelineId, records, limit }) {
      const now = clock.now();
      const bucket = buckets.get(pipelineId) ?? { tokens: limit.burst, at: now };
      bucket.tokens = Math.min(limit.burst, bucket.tokens + (Math.max(0, now - bucket.at) * limit.recordsPerSecond) / 1_000);
      bucket.at = now;
      buckets.set(pipelineId, bucket);
      if (bucket.tokens >= records) {
        bucket.tokens -= records;
        return { granted: true };
      }
      return { granted: false, waitMs: Math.ceil(((records - bucket.tokens) * 1_000) / limit.recordsPerSecond) };
    },
  };
}

/** The default limit of a definition's `rateLimit`: `burst` defaults to one second's worth (at least 1). */
export function resolveRateLimit(rateLimit: { readonly recordsPerSecond: number; readonly burst?: number | undefined } | undefined): RateLimit | undefined {
  if (rateLimit === undefined) return undefined;
  return { recordsPerSecond: rateLimit.recordsPerSecond, burst: rateLimit.burst ?? Math.max(1, Math.ceil(rateLimit.recordsPerSecond)) };
}
