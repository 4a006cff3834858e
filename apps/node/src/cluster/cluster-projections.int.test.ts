/**
 * The read-model projections split into slice ranges over a cluster, on the
 * real Postgres and Redis: three cluster runtimes (stand-in nodes for the
 * pipelines, real projections on one Postgres schema) spread the ranges so
 * that each is held by exactly one node and every node holds some; the rows
 * they produce together equal, row for row, what one unsliced projection
 * produces from the same pipeline events in another schema (the hourly
 * metrics are sums: an event applied twice, or missed, shows), the hourly
 * metrics' ranges catching up first in SQL over their slices; a node that
 * leaves hands its ranges over and the rows stay identical; the status from
 * any node covers every range; pause and resume from one node act on the
 * ranges the others run; a rebuild from one node swaps identical rows in and
 * every range goes on from the rebuild's offset; a range run by two nodes
 * at once (a lapsed lease whose actors have not stopped yet) applies
 * nothing twice (the offset save fences it); a rebuild whose node died is
 * undone by a live node once its heartbeat is stale, and a rebuild while
 * another's is alive is refused; a node that would split into another
 * number of ranges is refused before it takes any.
 */
import { isDataflowError } from '@dataflow/core';
import type { PostgresPersistence } from '@dataflow/persistence';
import { createPostgresPersistence } from '@dataflow/persistence';
import { sliceKey, sliceRanges } from '@dataflow/projections';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DataflowNode } from '../node/dataflow-node.js';
import type { NodeConfigError } from '../node/node-errors.js';
import type { NodeLogger } from '../node/node-logger.js';
import { startNodeProjections, type NodeProjections, type SlicedNodeProjections } from '../projections/node-projections.js';
import { ClusterRedis } from './cluster-redis.js';
import { ClusterRuntime, projectionRangeLeaseName } from './cluster-runtime.js';
import { ownerOf } from './rendezvous.js';

const TTL_MS = 2_000;
const RANGES = sliceRanges(8);
const PIPELINES = Array.from({ length: 40 }, (_, i) => `pl-${i}`);
const NODES = ['node-a', 'node-b', 'node-c'];
const HOUR = 3_600_000;
const BASE = Date.UTC(2026, 0, 5, 10);

const logger: NodeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const schema = testNamespace(import.meta.url);
const refSchema = testNamespace(import.meta.url, 'ref');
const keyPrefix = `dataflow-test:cluster-projections:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}:`;

let pool: pg.Pool;
let shared: PostgresPersistence;
let reference: PostgresPersistence;
let referenceProjections: NodeProjections;

interface TestNode {
  readonly id: string;
  readonly projections: SlicedNodeProjections;
  readonly runtime: ClusterRuntime;
  readonly client: Redis;
  stopped: boolean;
}
const nodes: TestNode[] = [];
/** The offset of each range's first progress, by `name/key`. */
const firstProgress = new Map<string, number>();
/** The last start, stop or error of each range, whichever node ran it, by `name/key`. */
const lastStatus = new Map<string, string>();

/** Pipelines are not what this test is about: the stand-in node runs none and holds the coordinator when told. */
function standInNode(): DataflowNode {
  let coordinator = false;
  return {
    get runsCoordinator() {
      return coordinator;
    },
    hostedPipelines: () => [],
    listPipelines: () => Promise.resolve([]),
    adopt: () => Promise.reject(new Error('no pipelines here')),
    release: () => Promise.resolve(),
    becomeCoordinator: () => {
      coordinator = true;
      return Promise.resolve();
    },
    resignCoordinator: () => {
      coordinator = false;
      return Promise.resolve();
    },
    reportStatuses: () => Promise.resolve(),
    lastReports: () => Promise.resolve(),
  } as unknown as DataflowNode;
}

async function join(id: string): Promise<TestNode> {
  const projections = await startNodeProjections({ persistence: shared, logger, migrate: 'auto', sliceRanges: RANGES, resumeCheckMs: 200 });
  if (projections === undefined) throw new Error('projections must run on Postgres');
  const client = new Redis(serviceSettings().redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 400 });
  client.on('error', () => undefined);
  if (client.status !== 'ready') await new Promise<void>((resolve) => client.once('ready', () => resolve()));
  const runtime = new ClusterRuntime({
    redis: new ClusterRedis(client, { keyPrefix, nodeId: id, ttlMs: TTL_MS }),
    logger,
    shards: 4,
    tickMs: 200,
    projectionRanges: { ranges: RANGES, onRange: (range, runs) => (runs ? projections.startRange(range) : projections.stopRange(range)) },
  });
  await runtime.start(standInNode(), `http://${id}:8080`);
  projections.events.on('*', (event) => {
    if (event.type === 'progress' && event.offset.kind === 'sequence' && !firstProgress.has(`${event.id.name}/${event.id.key}`)) firstProgress.set(`${event.id.name}/${event.id.key}`, event.offset.value);
    if (event.type !== 'progress') lastStatus.set(`${event.id.name}/${event.id.key}`, event.type === 'stopped' ? `stopped ${event.reason}` : event.type);
  });
  const node: TestNode = { id, projections, runtime, client, stopped: false };
  nodes.push(node);
  return node;
}

async function leave(node: TestNode): Promise<void> {
  if (node.stopped) return;
  node.stopped = true;
  await node.runtime.stop();
  await node.projections.close();
  node.client.disconnect();
}

const sequenceNrs = new Map<string, number>();
let round = 0;
let written = 0;

/** The same pipeline events into both journals: a few pipelines created per round, batches for every pipeline, some lifecycle events. */
async function writeRound(): Promise<void> {
  round++;
  for (const [i, id] of PIPELINES.entries()) {
    const events: { type: string; [field: string]: unknown }[] = [];
    const at = BASE + round * HOUR + i * 1_000;
    if (!sequenceNrs.has(id)) events.push({ type: 'PipelineCreated', at, definition: { name: `pipeline ${id}`, source: { type: 'generator' }, sink: { type: 'console' } } });
    if (round === 1) events.push({ type: 'PipelineStarted', at });
    // The first round puts more than BULK_MIN_BEHIND orderings in the journal: the ranges start with the bulk catch-up in SQL (over their slices).
    const batches = round === 1 ? 60 : 1 + ((i + round) % 4);
    for (let b = 0; b < batches; b++) events.push({ type: 'BatchProcessed', at: at + b, successCount: 10 + ((i * 7 + b + round) % 13), failureCount: (i + b) % 3 });
    if (round === 3 && i % 5 === 0) events.push({ type: 'PipelinePaused', at: at + 100 });
    const from = sequenceNrs.get(id) ?? 0;
    for (const persistence of [shared, reference]) {
      await persistence.journal.append(
        `pipeline-${id}`,
        events.map((payload) => ({ eventType: payload.type, payload, tags: ['pipeline-events'] })),
        { expectedSequenceNr: from, writerId: 'test' },
      );
    }
    sequenceNrs.set(id, from + events.length);
    written += events.length;
  }
}

const rows = async (table: string, of: string): Promise<unknown[]> => {
  const order = table === 'pipeline_status' ? 'pipeline_id' : 'pipeline_id, hour';
  return (await pool.query<Record<string, unknown>>(`SELECT * FROM "${of}".${table} ORDER BY ${order}`)).rows;
};

/** Both read models of the cluster equal the unsliced reference's, row for row. */
async function converged(): Promise<void> {
  await vi.waitFor(
    async () => {
      // The reference has applied everything written (else both could be equal while both lag), and the cluster's rows equal it.
      for (const info of await referenceProjections.list()) expect(info.eventsApplied, info.name).toBe(written);
      for (const table of ['pipeline_status', 'pipeline_metrics_hourly']) {
        const expected = await rows(table, refSchema);
        expect(expected.length).toBeGreaterThan(0);
        expect(await rows(table, schema)).toEqual(expected);
      }
    },
    { timeout: 30_000, interval: 200 },
  );
}

const live = () => nodes.filter((n) => !n.stopped);

/** Every range held, and run, by exactly the live node rendezvous names. */
async function spread(): Promise<void> {
  const ids = live().map((n) => n.id);
  await vi.waitFor(
    () => {
      for (const node of live()) {
        const expected = RANGES.filter((r) => ownerOf(projectionRangeLeaseName(r), ids) === node.id);
        expect(node.runtime.view().projectionRanges).toEqual(expected.map(projectionRangeLeaseName).sort());
        expect(node.projections.runningRanges()).toEqual(expected);
      }
    },
    { timeout: 15_000, interval: 50 },
  );
  for (const node of nodes.filter((n) => n.stopped)) expect(node.projections.runningRanges()).toEqual([]);
  const held = live().flatMap((n) => n.runtime.view().projectionRanges);
  expect(held.toSorted()).toEqual(RANGES.map(projectionRangeLeaseName).sort());
  for (const node of live()) expect(node.runtime.view().projectionRanges.length).toBeGreaterThan(0);
}

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 12 });
  for (const s of [schema, refSchema]) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  shared = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
  reference = await createPostgresPersistence({ pool, ownsPool: false, schema: refSchema, ensureSchema: true });
  const started = await startNodeProjections({ persistence: reference, logger, migrate: 'auto' });
  if (started === undefined) throw new Error('projections must run on Postgres');
  referenceProjections = started;
}, 60_000);

afterAll(async () => {
  for (const node of nodes) await leave(node);
  await referenceProjections?.close();
  await shared?.close();
  await reference?.close();
  for (const s of [schema, refSchema]) await pool?.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await pool?.end();
}, 60_000);

describe('projections split into slice ranges over the cluster', () => {
  it('spreads the ranges over the live nodes and produces exactly the rows of one unsliced projection, also after a node leaves', { timeout: 120_000 }, async () => {
    await writeRound();
    for (const id of NODES) await join(id);
    await spread();
    await writeRound();
    await converged();
    // The hourly metrics caught up in SQL: every range's first step went to the same journal position (the safe ordering), not to its own last event.
    const firstOf = (name: string) => RANGES.map((r) => firstProgress.get(`${name}/${sliceKey(r)}`));
    expect(new Set(firstOf('pipeline_metrics_hourly')).size).toBe(1);
    expect(firstOf('pipeline_metrics_hourly')[0]).toBeGreaterThan(2_000);
    expect(new Set(firstOf('pipeline_status')).size).toBeGreaterThan(1);

    // The status from any node covers every range: the events applied add up to what was written, nothing is behind.
    for (const node of live()) {
      for (const info of await node.projections.list()) {
        expect(info.key).toBe('slices');
        expect(info.state).toBe('running');
        expect(info.eventsApplied).toBe(written);
        expect(info.lag).toEqual({ kind: 'known', events: 0, seconds: 0 });
        expect(info.ranges?.map((r) => r.key)).toEqual(RANGES.map(sliceKey));
        expect(info.ranges?.filter((r) => r.here).map((r) => r.key)).toEqual(node.projections.runningRanges().map(sliceKey));
      }
    }

    // A node leaves: its ranges move to the others, which go on from the stored offsets.
    const leaving = nodes.find((n) => n.id === 'node-c') as TestNode;
    await leave(leaving);
    await spread();
    await writeRound();
    await converged();
    const [status] = await (live()[0] as TestNode).projections.list();
    expect(status?.eventsApplied).toBe(written);
  });

  it('pauses and resumes every range from one node, the ranges another node runs included', { timeout: 60_000 }, async () => {
    const [a, b] = live() as [TestNode, TestNode];
    expect(b.projections.runningRanges().length).toBeGreaterThan(0);
    const paused = await a.projections.pause('pipeline_metrics_hourly');
    expect(paused.ranges?.every((r) => r.state === 'paused')).toBe(true);
    expect(paused.state).toBe('paused');
    // The actors stop at their next pause check (within two seconds); what the ranges applied after that would show in the rows.
    await vi.waitFor(() => expect(RANGES.map((r) => lastStatus.get(`pipeline_metrics_hourly/${sliceKey(r)}`))).toEqual(RANGES.map(() => 'stopped paused')), { timeout: 10_000, interval: 50 });
    const before = await rows('pipeline_metrics_hourly', schema);
    await writeRound();
    await vi.waitFor(async () => expect(await rows('pipeline_status', schema)).toEqual(await rows('pipeline_status', refSchema)), { timeout: 30_000, interval: 200 });
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await rows('pipeline_metrics_hourly', schema)).toEqual(before);
    expect((await b.projections.get('pipeline_metrics_hourly'))?.lag).toMatchObject({ kind: 'known', events: expect.any(Number) as number });
    expect(((await b.projections.get('pipeline_metrics_hourly'))?.lag as { events: number }).events).toBeGreaterThan(0);

    const resumed = await a.projections.resume('pipeline_metrics_hourly');
    expect(resumed.ranges?.some((r) => r.state === 'paused')).toBe(false);
    await converged();
  });

  it('rebuilds from one node: identical rows swapped in, and every range goes on from the rebuild', { timeout: 90_000 }, async () => {
    const [a, b] = live() as [TestNode, TestNode];
    await a.projections.rebuild('pipeline_metrics_hourly');
    await vi.waitFor(async () => expect((await a.projections.get('pipeline_metrics_hourly'))?.rebuild?.state).toBe('done'), { timeout: 60_000, interval: 200 });
    await converged();
    const after = await b.projections.get('pipeline_metrics_hourly');
    expect(after?.state).toBe('running');
    expect(after?.eventsApplied).toBe(written);
    // Every range stands at the rebuild's offset, and reads on from it without applying anything twice.
    const offsets = await pool.query<{ offset: unknown }>(`SELECT "offset" FROM "${schema}".projection_offset WHERE projection_name = 'pipeline_metrics_hourly' AND projection_key LIKE 'slices-%'`);
    expect(offsets.rows).toHaveLength(RANGES.length);
    await writeRound();
    await converged();
    expect((await a.projections.get('pipeline_metrics_hourly'))?.eventsApplied).toBe(written);
  });

  it('a range still running on a node that lost it (its stop not done yet) cannot apply an event twice: the offset fences it', { timeout: 60_000 }, async () => {
    const [a, b] = live() as [TestNode, TestNode];
    const range = a.projections.runningRanges()[0];
    if (range === undefined) throw new Error('node-a runs no range');
    // node-b runs node-a's range too, as a node whose lease lapsed would until its actors stop.
    await b.projections.startRange(range);
    try {
      for (let i = 0; i < 2; i++) {
        await writeRound();
        await converged();
      }
    } finally {
      await b.projections.stopRange(range);
    }
    expect(b.projections.runningRanges()).not.toContainEqual(range);
    await writeRound();
    await converged();
  });

  it('a rebuild whose node died (its heartbeat stale): a live node lifts its pause of every range, both nodes report it abandoned; a rebuild alive elsewhere is refused', { timeout: 60_000 }, async () => {
    const [a, b] = live() as [TestNode, TestNode];
    const keys = RANGES.map(sliceKey);
    // What a coordinator killed mid-rebuild leaves in the shared store: every range paused by it, its shadow table, its marker, silent for a minute.
    await pool.query(`UPDATE "${schema}".projection_offset SET paused = true WHERE projection_name = 'pipeline_metrics_hourly' AND projection_key = ANY ($1::text[])`, [keys]);
    await pool.query(`CREATE TABLE "${schema}".pipeline_metrics_hourly__rebuild (LIKE "${schema}".pipeline_metrics_hourly INCLUDING ALL)`);
    await pool.query(
      `INSERT INTO "${schema}".projection_rebuild (projection_name, projection_key, owner, shadow_table, shadow_key, paused_ids, started_at, heartbeat_at)
       VALUES ('pipeline_metrics_hourly', 'slices', 'node-gone/1/0', 'pipeline_metrics_hourly__rebuild', 'slices__rebuild', $1::jsonb, now() - interval '2 minutes', now() - interval '1 minute')`,
      [JSON.stringify(keys.map((key) => ({ name: 'pipeline_metrics_hourly', key })))],
    );
    await writeRound();
    // The nodes look every 5 s: the pauses are lifted (waited for: the reference may not have the new events yet either, so
    // converging alone does not show it), then the ranges run again and catch up with the reference.
    await vi.waitFor(
      async () => {
        for (const node of [a, b]) {
          const info = await node.projections.get('pipeline_metrics_hourly');
          // (Not `state`: a range may still show a stored last error of an earlier test until its next save.)
          expect(info?.ranges?.filter((r) => r.state === 'paused').map((r) => r.key)).toEqual([]);
          expect(info?.rebuild).toMatchObject({ state: 'abandoned' });
          expect(info?.rebuild?.error).toContain('node-gone/1/0');
        }
      },
      { timeout: 20_000, interval: 250 },
    );
    await converged();
    const shadow = await pool.query(`SELECT to_regclass($1) AS t`, [`"${schema}".pipeline_metrics_hourly__rebuild`]);
    expect(shadow.rows[0]).toEqual({ t: null });

    // A rebuild alive on another node (a fresh heartbeat) refuses this one.
    await pool.query(`UPDATE "${schema}".projection_rebuild SET owner = 'node-busy/2/0', abandoned_at = NULL, heartbeat_at = now() + interval '1 minute', paused_ids = '[]'::jsonb WHERE projection_name = 'pipeline_metrics_hourly'`);
    const refused: unknown = await b.projections.rebuild('pipeline_metrics_hourly').catch((e: unknown) => e);
    expect(isDataflowError(refused, 'projection/rebuild-in-progress')).toBe(true);
    await pool.query(`DELETE FROM "${schema}".projection_rebuild WHERE projection_name = 'pipeline_metrics_hourly'`);
  });

  it('refuses a node that would split the projections into another number of ranges', { timeout: 30_000 }, async () => {
    const client = new Redis(serviceSettings().redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 400 });
    client.on('error', () => undefined);
    try {
      if (client.status !== 'ready') await new Promise<void>((resolve) => client.once('ready', () => resolve()));
      const started: string[] = [];
      const odd = new ClusterRuntime({
        redis: new ClusterRedis(client, { keyPrefix, nodeId: 'node-odd', ttlMs: TTL_MS }),
        logger,
        tickMs: 200,
        projectionRanges: { ranges: sliceRanges(4), onRange: (range) => Promise.resolve(void started.push(sliceKey(range))) },
      });
      const error: unknown = await odd.start(standInNode(), 'http://node-odd:8080').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isDataflowError(error, 'node/invalid-config')).toBe(true);
      expect((error as NodeConfigError).setting).toBe('cluster.projectionRanges');
      expect((error as Error).message).toMatch(/is 4, but live member node-\w splits the projections into 8 ranges/);
      expect(started).toEqual([]);
      expect(live()[0]?.runtime.view().members.map((m) => m.nodeId)).not.toContain('node-odd');
    } finally {
      client.disconnect();
    }
  });
});
