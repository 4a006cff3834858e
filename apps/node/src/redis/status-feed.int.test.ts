/**
 * The status feed against the real Redis: a change published on one node is
 * heard on another (messages from other publishers on the channel are
 * ignored), the cached status is served until a change drops it or its TTL
 * ends, and the channel is per cluster (key prefix).
 */
import { serviceSettings } from '@dataflow/test-env';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { NodeLogger } from '../node/node-logger.js';
import type { RedisUnavailableError } from './redis-errors.js';
import { createStatusFeed, parseStatus, type StatusFeed, type StatusMessage } from './status-feed.js';

const debug: string[] = [];
const logger: NodeLogger = { debug: (m) => debug.push(m), info: () => undefined, warn: () => undefined, error: () => undefined };
const connections: Redis[] = [];
const feeds: StatusFeed[] = [];
const prefixes: string[] = [];
const noFailure = (error: RedisUnavailableError) => {
  throw error;
};
const redis = async () => {
  const c = new Redis(serviceSettings().redisUrl, { maxRetriesPerRequest: 1 });
  connections.push(c);
  await new Promise((resolve) => c.once('ready', resolve));
  return c;
};
const node = async (keyPrefix: string, nodeId: string, statusTtlMs = 5_000) => {
  const feed = createStatusFeed({ client: await redis(), subscriber: await redis(), keyPrefix, nodeId, statusTtlMs, logger, onFailure: noFailure });
  feeds.push(feed);
  return feed;
};
const uniquePrefix = () => {
  const prefix = `dataflow-test:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`;
  prefixes.push(prefix);
  return prefix;
};
afterEach(async () => {
  for (const f of feeds.splice(0)) f.close();
  const cleaner = await redis();
  for (const prefix of prefixes.splice(0)) {
    const keys = await cleaner.keys(`${prefix}*`);
    if (keys.length > 0) await cleaner.del(...keys);
  }
  for (const c of connections.splice(0)) c.disconnect();
});

describe('status feed', () => {
  it("hears another node's change, ignores foreign messages and stays within its cluster", { timeout: 10_000 }, async () => {
    const prefix = uniquePrefix();
    const a = await node(prefix, 'node-a');
    const b = await node(prefix, 'node-b');
    const otherCluster = await node(uniquePrefix(), 'node-c');
    const heard: StatusMessage[] = [];
    const elsewhere: StatusMessage[] = [];
    b.onStatus((m) => heard.push(m));
    otherCluster.onStatus((m) => elsewhere.push(m));
    await new Promise((r) => setTimeout(r, 200)); // subscriptions in place
    const publisher = await redis();
    await publisher.publish(`${prefix}status`, 'not json');
    await publisher.publish(`${prefix}status`, JSON.stringify({ pipelineId: 'orders' }));
    await a.publish({ pipelineId: 'orders', status: 'paused', from: 'running' });
    await vi.waitFor(() => expect(heard).toEqual([expect.objectContaining({ pipelineId: 'orders', status: 'paused', from: 'running', nodeId: 'node-a' })]));
    expect(debug.filter((m) => m.includes('ignored a message'))).toHaveLength(4); // two messages, heard by node-a and node-b
    expect(elsewhere).toEqual([]);
  });

  it('serves the cached status until a change drops it or the TTL ends', { timeout: 10_000 }, async () => {
    const prefix = uniquePrefix();
    const a = await node(prefix, 'node-a', 300);
    const b = await node(prefix, 'node-b', 300);
    let reads = 0;
    const read = () => Promise.resolve({ status: `v${++reads}` });
    expect(await b.cached('orders', read)).toEqual({ status: 'v1' });
    expect(await a.cached('orders', read)).toEqual({ status: 'v1' }); // shared by the nodes
    await new Promise((r) => setTimeout(r, 200));
    await a.publish({ pipelineId: 'orders', status: 'paused', from: 'running' });
    await vi.waitFor(async () => expect(await b.cached('orders', read)).toEqual({ status: 'v2' }));
    await new Promise((r) => setTimeout(r, 400));
    expect(await b.cached('orders', read)).toEqual({ status: 'v3' });
  });

  it('parses only complete status messages', () => {
    const full = { pipelineId: 'p', status: 'running', from: 'starting', nodeId: 'n', at: '2026-01-01T00:00:00.000Z' };
    expect(parseStatus(JSON.stringify(full))).toEqual(full);
    expect(parseStatus(JSON.stringify({ ...full, at: 1 }))).toBeUndefined();
    expect(parseStatus('null')).toBeUndefined();
    expect(parseStatus('{')).toBeUndefined();
  });
});
