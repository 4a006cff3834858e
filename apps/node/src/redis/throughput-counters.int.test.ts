/**
 * The throughput counters against the real Redis: two nodes' counts add up
 * in one records/s, a thousand counts go out in one round trip (counted at a
 * TCP proxy between the client and Redis), and a Redis that is gone drops the
 * counts and says how many.
 */
import { isDataflowError } from '@dataflow/core';
import { serviceSettings } from '@dataflow/test-env';
import { Redis } from 'ioredis';
import { connect as tcp, createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RedisUnavailableError } from './redis-errors.js';
import { createThroughputCounters } from './throughput-counters.js';

const clients: Redis[] = [];
const servers: Server[] = [];
const prefixes: string[] = [];
const client = async (url = serviceSettings().redisUrl) => {
  const c = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  c.on('error', () => undefined); // the counters' own report is what these tests check
  clients.push(c);
  if (!url.endsWith(':1')) await c.connect();
  return c;
};
const uniquePrefix = () => {
  const prefix = `dataflow-test:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`;
  prefixes.push(prefix);
  return prefix;
};
const noFailure = (error: RedisUnavailableError) => {
  throw error;
};
afterEach(async () => {
  const cleaner = await client();
  for (const prefix of prefixes.splice(0)) {
    const keys = await cleaner.keys(`${prefix}*`);
    if (keys.length > 0) await cleaner.del(...keys);
  }
  for (const c of clients.splice(0)) c.disconnect();
  for (const s of servers.splice(0)) s.close();
});

/** A proxy to Redis that counts the chunks the client writes. */
async function countingProxy(): Promise<{ url: string; writes: () => number }> {
  const target = new URL(serviceSettings().redisUrl);
  let writes = 0;
  const server = createServer((from) => {
    const to = tcp(Number(target.port || 6379), target.hostname);
    from.on('data', () => writes++);
    for (const s of [from, to]) s.on('error', () => s.destroy());
    from.pipe(to).pipe(from);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`, writes: () => writes };
}

describe('throughput counters', () => {
  it('adds the counts of two nodes into one records/s over the last full seconds', async () => {
    const prefix = uniquePrefix();
    let clock = 1_700_000_000_000;
    const now = () => clock;
    const a = createThroughputCounters(await client(), prefix, noFailure, now);
    const b = createThroughputCounters(await client(), prefix, noFailure, now);
    a.count('orders', 300);
    b.count('orders', 200);
    clock += 1_000;
    a.count('orders', 500);
    await Promise.all([a.flush(), b.flush()]);
    clock += 1_000;
    expect(await a.recordsPerSecond('orders', 2)).toBe((300 + 200 + 500) / 2);
    expect(await b.recordsPerSecond('orders', 1)).toBe(500);
    expect(await b.recordsPerSecond('other', 5)).toBe(0);
    await expect(a.recordsPerSecond('orders', 0)).rejects.toSatisfy((e) => isDataflowError(e, 'redis/invalid-argument'));
  });

  it('writes a thousand counts in one round trip', async () => {
    const link = await countingProxy();
    const counters = createThroughputCounters(await client(link.url), uniquePrefix(), noFailure);
    const before = link.writes();
    for (let i = 0; i < 1_000; i++) counters.count(`p${i % 3}`, 1);
    await counters.flush();
    expect(link.writes() - before).toBe(1);
    await counters.flush(); // nothing pending: no round trip
    expect(link.writes() - before).toBe(1);
  });

  it('drops the counts and reports why when Redis is not there', async () => {
    const failures: RedisUnavailableError[] = [];
    const counters = createThroughputCounters(await client('redis://127.0.0.1:1'), uniquePrefix(), (e) => failures.push(e));
    counters.count('orders', 7);
    counters.count('audit', 3);
    await counters.flush();
    expect(counters.dropped).toBe(10);
    expect(await counters.recordsPerSecond('orders')).toBeUndefined();
    expect(failures.map((f) => f.operation)).toEqual(['flush counters', 'read records/s']);
  });
});
