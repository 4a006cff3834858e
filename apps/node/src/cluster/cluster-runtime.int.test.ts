/**
 * The cluster runtime (`cluster-runtime.ts`) on the real Redis with stand-in
 * nodes (they record which pipelines they run, nothing else), each test
 * under its own key prefix: three runtimes converge on running every
 * pipeline on exactly the node rendezvous placement names; a node that
 * leaves hands its pipelines over; a node cut from Redis (through a TCP proxy
 * the test closes) stops its pipelines by its own clock while Redis still
 * holds its leases, and the others take them only after; and at no moment do
 * two nodes run the same pipeline.
 */
import type { PipelineState, RegisteredPipeline } from '@dataflow/core';
import { serviceProxy, serviceSettings, type ServiceProxy } from '@dataflow/test-env';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { ClusterRedis } from './cluster-redis.js';
import { ClusterRuntime } from './cluster-runtime.js';
import { ownerOf, shardLeaseName, shardOf } from './rendezvous.js';

const TTL_MS = 2_000;
const SHARDS = 16;
const PIPELINES = Array.from({ length: 24 }, (_, i) => `p${i}`);

const clients: Redis[] = [];
const runtimes: ClusterRuntime[] = [];
const closers: (() => Promise<void>)[] = [];
const prefix = () => `dataflow-test:cluster-runtime:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`;
const logger: NodeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Who runs what, across the stand-in nodes, and every time two ran one pipeline at once. */
class Hosting {
  readonly runs = new Map<string, string>();
  readonly overlaps: string[] = [];
  adopt(nodeId: string, pipelineId: string): void {
    const other = this.runs.get(pipelineId);
    if (other !== undefined && other !== nodeId) this.overlaps.push(`${pipelineId}: ${nodeId} adopted while ${other} ran it`);
    this.runs.set(pipelineId, nodeId);
  }
  release(nodeId: string, pipelineId: string): void {
    if (this.runs.get(pipelineId) === nodeId) this.runs.delete(pipelineId);
  }
  of(nodeId: string): string[] {
    return [...this.runs].filter(([, n]) => n === nodeId).map(([p]) => p).sort();
  }
}

/** The part of a node the runtime drives: runs and stops pipelines, holds the coordinator. */
interface StandInControl {
  listDelayMs: number;
  /** The coordinator cannot be reached (it moves): listing the registry fails. */
  listFails?: boolean;
  /** What the runtime asked of the node, in order (release, lastReports, resignCoordinator). */
  readonly calls?: string[];
  /** Runs when the coordinator is resigned, before it is gone. */
  readonly onResign?: () => Promise<void>;
}

function standInNode(nodeId: string, hosting: Hosting, control: StandInControl = { listDelayMs: 0 }): DataflowNode {
  const hosted = new Set<string>();
  let coordinator = false;
  const node = {
    get runsCoordinator() {
      return coordinator;
    },
    hostedPipelines: () => [...hosted],
    // A journal outage makes the coordinator slow to answer: listDelayMs stands for it.
    listPipelines: () =>
      control.listFails === true
        ? Promise.reject(new Error("The node is unavailable: the cluster's coordinator cannot be reached (no node holds it yet)"))
        : new Promise((resolve) => setTimeout(() => resolve(PIPELINES.map((pipelineId) => ({ pipelineId }) as RegisteredPipeline)), control.listDelayMs)),
    adopt: (pipelineId: string) => {
      hosting.adopt(nodeId, pipelineId);
      hosted.add(pipelineId);
      return Promise.resolve({ status: 'running' } as unknown as PipelineState);
    },
    release: (pipelineId: string) => {
      control.calls?.push(`release ${pipelineId}`);
      hosted.delete(pipelineId);
      hosting.release(nodeId, pipelineId);
      return Promise.resolve();
    },
    becomeCoordinator: () => {
      coordinator = true;
      return Promise.resolve();
    },
    resignCoordinator: async () => {
      control.calls?.push('resignCoordinator');
      await control.onResign?.();
      coordinator = false;
    },
    reportStatuses: () => Promise.resolve(),
    lastReports: () => {
      control.calls?.push('lastReports');
      return Promise.resolve();
    },
  };
  return node as unknown as DataflowNode;
}

function client(url = serviceSettings().redisUrl): Redis {
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 400, retryStrategy: (attempt) => Math.min(attempt * 100, 400) });
  redis.on('error', () => undefined); // reconnects by itself; failed commands carry the error
  clients.push(redis);
  return redis;
}

async function ready(redis: Redis): Promise<Redis> {
  if (redis.status !== 'ready') await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
  return redis;
}

async function join(keyPrefix: string, nodeId: string, hosting: Hosting, url?: string, control?: StandInControl): Promise<ClusterRuntime> {
  const redis = new ClusterRedis(await ready(client(url)), { keyPrefix, nodeId, ttlMs: TTL_MS });
  const runtime = new ClusterRuntime({ redis, logger, shards: SHARDS, tickMs: 200 });
  runtimes.push(runtime);
  await runtime.start(standInNode(nodeId, hosting, control), `http://${nodeId}:8080`);
  return runtime;
}

/** What rendezvous placement says each of `members` should run. */
function placed(members: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = Object.fromEntries(members.map((m) => [m, [] as string[]]));
  for (const p of PIPELINES) out[ownerOf(shardLeaseName(shardOf(p, SHARDS)), members)!]!.push(p);
  for (const m of members) out[m]!.sort();
  return out;
}

/** A proxy to Redis this test can cut (closed after the test). */
async function proxy(): Promise<ServiceProxy> {
  const link = await serviceProxy(serviceSettings().redisUrl);
  closers.push(() => link.close());
  return link;
}

afterEach(async () => {
  for (const runtime of runtimes.splice(0)) await runtime.stop();
  for (const close of closers.splice(0)) await close();
  for (const redis of clients.splice(0)) redis.disconnect();
});

describe('cluster runtime', () => {
  it('three nodes run every pipeline exactly where placement says, and hand over when one leaves', { timeout: 30_000 }, async () => {
    const keyPrefix = prefix();
    const hosting = new Hosting();
    const [a, b, c] = [await join(keyPrefix, 'node-a', hosting), await join(keyPrefix, 'node-b', hosting), await join(keyPrefix, 'node-c', hosting)];
    const all = ['node-a', 'node-b', 'node-c'];
    await vi.waitFor(() => expect(Object.fromEntries(all.map((m) => [m, hosting.of(m)]))).toEqual(placed(all)), { timeout: 10_000, interval: 50 });
    await vi.waitFor(() => expect([a, b, c].filter((r) => r.view().coordinator).map((r) => r.nodeId)).toEqual([ownerOf('coordinator', all)]), { timeout: 10_000, interval: 50 });
    expect(a.view().members.map((m) => m.nodeId)).toEqual(all);

    await c.stop();
    runtimes.splice(runtimes.indexOf(c), 1);
    const rest = ['node-a', 'node-b'];
    await vi.waitFor(() => expect(Object.fromEntries(rest.map((m) => [m, hosting.of(m)]))).toEqual(placed(rest)), { timeout: 10_000, interval: 50 });
    expect(hosting.of('node-c')).toEqual([]);
    expect(hosting.overlaps).toEqual([]);
  });

  it('a node leaving with the coordinator frees its shards first and stops the coordinator once the last statuses reached it', { timeout: 30_000 }, async () => {
    const keyPrefix = prefix();
    const hosting = new Hosting();
    const observer = await ready(client());
    const calls: string[] = [];
    let shardsHeldAtResign: string[] = [];
    const onResign = async () => {
      const keys = await observer.keys(`${keyPrefix}lease:shard-*`);
      const holders = await Promise.all(keys.map(async (k) => [k, await observer.get(k)] as const));
      shardsHeldAtResign = holders.filter(([, holder]) => holder?.startsWith('node-a ') === true).map(([k]) => k);
    };
    const a = await join(keyPrefix, 'node-a', hosting, undefined, { listDelayMs: 0, calls, onResign });
    await vi.waitFor(() => expect(hosting.of('node-a')).toEqual([...PIPELINES].sort()), { timeout: 10_000, interval: 50 });
    await vi.waitFor(() => expect(a.view().coordinator).toBe(true), { timeout: 10_000, interval: 50 });

    await a.stop();
    runtimes.splice(runtimes.indexOf(a), 1);
    // Every pipeline stopped, then the statuses were awaited, then the coordinator went; by then no shard named this node.
    expect(calls.slice(-2)).toEqual(['lastReports', 'resignCoordinator']);
    expect(calls.filter((c) => c.startsWith('release ')).sort()).toEqual(PIPELINES.map((p) => `release ${p}`).sort());
    expect(shardsHeldAtResign).toEqual([]);
  });

  it('takes over the shards of a node that leaves while the coordinator cannot be reached, from the registry it listed last', { timeout: 30_000 }, async () => {
    const keyPrefix = prefix();
    const hosting = new Hosting();
    const control: StandInControl = { listDelayMs: 0 };
    const a = await join(keyPrefix, 'node-a', hosting);
    await join(keyPrefix, 'node-b', hosting, undefined, control);
    const both = ['node-a', 'node-b'];
    await vi.waitFor(() => expect(Object.fromEntries(both.map((m) => [m, hosting.of(m)]))).toEqual(placed(both)), { timeout: 10_000, interval: 50 });
    expect(hosting.of('node-a').length).toBeGreaterThan(0);

    // The coordinator moves with node-a: node-b cannot list the registry until it runs it itself.
    control.listFails = true;
    await a.stop();
    runtimes.splice(runtimes.indexOf(a), 1);
    await vi.waitFor(() => expect(hosting.of('node-b')).toEqual([...PIPELINES].sort()), { timeout: 10_000, interval: 50 });
    expect(hosting.overlaps).toEqual([]);
  });

  it('a node cut from Redis stops its pipelines while Redis still holds its leases; the others take them after', { timeout: 30_000 }, async () => {
    const keyPrefix = prefix();
    const hosting = new Hosting();
    const link = await proxy();
    const observer = await ready(client());
    await join(keyPrefix, 'node-a', hosting, link.url);
    await join(keyPrefix, 'node-b', hosting);
    const both = ['node-a', 'node-b'];
    await vi.waitFor(() => expect(Object.fromEntries(both.map((m) => [m, hosting.of(m)]))).toEqual(placed(both)), { timeout: 10_000, interval: 50 });
    const shardsOfA = [...new Set(hosting.of('node-a').map((p) => shardOf(p, SHARDS)))];
    expect(shardsOfA.length).toBeGreaterThan(0);

    await link.cut();
    await vi.waitFor(() => expect(hosting.of('node-a')).toEqual([]), { timeout: TTL_MS, interval: 10 });
    // node-a stopped by its own clock: Redis still names it as the holder of its shards.
    const holders = await Promise.all(shardsOfA.map((s) => observer.get(`${keyPrefix}lease:${shardLeaseName(s)}`)));
    expect(holders.filter((h) => h?.startsWith('node-a ')).length).toBeGreaterThan(0);

    await vi.waitFor(() => expect(hosting.of('node-b')).toEqual([...PIPELINES].sort()), { timeout: TTL_MS + 5_000, interval: 50 });
    expect(hosting.overlaps).toEqual([]);
  });

  it('keeps its membership and leases while placing pipelines is slow (the coordinator or the journal answering late)', { timeout: 30_000 }, async () => {
    const keyPrefix = prefix();
    const hosting = new Hosting();
    const slow = { listDelayMs: 0 };
    const a = await join(keyPrefix, 'node-a', hosting, undefined, slow);
    await join(keyPrefix, 'node-b', hosting);
    const both = ['node-a', 'node-b'];
    await vi.waitFor(() => expect(Object.fromEntries(both.map((m) => [m, hosting.of(m)]))).toEqual(placed(both)), { timeout: 10_000, interval: 50 });
    const before = hosting.of('node-a');
    slow.listDelayMs = 3 * TTL_MS;
    // Three lease times without an answer: nothing moves, node-a stays a member with its shards.
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, TTL_MS / 10));
      expect(hosting.of('node-a')).toEqual(before);
      expect(a.view().members.map((m) => m.nodeId)).toEqual(both);
    }
    expect(hosting.overlaps).toEqual([]);
  });
});
