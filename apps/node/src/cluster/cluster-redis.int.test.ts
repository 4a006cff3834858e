/**
 * Membership and shard leases (`cluster-redis.ts`) on the real Redis, each
 * test under its own key prefix: three nodes see the same live members, a
 * node that stops heartbeating leaves by the server's clock, placement over
 * the live set leases every shard to exactly one node, one of two contenders
 * wins a lease, fencing tokens grow with every acquisition (also a holder's
 * own, and across a lost counter), a non-holder cannot renew or release, and a holder cut from Redis
 * (through a TCP proxy this test closes) sees its lease lost by its own clock
 * while the server copy still lives, after which another node takes it with
 * a higher token.
 */
import { isDataflowError } from '@dataflow/core';
import { serviceProxy, serviceSettings, type ServiceProxy } from '@dataflow/test-env';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ClusterRedis, type HeldLease } from './cluster-redis.js';
import { DEFAULT_SHARDS, shardLeaseName, shardsOf } from './rendezvous.js';

const clients: Redis[] = [];
const closers: (() => Promise<void>)[] = [];
const prefix = () => `dataflow-test:cluster:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`;

/** A client as the node opens it: fails fast while disconnected instead of queueing. */
function client(url = serviceSettings().redisUrl): Redis {
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500, retryStrategy: (attempt) => Math.min(attempt * 100, 500) });
  redis.on('error', () => undefined); // reconnects by itself; the failed commands carry the error
  clients.push(redis);
  return redis;
}

async function ready(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
}

async function node(keyPrefix: string, nodeId: string, options: { ttlMs?: number; url?: string } = {}): Promise<ClusterRedis> {
  const redis = client(options.url);
  await ready(redis);
  return new ClusterRedis(redis, { keyPrefix, nodeId, ttlMs: options.ttlMs ?? 3_000 });
}

/** Heartbeats `member` every ttl / 3 until the returned function is called. */
function heartbeating(member: ClusterRedis, load = 0): () => void {
  const beat = () => member.heartbeat({ url: `http://${member.nodeId}:8080`, startedAt: 1_700_000_000_000, load });
  const timer = setInterval(() => void beat().catch(() => undefined), Math.floor(member.ttlMs / 3));
  return () => clearInterval(timer);
}

/** A proxy to Redis this test can cut (closed after the test). */
async function proxy(): Promise<ServiceProxy> {
  const link = await serviceProxy(serviceSettings().redisUrl);
  closers.push(() => link.close());
  return link;
}

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const redis of clients.splice(0)) redis.disconnect();
});

describe('cluster membership', () => {
  it('three nodes see the same live members, sorted, with their details', { timeout: 20_000 }, async () => {
    const keyPrefix = prefix();
    const nodes = await Promise.all(['node-c', 'node-a', 'node-b'].map((id) => node(keyPrefix, id)));
    await Promise.all(nodes.map((n, i) => n.heartbeat({ url: `http://${n.nodeId}:8080`, startedAt: 1_700_000_000_000 + i, load: i })));
    const views = await Promise.all(nodes.map((n) => n.members()));
    expect(views[0]).toEqual([
      { nodeId: 'node-a', url: 'http://node-a:8080', startedAt: 1_700_000_000_001, load: 1 },
      { nodeId: 'node-b', url: 'http://node-b:8080', startedAt: 1_700_000_000_002, load: 2 },
      { nodeId: 'node-c', url: 'http://node-c:8080', startedAt: 1_700_000_000_000, load: 0 },
    ]);
    expect(views[1]).toEqual(views[0]);
    expect(views[2]).toEqual(views[0]);
  });

  it('a node that stops heartbeating leaves within the TTL; the others stay', { timeout: 20_000 }, async () => {
    const keyPrefix = prefix();
    const [a, b, c] = await Promise.all(['node-a', 'node-b', 'node-c'].map((id) => node(keyPrefix, id, { ttlMs: 1_500 })));
    const stops = [a!, b!, c!].map((n) => heartbeating(n));
    await Promise.all([a!, b!, c!].map((n) => n.heartbeat({ url: `http://${n.nodeId}:8080`, startedAt: 1_700_000_000_000, load: 0 })));
    expect((await a!.members()).map((m) => m.nodeId)).toEqual(['node-a', 'node-b', 'node-c']);
    stops[2]!(); // node-c stops renewing (a crash, a pause)
    await vi.waitFor(async () => expect((await a!.members()).map((m) => m.nodeId)).toEqual(['node-a', 'node-b']), { timeout: 1_500 + 1_000, interval: 100 });
    expect((await b!.members()).map((m) => m.nodeId)).toEqual(['node-a', 'node-b']);
    stops[0]!();
    stops[1]!();
  });

  it('leave() removes the node at once', { timeout: 20_000 }, async () => {
    const keyPrefix = prefix();
    const [a, b] = await Promise.all(['node-a', 'node-b'].map((id) => node(keyPrefix, id, { ttlMs: 60_000 })));
    for (const n of [a!, b!]) await n.heartbeat({ url: `http://${n.nodeId}:8080`, startedAt: 0, load: 0 });
    await b!.leave();
    expect((await a!.members()).map((m) => m.nodeId)).toEqual(['node-a']);
  });

  it('a second process with the same node id is not a member until the first one is gone, and cannot remove it', { timeout: 20_000 }, async () => {
    const keyPrefix = prefix();
    const first = await node(keyPrefix, 'twin', { ttlMs: 1_500 });
    const second = await node(keyPrefix, 'twin', { ttlMs: 1_500 });
    await first.heartbeat({ url: 'http://first:8080', startedAt: 1, load: 0 });
    const refused = await second.heartbeat({ url: 'http://second:8080', startedAt: 2, load: 0 }).catch((error: unknown) => error);
    expect(isDataflowError(refused, 'cluster/node-id-in-use')).toBe(true);
    expect((refused as Error).message).toMatch(/^node id twin is in use by another process \(http:\/\/first:8080\); its membership expires in \d+ ms/);
    expect((refused as { retriable: boolean }).retriable).toBe(true);
    await second.leave();
    expect((await first.members()).map((m) => [m.nodeId, m.url])).toEqual([['twin', 'http://first:8080']]);
    // The first one stops heartbeating: once its membership expires, the id is the second one's.
    await vi.waitFor(() => second.heartbeat({ url: 'http://second:8080', startedAt: 2, load: 0 }), { timeout: 5_000, interval: 200 });
    expect((await second.members()).map((m) => m.url)).toEqual(['http://second:8080']);
    await expect(first.heartbeat({ url: 'http://first:8080', startedAt: 1, load: 0 })).rejects.toThrow(/in use by another process \(http:\/\/second:8080\)/);
  });

  it('a node cut from Redis gets a retriable redis/unavailable error with the cause, not a crash', { timeout: 20_000 }, async () => {
    const keyPrefix = prefix();
    const link = await proxy();
    const a = await node(keyPrefix, 'node-a', { url: link.url });
    await a.heartbeat({ url: 'http://node-a:8080', startedAt: 0, load: 0 });
    await link.cut();
    const error: unknown = await a.members().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isDataflowError(error, 'redis/unavailable')).toBe(true);
    expect(error).toMatchObject({ retriable: true, operation: 'cluster members' });
    expect((error as { cause?: unknown }).cause).toBeInstanceOf(Error);
  });
});

describe('shard leases', () => {
  it('placement over the live members leases every shard to exactly one node', { timeout: 30_000 }, async () => {
    const keyPrefix = prefix();
    const nodes = await Promise.all(['node-a', 'node-b', 'node-c'].map((id) => node(keyPrefix, id, { ttlMs: 30_000 })));
    for (const n of nodes) await n.heartbeat({ url: `http://${n.nodeId}:8080`, startedAt: 0, load: 0 });
    const held = new Map<number, string>();
    for (const n of nodes) {
      const ids = (await n.members()).map((m) => m.nodeId); // each node places from its own view
      for (const shard of shardsOf(n.nodeId, ids)) {
        const lease = await n.acquire(shardLeaseName(shard));
        expect(lease, `${n.nodeId} takes shard ${shard}`).toBeDefined();
        expect(held.has(shard), `shard ${shard} already held by ${held.get(shard)}`).toBe(false);
        held.set(shard, n.nodeId);
      }
    }
    expect([...held.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: DEFAULT_SHARDS }, (_, s) => s));
    expect(new Set(held.values())).toEqual(new Set(['node-a', 'node-b', 'node-c']));
    // Nobody else can take a held shard.
    for (const n of nodes) for (const [shard, owner] of held) if (owner !== n.nodeId && shard % 8 === 0) expect(await n.acquire(shardLeaseName(shard))).toBeUndefined();
  });

  it('of two contenders exactly one wins; the other can neither renew nor release it', { timeout: 20_000 }, async () => {
    const keyPrefix = prefix();
    const [a, b] = await Promise.all(['node-a', 'node-b'].map((id) => node(keyPrefix, id)));
    for (let round = 0; round < 20; round++) {
      const name = `shard-${round}`;
      const [la, lb] = await Promise.all([a!.acquire(name), b!.acquire(name)]);
      const won = [la, lb].filter((l): l is HeldLease => l !== undefined);
      expect(won).toHaveLength(1);
      const winner = won[0]!;
      const loser = la === undefined ? a! : b!;
      // The loser trying with the winner's token still is not the holder.
      expect(await loser.renew(winner)).toBeUndefined();
      await loser.release(winner);
      expect(await loser.acquire(name)).toBeUndefined();
    }
  });

  it('fencing tokens strictly increase with every acquisition, also a holder taking its own lease again', { timeout: 20_000 }, async () => {
    const keyPrefix = prefix();
    const [a, b] = await Promise.all(['node-a', 'node-b'].map((id) => node(keyPrefix, id)));
    const tokens: number[] = [];
    for (let i = 0; i < 10; i++) {
      const holder = i % 3 === 0 ? a! : b!;
      const lease = await holder.acquire('shard-7');
      expect(lease).toBeDefined();
      tokens.push(lease!.token);
      if (i % 2 === 0) await holder.release(lease!);
      else {
        // The same node id acquiring again while its lease lives (a restarted process, or a lease it gave up locally):
        // a new tenure with a new token, and the old tenure can no longer renew.
        const again = await holder.acquire('shard-7');
        expect(again!.token).toBeGreaterThan(lease!.token);
        tokens.push(again!.token);
        expect(await holder.renew(lease!)).toBeUndefined();
        expect(await holder.renew(again!)).toMatchObject({ token: again!.token });
        await holder.release(again!);
      }
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThan(tokens[i - 1]!);
  });

  it('tokens keep growing when the fence counter is lost (Redis restarted without persistence) or behind (a replica that missed writes)', { timeout: 20_000 }, async () => {
    const keyPrefix = prefix();
    const a = await node(keyPrefix, 'node-a');
    const observer = client();
    await ready(observer);
    const first = (await a.acquire('shard-1'))!;
    await a.release(first);
    // A restart or failover takes far longer than the millisecond the tokens are counted in.
    const serverTimePast = async (ms: number) => {
      for (;;) {
        const [seconds, micros] = await observer.time();
        if (Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000) > ms) return;
      }
    };
    await serverTimePast(first.token);
    await observer.del(`${keyPrefix}fence:shard-1`);
    const afterLoss = (await a.acquire('shard-1'))!;
    expect(afterLoss.token).toBeGreaterThan(first.token);
    await a.release(afterLoss);
    await serverTimePast(afterLoss.token);
    await observer.set(`${keyPrefix}fence:shard-1`, String(afterLoss.token - 1_000));
    const afterLag = (await a.acquire('shard-1'))!;
    expect(afterLag.token).toBeGreaterThan(afterLoss.token);
    // Tokens stay exact integers, and the lease names the token its holder was given.
    expect(Number.isSafeInteger(afterLag.token)).toBe(true);
    expect(await observer.get(`${keyPrefix}lease:shard-1`)).toBe(`node-a ${afterLag.token}`);
    expect(await a.renew(afterLag)).toMatchObject({ token: afterLag.token });
  });

  it('a holder cut from Redis sees its lease lost by its own clock while the server copy lives; then another node takes it with a higher token', { timeout: 30_000 }, async () => {
    const keyPrefix = prefix();
    const link = await proxy();
    const ttlMs = 3_000;
    const a = await node(keyPrefix, 'node-a', { ttlMs, url: link.url });
    const b = await node(keyPrefix, 'node-b', { ttlMs });
    const observer = client();
    await ready(observer);
    const first = await a.acquire('shard-3');
    expect(first).toBeDefined();
    const lease = (await a.renew(first!))!;
    expect(a.isValid(lease)).toBe(true);

    await link.cut();
    const renewError: unknown = await a.renew(lease).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isDataflowError(renewError, 'redis/unavailable')).toBe(true);
    await vi.waitFor(() => expect(a.isValid(lease)).toBe(false), { timeout: ttlMs, interval: 20 });
    // At that moment Redis still holds the lease for node-a: the local view lapsed first.
    expect(await observer.pttl(`${keyPrefix}lease:shard-3`)).toBeGreaterThan(0);
    expect(await observer.get(`${keyPrefix}lease:shard-3`)).toBe(`node-a ${lease.token}`);
    expect(await b.acquire('shard-3')).toBeUndefined();

    await vi.waitFor(async () => expect(await b.acquire('shard-3')).toBeDefined(), { timeout: ttlMs + 2_000, interval: 100 });
    expect(await observer.get(`${keyPrefix}lease:shard-3`)).toMatch(/^node-b \d+$/);
    const taken = Number((await observer.get(`${keyPrefix}lease:shard-3`))!.split(' ')[1]);
    expect(taken).toBeGreaterThan(lease.token);
  });
});
