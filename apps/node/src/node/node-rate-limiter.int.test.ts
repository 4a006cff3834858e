/**
 * A pipeline definition's `rateLimit` on real nodes and a real Redis: a
 * generator pipeline limited to 200 records/s reads no more than its rate
 * (plus the burst) over 3 s; two nodes running the same pipeline id share
 * one bucket, so together they stay under the one limit; with Redis gone the
 * limit falls back to the node's bucket and the pipeline keeps running.
 */
import type { PipelineState } from '@dataflow/core';
import { serviceSettings } from '@dataflow/test-env';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger, startTempNode, type TempNode } from '../metrics/metrics-test-kit.js';
import { createRedisFeatures, type RedisFeatures } from '../redis/redis-features.js';

const RATE = 200;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const uniquePrefix = () => `dataflow-test:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`;

async function nodeWithRedis(url: string, keyPrefix: string): Promise<{ temp: TempNode; redis: RedisFeatures }> {
  const temp = await startTempNode();
  const redis = createRedisFeatures({ url, keyPrefix, nodeId: `n-${Math.random().toString(36).slice(2, 8)}`, logger: silentLogger, flushIntervalMs: 60_000 });
  const unshare = temp.node.rateLimiter.share(redis.rateLimitBucket);
  cleanups.push(async () => {
    unshare();
    await redis.close();
    await temp.close();
  });
  return { temp, redis };
}

const limited = {
  name: 'limited',
  source: { type: 'generator', fields: { id: { kind: 'sequence' } } },
  sink: { type: 'console' },
  batch: { size: 50, maxWaitMs: 20 },
  rateLimit: { recordsPerSecond: RATE },
};

const processed = (state: PipelineState | undefined): number => (state === undefined || state.status === 'empty' ? 0 : state.metrics.recordsProcessed);

/** Runs `pipelineId` on each node for about `ms`, stops them, and answers the records each processed and the seconds from the first start to the last stop. */
async function runFor(temps: readonly TempNode[], pipelineId: string, ms: number): Promise<{ counts: number[]; seconds: number }> {
  for (const { node } of temps) await node.createPipeline(limited, { pipelineId });
  const started = Date.now();
  await Promise.all(temps.map(({ node }) => node.start(pipelineId)));
  await new Promise((resolve) => setTimeout(resolve, ms));
  const stopped = await Promise.all(temps.map(({ node }) => node.stop(pipelineId, 'test over')));
  const seconds = (Date.now() - started) / 1_000;
  // stop drains: the batch in flight is written and checkpointed before the state says stopped.
  const counts = await Promise.all(
    temps.map(({ node }, i) =>
      vi.waitFor(
        async () => {
          const state = await node.getPipeline(pipelineId);
          if (state?.status !== 'stopped') throw new Error(`still ${state?.status ?? stopped[i]?.status}`);
          return processed(state);
        },
        { timeout: 20_000 },
      ),
    ),
  );
  return { counts, seconds };
}

describe('pipeline rateLimit', () => {
  it('holds a generator pipeline to 200 records/s (plus the burst) through the shared Redis bucket', { timeout: 60_000 }, async () => {
    const keyPrefix = uniquePrefix();
    const { temp, redis } = await nodeWithRedis(serviceSettings().redisUrl, keyPrefix);
    const { counts, seconds } = await runFor([temp], 'limited-one', 3_000);
    const [count = 0] = counts;
    // The burst (one second's worth by default) passes at once, then the rate.
    expect(count).toBeGreaterThanOrEqual(RATE);
    expect(count).toBeLessThanOrEqual(Math.ceil(RATE * seconds) + RATE);
    expect(temp.node.rateLimiter.fallbacks).toBe(0);
    expect(redis.failures).toBe(0);
    const check = new Redis(serviceSettings().redisUrl);
    cleanups.push(() => void check.disconnect());
    expect(await check.exists(`${keyPrefix}bucket:limited-one`)).toBe(1);
    await check.del(`${keyPrefix}bucket:limited-one`);
  });

  it('two nodes running the same pipeline share its one bucket and stay under the one limit together', { timeout: 90_000 }, async () => {
    const keyPrefix = uniquePrefix();
    const url = serviceSettings().redisUrl;
    const [a, b] = await Promise.all([nodeWithRedis(url, keyPrefix), nodeWithRedis(url, keyPrefix)]);
    if (a === undefined || b === undefined) throw new Error('two nodes');
    const { counts, seconds } = await runFor([a.temp, b.temp], 'limited-shared', 3_000);
    const total = counts.reduce((sum, n) => sum + n, 0);
    // Alone, each node's bucket would admit about this much by itself.
    expect(total).toBeLessThanOrEqual(Math.ceil(RATE * seconds) + RATE);
    expect(counts.every((n) => n > 0)).toBe(true);
    const check = new Redis(url);
    cleanups.push(() => void check.disconnect());
    await check.del(`${keyPrefix}bucket:limited-shared`);
  });

  it('with Redis unreachable, the node bucket holds the limit, the pipeline keeps running and Redis reports degraded', { timeout: 60_000 }, async () => {
    const { temp, redis } = await nodeWithRedis('redis://127.0.0.1:1', uniquePrefix());
    const { counts, seconds } = await runFor([temp], 'limited-local', 2_000);
    const [count = 0] = counts;
    expect(count).toBeGreaterThanOrEqual(RATE);
    expect(count).toBeLessThanOrEqual(Math.ceil(RATE * seconds) + RATE);
    expect(temp.node.rateLimiter.fallbacks).toBeGreaterThan(0);
    expect(redis.state().state).toBe('degraded');
  });
});
