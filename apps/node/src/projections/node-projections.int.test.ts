/**
 * The node's read models on the embedded store (PGlite in a temporary data
 * directory) fed by real pipelines: rows appear, pause and resume act on the
 * projection, a rebuild swaps in identical rows, an unknown name is refused,
 * a rebuild abandoned by a node that died is undone at start (and reported),
 * and a rebuild while another node's is alive is refused (409).
 */
import { isDataflowError } from '@dataflow/core';
import type { SqlExecutor } from '@dataflow/persistence';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { localConnectorFactory } from '../node/connector-factory.js';
import { errorAnswer } from '../api/api-errors.js';
import { startNode, type DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { sliceRanges } from '@dataflow/projections';
import { startNodeProjections, type NodeProjections } from './node-projections.js';

const quiet: NodeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const sink = new Writable({ write: (_chunk, _encoding, done) => done() });

let dir: string;
let node: DataflowNode;
let projections: NodeProjections;
let db: SqlExecutor;

const definition = (name: string, count: number) => ({
  name,
  source: { type: 'generator', count, fields: { id: { kind: 'sequence' } } },
  sink: { type: 'console' },
  batch: { size: 25, maxWaitMs: 10 },
});

const statusRows = async () =>
  (await db.query<{ pipeline_id: string; status: string; total_records: string | number }>('SELECT pipeline_id, status, total_records FROM dataflow.pipeline_status ORDER BY pipeline_id')).map((r) => ({
    ...r,
    total_records: Number(r.total_records),
  }));
const hourlyRows = () => db.query('SELECT * FROM dataflow.pipeline_metrics_hourly ORDER BY pipeline_id, hour');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-node-projections-'));
  node = await startNode({ store: { type: 'pglite', dataDir: dir }, logger: quiet, connectors: localConnectorFactory({ stream: sink }), statusReportIntervalMs: 0 });
  const started = await startNodeProjections({ persistence: node.persistence, logger: quiet, migrate: 'auto' });
  if (started === undefined) throw new Error('the embedded store has SQL: projections must start');
  projections = started;
  db = (node.persistence as unknown as { executor: SqlExecutor }).executor;
  for (const [id, count] of [['alpha', 200], ['beta', 75]] as const) {
    await node.createPipeline(definition(id, count), { pipelineId: id });
    await node.start(id);
  }
}, 120_000);

afterAll(async () => {
  await projections?.close();
  await node?.shutdown();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('the node read models', () => {
  it('keeps pipeline_status and pipeline_metrics_hourly from the pipelines events', { timeout: 60_000 }, async () => {
    await vi.waitFor(
      async () => {
        expect(await statusRows()).toEqual([
          { pipeline_id: 'alpha', status: 'stopped', total_records: 200 },
          { pipeline_id: 'beta', status: 'stopped', total_records: 75 },
        ]);
      },
      { timeout: 30_000, interval: 100 },
    );
    // The two projections read the same events independently: the hourly one may still be a group behind.
    await vi.waitFor(
      async () => {
        const hourly = await hourlyRows();
        expect(hourly.map((r) => [(r as { pipeline_id: string }).pipeline_id, Number((r as { records_processed: string }).records_processed)])).toEqual([
          ['alpha', 200],
          ['beta', 75],
        ]);
        const listed = await projections.list();
        expect(listed.map((p) => [p.name, p.state, p.table])).toEqual([
          ['pipeline_status', 'running', 'pipeline_status'],
          ['pipeline_metrics_hourly', 'running', 'pipeline_metrics_hourly'],
        ]);
        expect(listed.every((p) => p.eventsApplied > 0 && p.lag.kind === 'known' && p.lag.events === 0)).toBe(true);
      },
      { timeout: 30_000, interval: 100 },
    );
  });

  it('pauses and resumes a projection: events of a paused one wait, then arrive', { timeout: 60_000 }, async () => {
    expect((await projections.pause('pipeline_status')).state).toBe('paused');
    await new Promise((r) => setTimeout(r, 1_500)); // past the runner's pause check
    await node.createPipeline(definition('gamma', 50), { pipelineId: 'gamma' });
    await node.start('gamma');
    await vi.waitFor(async () => expect((await hourlyRows()).length).toBe(3), { timeout: 30_000, interval: 100 });
    expect((await statusRows()).map((r) => r.pipeline_id)).toEqual(['alpha', 'beta']);
    const paused = await projections.get('pipeline_status');
    expect(paused?.lag.kind === 'known' && paused.lag.events > 0).toBe(true);
    expect((await projections.resume('pipeline_status')).state).toBe('running');
    await vi.waitFor(async () => expect((await statusRows()).map((r) => [r.pipeline_id, r.total_records])).toContainEqual(['gamma', 50]), { timeout: 30_000, interval: 100 });
  });

  it('rebuilds a read model into a shadow table and swaps in the same rows', { timeout: 90_000 }, async () => {
    await vi.waitFor(async () => expect((await projections.get('pipeline_metrics_hourly'))?.lag).toMatchObject({ kind: 'known', events: 0 }), { timeout: 30_000, interval: 100 });
    const before = await hourlyRows();
    const started = await projections.rebuild('pipeline_metrics_hourly');
    expect(started.state).toBe('rebuilding');
    const done = await vi.waitFor(
      async () => {
        const info = await projections.get('pipeline_metrics_hourly');
        if (info?.rebuild?.state !== 'done') throw new Error(`rebuild ${JSON.stringify(info?.rebuild)}`);
        return info;
      },
      { timeout: 60_000, interval: 200 },
    );
    expect(done.rebuild).toMatchObject({ state: 'done' });
    expect(done.rebuild?.done).toBe(done.rebuild?.total);
    expect(await hourlyRows()).toEqual(before);
    const tables = await db.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'dataflow' AND table_name LIKE 'pipeline_metrics_hourly%'");
    expect(tables.map((t) => t.table_name)).toEqual(['pipeline_metrics_hourly']);
  });

  it('refuses an unknown projection naming the known ones', async () => {
    const error: unknown = await projections.pause('__proto__').catch((e: unknown) => e);
    expect(isDataflowError(error, 'node/projection-not-found')).toBe(true);
    expect((error as Error).message).toContain('pipeline_status, pipeline_metrics_hourly');
  });

  it('goes from one instance to slice ranges and back without counting twice; a split it cannot take over waits for a rebuild', { timeout: 120_000 }, async () => {
    const hourlyTotals = async () =>
      (await hourlyRows()).map((r) => [(r as { pipeline_id: string }).pipeline_id, Number((r as { records_processed: string }).records_processed)]);
    const keysOf = async (name: string) =>
      (await db.query<{ projection_key: string }>('SELECT projection_key FROM dataflow.projection_offset WHERE projection_name = $1 ORDER BY projection_key', [name])).map((r) => r.projection_key)
        .filter((key) => /^(default|slices-\d+-\d+)$/.test(key)); // a rebuild's shadow key is not part of a split
    await vi.waitFor(async () => expect((await projections.get('pipeline_metrics_hourly'))?.lag).toMatchObject({ kind: 'known', events: 0 }), { timeout: 30_000, interval: 100 });
    const before = await hourlyTotals();
    expect(before.length).toBeGreaterThanOrEqual(2);
    const after = [...before, ['delta', 50]].sort((a, b) => String(a[0]).localeCompare(String(b[0])));

    // The node joins a cluster: four ranges take over the one instance's offset.
    await projections.close();
    const ranges = sliceRanges(4);
    const sliced = await startNodeProjections({ persistence: node.persistence, logger: quiet, migrate: 'check', sliceRanges: ranges, resumeCheckMs: 200 });
    if (sliced === undefined) throw new Error('projections must start');
    projections = sliced;
    for (const range of ranges) await sliced.startRange(range);
    await node.createPipeline(definition('delta', 50), { pipelineId: 'delta' });
    await node.start('delta');
    await vi.waitFor(async () => expect(await hourlyTotals()).toEqual(after), { timeout: 30_000, interval: 100 });
    await vi.waitFor(async () => expect((await sliced.get('pipeline_metrics_hourly'))?.lag).toMatchObject({ kind: 'known', events: 0 }), { timeout: 30_000, interval: 100 });
    expect(await keysOf('pipeline_metrics_hourly')).toEqual(ranges.map((r) => `slices-${r.min}-${r.max}`).sort());

    // One range stands behind the others: back on one instance, no single offset is right; nothing runs (nothing counted twice) until a rebuild.
    await sliced.close();
    await db.query(`UPDATE dataflow.projection_offset SET "offset" = '{"kind":"sequence","value":1}'::jsonb WHERE projection_name = 'pipeline_metrics_hourly' AND projection_key = 'slices-0-255'`);
    const single = await startNodeProjections({ persistence: node.persistence, logger: quiet, migrate: 'check', resumeCheckMs: 200 });
    if (single === undefined) throw new Error('projections must start');
    projections = single;
    const waiting = await single.get('pipeline_metrics_hourly');
    expect(waiting?.state).toBe('failing');
    expect(waiting?.lastError).toMatch(/another split .*slices-0-255.*rebuild/);
    expect((await single.get('pipeline_status'))?.state).toBe('running'); // its ranges stood at one offset: taken over
    expect(await keysOf('pipeline_status')).toEqual(['default']);
    await new Promise((r) => setTimeout(r, 600));
    expect(await hourlyTotals()).toEqual(after);
    await single.rebuild('pipeline_metrics_hourly');
    await vi.waitFor(async () => expect((await single.get('pipeline_metrics_hourly'))?.rebuild?.state).toBe('done'), { timeout: 60_000, interval: 200 });
    expect(await keysOf('pipeline_metrics_hourly')).toEqual(['default']);
    expect(await hourlyTotals()).toEqual(after);
    await vi.waitFor(async () => expect((await single.get('pipeline_metrics_hourly'))?.state).toBe('running'), { timeout: 10_000, interval: 100 });
  });

  it("undoes a rebuild whose node died at start, reports it, and refuses a rebuild while another node's is alive", { timeout: 90_000 }, async () => {
    await projections.close();
    // What a node killed mid-rebuild leaves: pipeline_status paused by the rebuild, its shadow table, a marker whose heartbeat stopped an hour ago.
    await db.query(`UPDATE dataflow.projection_offset SET paused = true WHERE projection_name = 'pipeline_status' AND projection_key = 'default'`);
    await db.query('CREATE TABLE dataflow.pipeline_status__rebuild (LIKE dataflow.pipeline_status INCLUDING ALL)');
    await db.query(
      `INSERT INTO dataflow.projection_rebuild (projection_name, projection_key, owner, shadow_table, shadow_key, paused_ids, started_at, heartbeat_at)
       VALUES ('pipeline_status', 'default', 'dead-node/1/0', 'pipeline_status__rebuild', 'default__rebuild', '[{"name":"pipeline_status","key":"default"}]', now() - interval '2 hours', now() - interval '1 hour')`,
    );
    // And another node rebuilding pipeline_metrics_hourly right now.
    await db.query(
      `INSERT INTO dataflow.projection_rebuild (projection_name, projection_key, owner, shadow_table, shadow_key) VALUES ('pipeline_metrics_hourly', 'default', 'other-node/2/0', 'pipeline_metrics_hourly__rebuild', 'default__rebuild')`,
    );
    const warnings: string[] = [];
    const logger: NodeLogger = { ...quiet, warn: (message) => void warnings.push(message) };
    const restarted = await startNodeProjections({ persistence: node.persistence, logger, migrate: 'check' });
    if (restarted === undefined) throw new Error('projections must start');
    projections = restarted;

    expect(warnings.filter((w) => w.includes('abandoned'))).toEqual([expect.stringMatching(/^projection pipeline_status: the rebuild begun at \S+ by dead-node\/1\/0 was abandoned .*start the rebuild again/)]);
    const status = await restarted.get('pipeline_status');
    expect(status?.state).toBe('running');
    expect(status?.rebuild?.state).toBe('abandoned');
    expect(status?.rebuild?.error).toMatch(/^the rebuild begun at \S+ by dead-node\/1\/0 was abandoned .*start the rebuild again/);
    const tables = await db.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'dataflow' AND table_name LIKE 'pipeline_status%'");
    expect(tables.map((t) => t.table_name)).toEqual(['pipeline_status']);
    await node.createPipeline(definition('epsilon', 40), { pipelineId: 'epsilon' });
    await node.start('epsilon');
    await vi.waitFor(async () => expect((await statusRows()).map((r) => [r.pipeline_id, r.total_records])).toContainEqual(['epsilon', 40]), { timeout: 30_000, interval: 100 });

    // The other node's rebuild is alive (fresh heartbeat): refused, as a 409.
    const refused: unknown = await restarted.rebuild('pipeline_metrics_hourly').catch((e: unknown) => e);
    expect(isDataflowError(refused, 'projection/rebuild-in-progress')).toBe(true);
    expect((refused as Error).message).toContain('other-node/2/0');
    expect(errorAnswer(refused).status).toBe(409);
    expect((await restarted.get('pipeline_metrics_hourly'))?.rebuild).toBeNull();
    await db.query(`DELETE FROM dataflow.projection_rebuild WHERE projection_name = 'pipeline_metrics_hourly'`);

    // Started again, the rebuild replaces the record of the abandoned one.
    await restarted.rebuild('pipeline_status');
    await vi.waitFor(async () => expect((await restarted.get('pipeline_status'))?.rebuild?.state).toBe('done'), { timeout: 60_000, interval: 200 });
    expect((await statusRows()).map((r) => [r.pipeline_id, r.total_records])).toContainEqual(['epsilon', 40]);
  });
});
