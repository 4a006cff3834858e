/**
 * A rebuild that dies after it paused the live projection, on the real
 * Postgres journal and on embedded PGlite: its marker's heartbeat goes stale,
 * and the recovery lifts the rebuild's pause (not a pause an operator set
 * before), drops the shadow table and the shadow's offset row, and keeps the
 * marker as the record of an abandoned rebuild; the read model then runs on
 * and ends equal to an incremental build. A second rebuild is refused while
 * the marker is fresh. On Postgres the rebuild runs in a child process killed
 * with SIGKILL; on both stores an in-process rebuild whose heartbeat stops
 * (a stalled process) is recovered and then ends without touching the pauses.
 *
 * An instance whose stored offset lies beyond the journal (`ahead`) holds a
 * rebuild in its last wait, after the pause: the death lands there without a
 * race against the swap.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createActorSystem, isDataflowError, type NewEvent } from '@dataflow/core';
import { serviceSettings } from '@dataflow/test-env';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProjectionOffsetStore, type ProjectionId } from '../offset-store/projection-offset-store.js';
import { pipelineMetricsHourlyProjection } from '../read-models/pipeline-read-models.js';
import { spawnProjection } from '../runner/projection-actor.js';
import { runProjection } from '../runner/projection-runner.js';
import { migrateProjections } from '../schema/projections-schema.js';
import { readRebuildMarker, recoverAbandonedRebuilds, RebuildInProgressError } from './rebuild-marker.js';
import { startRebuild, type RebuildOptions } from './rebuild.js';
import type { RebuildChildConfig } from './rebuild-child.test.js';
import { sqlTestStores, type SqlTestStore } from '../testing/sql-test-stores.test.js';

const child = fileURLToPath(new URL('./rebuild-child.test.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');
const url = serviceSettings().postgresUrl;
const NAME = 'pipeline_metrics_hourly';
const LIVE: ProjectionId = { name: NAME, key: 'default' };
const HELD: ProjectionId = { name: NAME, key: 'held' };
const AHEAD: ProjectionId = { name: NAME, key: 'ahead' };

type Store = SqlTestStore;

const stores = sqlTestStores(import.meta.url, { poolMax: 6 });

const batch = (i: number): NewEvent => ({
  eventType: 'BatchProcessed',
  payload: { type: 'BatchProcessed', at: Date.UTC(2026, 0, 1) + i * 600_000, batchId: `b${i}`, successCount: 10 + (i % 7), failureCount: i % 5 === 0 ? 2 : 0, deadLetterCount: 0, processingMs: 3 },
  tags: ['pipeline-events'],
});

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const proc of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
});

describe.each(Object.keys(stores))('an abandoned rebuild on %s', (storeName) => {
  let db: Store;
  let store: ProjectionOffsetStore;
  let appended = 0;
  const seq = [0, 0, 0];
  const append = async (count: number): Promise<void> => {
    for (let i = appended; i < appended + count; i++) {
      const p = i % 3;
      await db.persistence.journal.append(`pipeline-p${p}`, [batch(i)], { expectedSequenceNr: seq[p] ?? 0, writerId: 'test' });
      seq[p] = (seq[p] ?? 0) + 1;
    }
    appended += count;
  };
  const rows = (table: string) => db.executor.query(`SELECT * FROM "${db.schema}".${table} ORDER BY pipeline_id, hour`);
  const tableExists = async (table: string) => (await db.executor.query<{ t: string | null }>(`SELECT to_regclass($1) AS t`, [`"${db.schema}".${table}`]))[0]?.t != null;
  const live = () => pipelineMetricsHourlyProjection({ schema: db.schema, groupSize: 50, groupWithinMs: 20 });
  /** Runs the live projection until it has applied every event appended, then stops it. */
  const runLive = async (): Promise<void> => {
    const system = createActorSystem({ name: `rebuild-recovery-${storeName}` });
    spawnProjection(system, live(), { queries: db.persistence.queries, store, executor: db.executor, pauseCheckMs: 100 });
    try {
      await until('the live projection to catch up', async () => (await store.get(LIVE)).eventsApplied === appended);
    } finally {
      await system.terminate();
    }
  };
  /** The rows an incremental build from the start has, in a table of their own. */
  const incremental = async (table: string): Promise<unknown[]> => {
    await db.executor.query(`CREATE TABLE "${db.schema}".${table} (LIKE "${db.schema}".pipeline_metrics_hourly INCLUDING ALL)`);
    const projection = pipelineMetricsHourlyProjection({ schema: db.schema, table, key: table, groupSize: 50, groupWithinMs: 20 });
    const controller = new AbortController();
    const run = runProjection(projection, { queries: db.persistence.queries, store, executor: db.executor }, controller.signal);
    await until('the incremental build', async () => (await store.get(projection.id)).eventsApplied === appended);
    controller.abort();
    await run;
    return rows(table);
  };
  /** An operator's pause of `held`, and `ahead` beyond the journal (see the module comment). */
  const prepare = async (): Promise<void> => {
    await store.setPaused(HELD, true);
    await store.setOffset(AHEAD, { kind: 'sequence', value: 1_000_000_000_000 });
    await store.setPaused(AHEAD, false);
  };
  const rebuildOptions = (): RebuildOptions => ({
    queries: db.persistence.queries,
    store,
    executor: db.executor,
    schema: db.schema,
    table: 'pipeline_metrics_hourly',
    live: live(),
    liveRanges: [LIVE, HELD, AHEAD],
    shadow: (table, key) => pipelineMetricsHourlyProjection({ schema: db.schema, table, key, groupSize: 50, groupWithinMs: 20 }),
  });
  /** After the recovery: the rebuild's pauses lifted, the operator's kept, no shadow, the marker a record. */
  const expectRecovered = async (owner: string): Promise<void> => {
    expect((await store.get(LIVE)).paused).toBe(false);
    expect((await store.get(AHEAD)).paused).toBe(false);
    expect((await store.get(HELD)).paused).toBe(true);
    expect(await tableExists('pipeline_metrics_hourly__rebuild')).toBe(false);
    expect((await store.list()).map((r) => r.key)).not.toContain('default__rebuild');
    const marker = await readRebuildMarker(db.executor, db.schema, NAME);
    expect(marker?.owner).toBe(owner);
    expect(marker?.abandonedAt).toBeInstanceOf(Date);
    expect(marker?.swappedAt).toBeUndefined();
  };

  beforeAll(async () => {
    db = await (stores[storeName] as () => Promise<Store>)();
    await migrateProjections(db.executor, db.schema);
    store = new ProjectionOffsetStore(db.executor, db.schema);
    await append(300);
    await runLive();
  }, 120_000);

  afterAll(async () => {
    await db?.close();
  }, 60_000);

  it('refuses a second rebuild while the first one runs, and takes it after the first ends', { timeout: 120_000 }, async () => {
    await prepare();
    const before = await rows('pipeline_metrics_hourly');
    const stop = new AbortController();
    const first = await startRebuild({ ...rebuildOptions(), signal: stop.signal });
    await until('the first rebuild to pause the live projection', async () => (await store.get(LIVE)).paused);
    const second = await startRebuild({ ...rebuildOptions(), liveRanges: [LIVE] }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(second).toBeInstanceOf(RebuildInProgressError);
    expect(isDataflowError(second, 'projection/rebuild-in-progress')).toBe(true);
    expect((second as RebuildInProgressError).marker.owner).toBe(first.owner);
    // The first one waits on `ahead`: stop it (a stop, not a death): it lifts its own pauses, drops its shadow and removes its marker.
    stop.abort();
    await expect(first.done).rejects.toThrow(/stopped before the swap/);
    expect(await readRebuildMarker(db.executor, db.schema, NAME)).toBeUndefined();
    expect((await store.get(LIVE)).paused).toBe(false);
    expect((await store.get(HELD)).paused).toBe(true);
    expect(await tableExists('pipeline_metrics_hourly__rebuild')).toBe(false);
    expect(await rows('pipeline_metrics_hourly')).toEqual(before);
    const third = await startRebuild({ ...rebuildOptions(), liveRanges: [LIVE] });
    await expect(third.done).resolves.toBe(appended);
    expect((await store.get(LIVE)).paused).toBe(false);
    expect(await rows('pipeline_metrics_hourly')).toEqual(before);
  });

  it('a stalled rebuild whose heartbeat went stale is recovered, and then ends without touching the pauses', { timeout: 120_000 }, async () => {
    await prepare();
    // A beat every 2 s against a bound of 200 ms: the marker goes stale between beats, as if the process had stalled.
    const stalled = await startRebuild({ ...rebuildOptions(), heartbeatMs: 2_000 });
    await until('the rebuild to pause the live projection', async () => (await store.get(LIVE)).paused);
    await until('the stalled rebuild to be recovered', async () => (await recoverAbandonedRebuilds(db.executor, db.schema, { staleMs: 200 })).length === 1);
    await expectRecovered(stalled.owner);
    // Paused again (as by the next rebuild): the stalled one's next beat finds its marker recovered, and it stops without a swap and leaves the pauses alone.
    await store.setPaused(LIVE, true);
    await expect(stalled.done).rejects.toSatisfy((error) => isDataflowError(error, 'projection/rebuild-abandoned'));
    expect((await store.get(LIVE)).paused).toBe(true);
    await store.setPaused(LIVE, false);

    await append(30);
    await runLive();
    expect(await rows('pipeline_metrics_hourly')).toEqual(await incremental(`reference_${storeName}_stalled`));
  });

  // A process of its own needs a server: PGlite lives inside one process.
  if (storeName === 'postgres') it('a rebuild process killed with SIGKILL after the pause: refused while fresh, then recovered; the read model runs on and equals an incremental build', { timeout: 180_000 }, async () => {
    await prepare();
    const config: RebuildChildConfig = { url, schema: db.schema, liveKeys: [LIVE.key, HELD.key, AHEAD.key] };
    const proc = spawn(process.execPath, ['--conditions=@dataflow/source', '--import', tsx, child, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(proc);
    let stderr = '';
    let stdout = '';
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => proc.once('exit', (code, signal) => resolve(signal ?? code)));
    await until(`the rebuild process to pause the live projection (stderr: ${stderr.slice(-500)})`, async () => (await store.get(LIVE)).paused || proc.exitCode !== null);
    proc.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(stdout).not.toContain('done');

    // What the dead rebuild left: the live projection paused, the shadow table, a marker naming what it paused.
    const marker = await readRebuildMarker(db.executor, db.schema, NAME);
    expect(marker?.pausedIds).toEqual([LIVE, AHEAD]);
    expect(marker?.abandonedAt).toBeUndefined();
    expect((await store.get(LIVE)).paused).toBe(true);
    expect(await tableExists('pipeline_metrics_hourly__rebuild')).toBe(true);
    // Fresh still (30 s by default): another rebuild is refused, nothing recovered.
    await expect(startRebuild({ ...rebuildOptions(), liveRanges: [LIVE] })).rejects.toBeInstanceOf(RebuildInProgressError);
    expect(await recoverAbandonedRebuilds(db.executor, db.schema)).toEqual([]);

    await append(30);
    await until('the dead rebuild to be recovered', async () => (await recoverAbandonedRebuilds(db.executor, db.schema, { staleMs: 1_000 })).length === 1);
    await expectRecovered(marker?.owner ?? '');
    await runLive();
    expect(await rows('pipeline_metrics_hourly')).toEqual(await incremental('reference_killed'));
  });
});
