/**
 * The shared token bucket against the real Redis: two clients sharing one
 * pipeline's bucket get no more than its rate together, a pipeline without a
 * limit never waits, bad arguments name the field, and a Redis that is gone
 * makes the limiter grant (fail open) and report the failure.
 */
import { isDataflowError } from '@dataflow/core';
import { serviceSettings } from '@dataflow/test-env';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { RedisUnavailableError } from './redis-errors.js';
import { createTokenBucketLimiter } from './token-bucket.js';

const clients: Redis[] = [];
const prefixes: string[] = [];
const connect = (url = serviceSettings().redisUrl) => {
  const client = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  client.on('error', () => undefined); // the test checks the limiter's report, not the client's
  clients.push(client);
  return client;
};
const uniquePrefix = () => {
  const prefix = `dataflow-test:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`;
  prefixes.push(prefix);
  return prefix;
};
afterEach(async () => {
  const cleaner = connect();
  await cleaner.connect();
  for (const prefix of prefixes.splice(0)) {
    const keys = await cleaner.keys(`${prefix}*`);
    if (keys.length > 0) await cleaner.del(...keys);
  }
  for (const c of clients.splice(0)) c.disconnect();
});
const noFailure = (error: RedisUnavailableError) => {
  throw error;
};

describe('token bucket limiter', () => {
  it('holds the total rate for two clients sharing one pipeline bucket', { timeout: 20_000 }, async () => {
    const prefix = uniquePrefix();
    const limit = { orders: { ratePerSec: 50, burst: 10 } };
    const both = [connect(), connect()];
    await Promise.all(both.map((c) => c.connect()));
    const limiters = both.map((c) => createTokenBucketLimiter(c, prefix, limit, noFailure));
    let granted = 0;
    const started = Date.now();
    const deadline = started + 2_000;
    await Promise.all(
      limiters.map(async (limiter) => {
        while (Date.now() < deadline) {
          const answer = await limiter.acquire('orders', 1);
          if (answer.granted) granted++;
          else await new Promise((r) => setTimeout(r, Math.min(answer.waitMs, 20)));
        }
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    // burst 10 + 50/s for both together; alone, each would have had that much.
    expect(granted).toBeLessThanOrEqual(10 + Math.ceil(50 * seconds) + 1);
    expect(granted).toBeGreaterThanOrEqual(Math.floor(50 * seconds * 0.8));
  });

  it('says how long to wait when the bucket is empty, and grants at once without a limit', async () => {
    const client = connect();
    await client.connect();
    const limiter = createTokenBucketLimiter(client, uniquePrefix(), { orders: { ratePerSec: 10, burst: 5 } }, noFailure);
    expect(await limiter.acquire('orders', 5)).toEqual({ granted: true });
    const answer = await limiter.acquire('orders', 2);
    expect(answer.granted).toBe(false);
    expect(answer.granted === false && answer.waitMs > 100 && answer.waitMs <= 200).toBe(true);
    expect(await limiter.acquire('unlimited', 1_000_000)).toEqual({ granted: true });
    limiter.setLimit('orders', undefined);
    expect(await limiter.acquire('orders', 1_000)).toEqual({ granted: true });
  });

  it('refuses arguments it cannot use, naming the field', async () => {
    const limiter = createTokenBucketLimiter(connect(), uniquePrefix(), { orders: { ratePerSec: 10, burst: 5 } }, noFailure);
    await expect(limiter.acquire('orders', 6)).rejects.toSatisfy((e) => isDataflowError(e, 'redis/invalid-argument') && e.message.startsWith('n:'));
    expect(() => limiter.setLimit('p', { ratePerSec: 0, burst: 1 })).toThrow('rateLimits.p.ratePerSec');
    expect(() => limiter.setLimit('p', { ratePerSec: 1, burst: 0 })).toThrow('rateLimits.p.burst');
  });

  it('fails open and reports the failure when Redis is not there', async () => {
    const failures: RedisUnavailableError[] = [];
    const limiter = createTokenBucketLimiter(connect('redis://127.0.0.1:1'), uniquePrefix(), { orders: { ratePerSec: 1, burst: 1 } }, (e) => failures.push(e));
    expect(await limiter.acquire('orders', 1)).toEqual({ granted: true });
    expect(await limiter.acquire('orders', 1)).toEqual({ granted: true });
    expect(failures).toHaveLength(2);
    expect(failures[0]?.retriable).toBe(true);
    expect(failures[0]?.tag).toBe('redis/unavailable');
  });
});
