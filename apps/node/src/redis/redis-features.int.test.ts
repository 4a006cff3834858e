/**
 * The Redis features against the real Redis (127.0.0.1:6379 by the test
 * services), each test under its own key prefix: counters shared by two
 * nodes, status pub/sub with cache
 * invalidation, and degradation through a TCP proxy that is cut and comes
 * back, and against a port where nothing listens.
 */
import { createInstrumentation, isDataflowError, type InstrumentationEvent } from '@dataflow/core';
import { serviceProxy, serviceSettings, type ServiceProxy } from '@dataflow/test-env';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NodeLogger } from '../node/node-logger.js';
import { createRedisFeatures, type RedisFeatures, type StatusMessage } from './redis-features.js';

const warnings: string[] = [];
const logger: NodeLogger = { debug: () => undefined, info: () => undefined, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
const opened: RedisFeatures[] = [];
const prefix = () => `dataflow-test:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`;
const open = (keyPrefix: string, nodeId: string, url = serviceSettings().redisUrl) => {
  const features = createRedisFeatures({ url, keyPrefix, nodeId, logger, flushIntervalMs: 100_000, rateLimits: { orders: { ratePerSec: 1, burst: 1 }, x: { ratePerSec: 1, burst: 1 } } });
  opened.push(features);
  return features;
};
afterEach(async () => {
  for (const f of opened.splice(0)) await f.close();
});

/** A proxy to Redis this test can cut (closed after the test). */
async function proxy(): Promise<ServiceProxy> {
  const link = await serviceProxy(serviceSettings().redisUrl);
  return link;
}

describe('Redis features', () => {
  it('counts records per pipeline across nodes, in one round trip per flush', { timeout: 20_000 }, async () => {
    const keyPrefix = prefix();
    const a = open(keyPrefix, 'a');
    const b = open(keyPrefix, 'b');
    await vi.waitFor(() => expect([a.state().state, b.state().state]).toEqual(['ok', 'ok']), { timeout: 5_000 });
    const events = createInstrumentation<InstrumentationEvent>();
    a.attach({ events });
    for (let i = 0; i < 5; i++) events.emit({ type: 'pipeline.batch.completed', pipelineId: 'orders', batchId: `b${i}`, records: 100, succeeded: 100, failed: 0, failedByStage: {}, deadLettered: 0, durationMs: 1 });
    b.count('orders', 250);
    await Promise.all([a.flush(), b.flush()]);
    // Counted in the current second: the rate over the last full seconds sees it once that second is over.
    await new Promise((r) => setTimeout(r, 1_100));
    expect(await a.recordsPerSecond('orders', 5)).toBe(750 / 5);
    expect(await b.recordsPerSecond('orders', 5)).toBe(750 / 5);
    expect(await a.recordsPerSecond('other', 5)).toBe(0);
  });

  it("publishes status changes to every node and drops a cached status on a change", { timeout: 20_000 }, async () => {
    const keyPrefix = prefix();
    const a = open(keyPrefix, 'node-a');
    const b = open(keyPrefix, 'node-b');
    const heard: StatusMessage[] = [];
    b.onStatus((m) => heard.push(m));
    await vi.waitFor(() => expect(b.state().state).toBe('ok'), { timeout: 5_000 });
    let reads = 0;
    const read = () => Promise.resolve({ status: `v${++reads}` });
    expect(await b.cachedStatus('orders', read)).toEqual({ status: 'v1' });
    expect(await b.cachedStatus('orders', read)).toEqual({ status: 'v1' });
    await new Promise((r) => setTimeout(r, 200)); // the subscriptions are in place
    await a.publishStatus({ pipelineId: 'orders', status: 'paused', from: 'running' });
    await vi.waitFor(() => expect(heard).toEqual([expect.objectContaining({ pipelineId: 'orders', status: 'paused', from: 'running', nodeId: 'node-a' })]), { timeout: 5_000 });
    await vi.waitFor(async () => expect(await b.cachedStatus('orders', read)).toEqual({ status: 'v2' }), { timeout: 5_000 });
  });

  it('degrades without throwing when Redis is cut, and recovers when it is back', { timeout: 40_000 }, async () => {
    const link = await proxy();
    try {
      const features = open(prefix(), 'a', link.url);
      await vi.waitFor(() => expect(features.state()).toEqual({ state: 'ok' }), { timeout: 5_000 });
      await link.cut();
      await vi.waitFor(() => expect(features.state().state).toBe('degraded'), { timeout: 5_000 });
      features.count('orders', 10);
      await features.flush();
      expect(features.dropped).toBe(10);
      expect(await features.acquire('orders', 1)).toEqual({ granted: true });
      expect(await features.acquire('orders', 1)).toEqual({ granted: true }); // fails open: a second token of burst 1
      expect(features.failures).toBeGreaterThanOrEqual(2);
      const state = features.state();
      expect(state.state === 'degraded' && isDataflowError(state.cause, 'redis/unavailable')).toBe(true);
      expect(await features.recordsPerSecond('orders')).toBeUndefined();
      expect(await features.cachedStatus('orders', () => Promise.resolve('fresh'))).toBe('fresh');
      await features.publishStatus({ pipelineId: 'orders', status: 'running', from: 'paused' });
      expect(warnings.some((w) => w.includes('is unavailable') && w.includes('pipelines keep running'))).toBe(true);
      await link.restore();
      await vi.waitFor(() => expect(features.state()).toEqual({ state: 'ok' }), { timeout: 15_000 });
    } finally {
      await link.close();
    }
  });

  it('is degraded, not failed, when nothing listens at the start', { timeout: 20_000 }, async () => {
    const features = open(prefix(), 'a', 'redis://127.0.0.1:1');
    await vi.waitFor(() => expect(features.state().state).toBe('degraded'), { timeout: 5_000 });
    expect(await features.acquire('x', 1)).toEqual({ granted: true });
    expect(await features.acquire('x', 1)).toEqual({ granted: true });
    features.count('x', 3);
    await features.flush();
    expect(features.dropped).toBe(3);
  });
});
