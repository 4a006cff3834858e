/**
 * The pipeline read models against events written by real pipelines (pipeline
 * actors on the real Postgres journal and on embedded PGlite): the projections
 * run as supervised actors, live, while the pipelines run; afterwards
 * `pipeline_status` equals each pipeline's own state and
 * `pipeline_metrics_hourly` adds up to its metrics. A projection stopped
 * mid-stream and started again applies nothing twice, and a cleared offset
 * rebuilds identical rows. A parallel pipeline's tasks (real pipeline
 * entities `orders.1`, ...) count towards the pipeline's `pipeline_status`
 * row, live, rebuilt and over slice ranges alike, and `PipelineStatusView`
 * reads it with its lag.
 */
import {
  askWithStatus,
  createActorSystem,
  pipelineActor,
  pipelineTaskOf,
  type ActorRef,
  type PipelineCommand,
  type PipelineReply,
  type PipelineResult,
  type PipelineState,
  type ReadJournal,
  type Serializer,
  SerializerRegistry,
  type Sink,
  type Source,
  type SourceRecord,
} from '@dataflow/core';
import { createSqlPersistence } from '@dataflow/persistence';
import { afterAll, describe, expect, it } from 'vitest';
import { ProjectionManagement } from '../offset-store/projection-management.js';
import { ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { spawnProjection } from '../runner/projection-actor.js';
import { runProjection, type ProjectionStatusEvent } from '../runner/projection-runner.js';
import { sqlJournalOf } from '../runner/sql-journal.js';
import { migrateProjections } from '../schema/projections-schema.js';
import { sliceForPersistenceId, sliceKey, SLICE_COUNT, type SliceRange } from '../slices/slices.js';
import { sqlTestStores, type SqlTestStore } from '../testing/sql-test-stores.test.js';
import { pipelineMetricsHourlyProjection, pipelineStatusProjection } from './pipeline-read-models.js';
import { PipelineStatusView } from './pipeline-status-view.js';

/** A finite source of `count` records; every 7th carries JSON the pipeline's json-parse stage rejects (skipped: a failure). */
class CountingSource implements Source {
  readonly type = 'counting';
  #next = 0;
  constructor(private readonly count: number) {}
  open(context: { checkpoint: unknown }): Promise<void> {
    this.#next = typeof context.checkpoint === 'number' ? context.checkpoint : 0;
    return Promise.resolve();
  }
  poll(maxRecords: number): Promise<{ records: SourceRecord[]; offset: number; done: boolean }> {
    const records: SourceRecord[] = [];
    while (records.length < maxRecords && this.#next < this.count) {
      const n = this.#next++;
      records.push({ ok: true, value: { n, body: n % 7 === 3 ? '{broken' : JSON.stringify({ v: n }) } });
    }
    return Promise.resolve({ records, offset: this.#next, done: this.#next >= this.count });
  }
  ack(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class CollectingSink implements Sink {
  readonly type = 'collecting';
  readonly written: unknown[] = [];
  open(): Promise<void> {
    return Promise.resolve();
  }
  write(batch: { records: readonly unknown[] }): Promise<Record<string, never>> {
    this.written.push(...batch.records);
    return Promise.resolve({});
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

type Store = SqlTestStore;

const { postgres, pglite } = sqlTestStores(import.meta.url, { poolMax: 6 });

const stores: Store[] = [];
afterAll(async () => {
  for (const store of stores) await store.close();
}, 60_000);

async function runPipelines(store: Store, ids: readonly string[], name: (pipelineId: string) => string = (pipelineId) => `read-model-${pipelineId}`): Promise<PipelineState[]> {
  const system = createActorSystem({ name: `pipelines-${store.name}` });
  try {
    return await Promise.all(
      ids.map(async (pipelineId, i) => {
        let resolveEnd: (state: PipelineState) => void = () => undefined;
        let last = 'not created';
        // Bounded, naming the state it stayed in: a pipeline that never ends fails here, not as the test's timeout (seen once in CI).
        const ended = new Promise<PipelineState>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`pipeline ${pipelineId} did not end within 60 s; its last state: ${last}`)), 60_000);
          resolveEnd = (state) => {
            clearTimeout(timer);
            resolve(state);
          };
        });
        const pipeline = system.spawn(
          pipelineActor({
            pipelineId,
            persistence: store.persistence,
            connectors: { createSource: () => new CountingSource(300 + 150 * i), createSink: () => new CollectingSink(), createDeadLetterTarget: () => { throw new Error('no dead letters here'); } },
            onStateChange: (state) => {
              last = state.status === 'empty' ? 'empty' : `${state.status}, ${state.metrics.recordsProcessed} records`;
              if (state.status === 'stopped' || state.status === 'failed') resolveEnd(state);
            },
          }),
          `pipeline-${pipelineId}`,
        );
        const call = (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => askWithStatus<PipelineCommand, PipelineResult>(pipeline, build, { timeoutMs: 30_000 });
        const definition = {
          name: name(pipelineId),
          source: { type: 'counting' },
          transforms: [{ type: 'json-parse', field: 'body', target: 'parsed', onError: 'skip' }],
          sink: { type: 'collecting' },
          batch: { size: 40, maxWaitMs: 20 },
        };
        // Observed even when create or start throws first (no unhandled rejection 60 s later); awaited below.
        ended.catch(() => undefined);
        await call((replyTo) => ({ type: 'create', definition, replyTo }));
        await call((replyTo) => ({ type: 'start', replyTo }));
        return ended;
      }),
    );
  } finally {
    await system.terminate();
  }
}

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Number of events of the tag in the journal (what a caught-up projection has applied). */
async function tagCount(queries: ReadJournal): Promise<number> {
  let n = 0;
  for await (const _ of queries.eventsByTag('pipeline-events')) n++;
  return n;
}

describe.each([
  ['postgres', postgres],
  ['pglite', pglite],
] as const)('pipeline read models on %s', (_name, open) => {
  it('match the states of real pipelines, survive a stop mid-stream without double counting, and rebuild to identical rows', { timeout: 120_000 }, async () => {
    const store = await open();
    stores.push(store);
    await migrateProjections(store.executor, store.schema);
    const offsets = new ProjectionOffsetStore(store.executor, store.schema);
    const events: ProjectionStatusEvent[] = [];
    const deps = { queries: store.persistence.queries, store: offsets, executor: store.executor, pauseCheckMs: 100, onStatus: (event: ProjectionStatusEvent) => events.push(event) };
    const status = pipelineStatusProjection({ schema: store.schema, groupSize: 50, groupWithinMs: 20 });
    const metrics = pipelineMetricsHourlyProjection({ schema: store.schema, groupSize: 50, groupWithinMs: 20 });
    const system = createActorSystem({ name: `projections-${store.name}` });
    const first = spawnProjection(system, status, deps);
    const metricsRef = spawnProjection(system, metrics, deps);

    // Stop the status projection while the pipelines run, then start it again: it resumes from its offset.
    const running = runPipelines(store, ['orders', 'clicks', 'metrics']);
    await until('the status projection to make progress', async () => (await offsets.get(status.id)).eventsApplied > 20);
    await system.stop(first);
    spawnProjection(system, status, deps);
    const states = await running;
    const total = await tagCount(store.persistence.queries);
    await until('both projections to catch up', async () => (await offsets.get(status.id)).eventsApplied === total && (await offsets.get(metrics.id)).eventsApplied === total);

    const rows = await store.executor.query<{ pipeline_id: string; pipeline_name: string; status: string; source_type: string; sink_type: string; total_records: string; total_batches: string; total_failures: string }>(
      `SELECT pipeline_id, pipeline_name, status, source_type, sink_type, total_records, total_batches, total_failures FROM "${store.schema}".pipeline_status ORDER BY pipeline_id`,
    );
    const expected = states
      .map((s) => {
        if (s.status === 'empty') throw new Error('a pipeline ended empty');
        return {
          pipeline_id: s.pipelineId,
          pipeline_name: `read-model-${s.pipelineId}`,
          status: s.status,
          source_type: 'counting',
          sink_type: 'collecting',
          total_records: String(s.metrics.recordsProcessed),
          total_batches: String(s.metrics.batches),
          total_failures: String(s.metrics.recordsFailed),
        };
      })
      .sort((a, b) => (a.pipeline_id < b.pipeline_id ? -1 : 1));
    // pg returns bigint as text, PGlite as a number.
    expect(rows.map((r) => ({ ...r, total_records: String(r.total_records), total_batches: String(r.total_batches), total_failures: String(r.total_failures) }))).toEqual(expected);
    expect(expected.every((r) => Number(r.total_failures) > 0 && r.status === 'stopped')).toBe(true);

    const hourly = await store.executor.query<{ pipeline_id: string; records: string; batches: string; failures: string; weighted: number; rate_ok: boolean }>(
      `SELECT pipeline_id, sum(records_processed) AS records, sum(batches) AS batches, sum(failures) AS failures,
              sum(avg_batch_size * batches) AS weighted,
              bool_and(abs(error_rate - failures::double precision / nullif(records_processed + failures, 0)) < 1e-9) AS rate_ok
         FROM "${store.schema}".pipeline_metrics_hourly GROUP BY pipeline_id ORDER BY pipeline_id`,
    );
    expect(hourly.map((h) => [h.pipeline_id, Number(h.records), Number(h.batches), Number(h.failures), Math.round(Number(h.weighted)), h.rate_ok])).toEqual(
      expected.map((e) => [e.pipeline_id, Number(e.total_records), Number(e.total_batches), Number(e.total_failures), Number(e.total_records) + Number(e.total_failures), true]),
    );

    // Rebuild: clear the offset and the table, replay from the start: the same rows.
    const before = await store.executor.query(`SELECT * FROM "${store.schema}".pipeline_metrics_hourly ORDER BY pipeline_id, hour`);
    await offsets.setPaused(metrics.id, true);
    await until('the metrics projection to pause', () => Promise.resolve(events.some((e) => e.type === 'stopped' && e.reason === 'paused' && e.id.name === metrics.id.name)));
    await store.executor.transaction(async (tx) => {
      await tx.query(`DELETE FROM "${store.schema}".pipeline_metrics_hourly`);
      await offsets.clearOffset(metrics.id, tx);
    });
    await offsets.setPaused(metrics.id, false);
    metricsRef.tell({ type: 'start' });
    await until('the rebuild to finish', async () => (await offsets.get(metrics.id)).eventsApplied === total);
    expect(await store.executor.query(`SELECT * FROM "${store.schema}".pipeline_metrics_hourly ORDER BY pipeline_id, hour`)).toEqual(before);

    // The same rebuild in SQL (bulk catch-up over the journal's table): the same rows again, the offset where the event path left it.
    const streamedOffset = (await offsets.get(metrics.id)).offset;
    await system.terminate();
    await store.executor.transaction(async (tx) => {
      await tx.query(`DELETE FROM "${store.schema}".pipeline_metrics_hourly`);
      await offsets.clearOffset(metrics.id, tx);
    });
    const journal = sqlJournalOf(store.persistence);
    if (journal === undefined) throw new Error(`${store.name}: no SQL journal`);
    const bulkEvents: ProjectionStatusEvent[] = [];
    const controller = new AbortController();
    const bulkRun = runProjection(metrics, { ...deps, journal, bulkMinBehind: 1, onStatus: (event) => bulkEvents.push(event) }, controller.signal);
    await until('the bulk rebuild to finish', async () => (await offsets.get(metrics.id)).eventsApplied === total);
    controller.abort();
    await bulkRun;
    expect(bulkEvents.filter((e) => e.type === 'progress')).toEqual([expect.objectContaining({ events: total })]);
    expect((await offsets.get(metrics.id)).offset).toEqual(streamedOffset);
    expect(await store.executor.query(`SELECT * FROM "${store.schema}".pipeline_metrics_hourly ORDER BY pipeline_id, hour`)).toEqual(before);
  });

  it('reads odd BatchProcessed payloads in SQL exactly as the handler does (strings, null, objects, negatives, missing fields, nested and look-alike keys, the $df wrapper)', { timeout: 60_000 }, async () => {
    const store = await open();
    stores.push(store);
    await migrateProjections(store.executor, store.schema);
    const offsets = new ProjectionOffsetStore(store.executor, store.schema);
    await store.executor.query(`CREATE TABLE "${store.schema}".metrics_bulk (LIKE "${store.schema}".pipeline_metrics_hourly INCLUDING ALL)`);
    const hour = Date.UTC(2026, 0, 1, 10);
    const payloads: Record<string, unknown>[] = [
      { at: hour, successCount: 10, failureCount: 1 },
      { at: hour + 60_000, successCount: '12', failureCount: null },
      { at: String(hour), successCount: { n: 3 }, failureCount: [4] },
      { at: null, successCount: -5, failureCount: true },
      { successCount: 7 },
      { at: 0, successCount: 1e3, failureCount: 2 },
      { at: hour + 3 * 3_600_000, successCount: 9007199254740, failureCount: 0 },
      { at: 'soon', successCount: 0, failureCount: 0, nested: { successCount: 99, at: 1 } },
      // Read in SQL by byte position when flat; these are not: a nested key before the real one, a key that only looks like one, the serializer's $df wrapper.
      { nested: { successCount: 50, at: 1 }, at: hour, successCount: 2, failureCount: 1 },
      { 'x"successCount': 70, at: hour, successCount: 3, failureCount: 0, note: 'a,"failureCount":8' },
      { $df: 'kept', at: hour, successCount: 4, failureCount: 2 },
    ];
    await store.persistence.journal.append(
      'pipeline-odd',
      payloads.map((p, i) => ({ eventType: 'BatchProcessed', payload: { type: 'BatchProcessed', batchId: `b${i}`, ...p }, tags: ['pipeline-events'] })),
      { expectedSequenceNr: 0, writerId: 'test' },
    );
    // Tasks of a parallel pipeline (ADR 0013) count towards the pipeline; an id that only looks like one does not.
    for (const [taskId, count] of [['pipeline-odd.2', 40], ['pipeline-odd.0', 5], ['pipeline-x.y.12', 6]] as const) {
      await store.persistence.journal.append(taskId, [{ eventType: 'BatchProcessed', payload: { type: 'BatchProcessed', batchId: 't', at: hour, successCount: count, failureCount: 0 }, tags: ['pipeline-events'] }], { expectedSequenceNr: 0, writerId: 'test' });
    }
    payloads.push({}, {}, {}); // three more events to apply
    const journal = sqlJournalOf(store.persistence);
    if (journal === undefined) throw new Error(`${store.name}: no SQL journal`);
    const run = async (projection: ReturnType<typeof pipelineMetricsHourlyProjection>, bulk: boolean) => {
      const controller = new AbortController();
      // In SQL the range is read in four parts at once (one event's part, or one pipeline's events spread over parts), then summed in one write.
      const running = runProjection(projection, { queries: store.persistence.queries, store: offsets, executor: store.executor, pauseCheckMs: 100, ...(bulk ? { journal, bulkMinBehind: 1, bulkParallelism: 4 } : {}) }, controller.signal);
      await until(`the ${bulk ? 'bulk' : 'event-by-event'} projection to apply every event`, async () => (await offsets.get(projection.id)).eventsApplied === payloads.length);
      controller.abort();
      await running;
    };
    await run(pipelineMetricsHourlyProjection({ schema: store.schema, key: 'events', groupSize: 3, groupWithinMs: 10 }), false);
    await run(pipelineMetricsHourlyProjection({ schema: store.schema, key: 'bulk', table: 'metrics_bulk' }), true);
    const byEvents = await store.executor.query(`SELECT * FROM "${store.schema}".pipeline_metrics_hourly ORDER BY pipeline_id, hour`);
    const inSql = await store.executor.query(`SELECT * FROM "${store.schema}".metrics_bulk ORDER BY pipeline_id, hour`);
    expect(byEvents.length).toBeGreaterThanOrEqual(3);
    expect(inSql).toEqual(byEvents);
    const ids = byEvents.map((r) => (r as { pipeline_id: string }).pipeline_id);
    expect([...new Set(ids)].sort()).toEqual(['odd', 'odd.0', 'x.y']);
    const tenOClock = byEvents.find((r) => (r as { pipeline_id: string; hour: Date }).pipeline_id === 'odd' && new Date((r as { hour: Date }).hour).getTime() === hour);
    expect(Number((tenOClock as { records_processed: string }).records_processed)).toBe(10 + 40 + 2 + 3 + 4);
  });

  it('refuses a bulk range with events of another serializer as a whole (no part of it written) and reads it event by event, each event once', { timeout: 60_000 }, async () => {
    const store = await open();
    stores.push(store);
    await migrateProjections(store.executor, store.schema);
    const offsets = new ProjectionOffsetStore(store.executor, store.schema);
    // A serializer the SQL statement cannot read (another id; bytes that are not UTF-8 JSON), known to the reading journal as a read-only one.
    const legacy: Serializer = {
      id: 'legacy-binary',
      serialize: (payload) => new Uint8Array([0, 0xff, ...new TextEncoder().encode(JSON.stringify(payload))]),
      deserialize: (bytes) => JSON.parse(new TextDecoder().decode(bytes.subarray(2))) as unknown,
    };
    const legacyWriter = await createSqlPersistence(store.executor, { schema: store.schema, serializers: new SerializerRegistry({ defaultSerializer: legacy }) });
    const reader = await createSqlPersistence(store.executor, { schema: store.schema, serializers: new SerializerRegistry({ readOnly: [legacy] }) });
    const hour = Date.UTC(2026, 0, 1, 10);
    const batch = (successCount: number) => ({ eventType: 'BatchProcessed', payload: { type: 'BatchProcessed', batchId: 'b', at: hour, successCount, failureCount: 1 }, tags: ['pipeline-events'] });
    // Orderings 1-20 in JSON (the first parts of the range), then one legacy event (the last part).
    await store.persistence.journal.append('pipeline-mixed', Array.from({ length: 20 }, () => batch(10)), { expectedSequenceNr: 0, writerId: 'test' });
    await legacyWriter.journal.append('pipeline-mixed', [batch(1_000)], { expectedSequenceNr: 20, writerId: 'test' });
    const journal = sqlJournalOf(reader);
    if (journal === undefined) throw new Error(`${store.name}: no SQL journal`);
    const events: ProjectionStatusEvent[] = [];
    const controller = new AbortController();
    const metrics = pipelineMetricsHourlyProjection({ schema: store.schema, groupSize: 100, groupWithinMs: 10 });
    await expect(runProjection(metrics, { queries: reader.queries, store: offsets, executor: store.executor, journal, bulkMinBehind: 1, bulkParallelism: 0 }, controller.signal)).rejects.toThrow(
      'bulkParallelism must be a positive integer, got 0',
    );
    const running = runProjection(metrics, { queries: reader.queries, store: offsets, executor: store.executor, pauseCheckMs: 100, journal, bulkMinBehind: 1, bulkParallelism: 3, onStatus: (e) => events.push(e) }, controller.signal);
    let failed: { error: unknown } | undefined;
    running.catch((error: unknown) => (failed = { error }));
    await until('the projection to apply every event', async () => {
      if (failed !== undefined) throw failed.error;
      return (await offsets.get(metrics.id)).eventsApplied === 21;
    });
    controller.abort();
    await running;
    const rows = await store.executor.query<{ records_processed: string; batches: string; failures: string }>(`SELECT records_processed, batches, failures FROM "${store.schema}".pipeline_metrics_hourly`);
    expect(rows.map((r) => [Number(r.records_processed), Number(r.batches), Number(r.failures)])).toEqual([[20 * 10 + 1_000, 21, 21]]);
    // The bulk range was refused before its write: every event was applied by the handler path, none by SQL.
    expect(events.filter((e) => e.type === 'progress').reduce((n, e) => n + (e.type === 'progress' ? e.events : 0), 0)).toBe(21);
  });

  it("counts a parallel pipeline's tasks towards its pipeline_status row, live, rebuilt and over slice ranges, and PipelineStatusView reads it", { timeout: 120_000 }, async () => {
    const store = await open();
    stores.push(store);
    await migrateProjections(store.executor, store.schema);
    const offsets = new ProjectionOffsetStore(store.executor, store.schema);
    const management = new ProjectionManagement(offsets);
    const deps = { queries: store.persistence.queries, store: offsets, executor: store.executor, pauseCheckMs: 100 };
    const live = pipelineStatusProjection({ schema: store.schema, groupSize: 50, groupWithinMs: 20 });
    const system = createActorSystem({ name: `parallel-${store.name}` });
    spawnProjection(system, live, deps);
    // Task entities as the node runs them (ADR 0013): `orders` (task 0) and `orders.1`, `orders.2`, the same definition; and a plain pipeline.
    const ids = ['orders', 'orders.1', 'orders.2', 'clicks'];
    const states = await runPipelines(store, ids, (id) => `read-model-${pipelineTaskOf(id).pipelineId}`);
    const total = await tagCount(store.persistence.queries);
    await until('the live projection to catch up', async () => (await offsets.get(live.id)).eventsApplied === total);
    await system.terminate();

    const metricsOf = (s: PipelineState) => {
      if (s.status === 'empty') throw new Error('a pipeline ended empty');
      return s.metrics;
    };
    const tasks = states.slice(0, 3).map(metricsOf);
    expect(tasks.every((m) => m.batches > 0)).toBe(true);
    const orders = {
      id: 'orders',
      name: 'read-model-orders',
      status: 'stopped',
      sourceType: 'counting',
      sinkType: 'collecting',
      totalRecords: tasks.reduce((sum, m) => sum + m.recordsProcessed, 0),
      totalBatches: tasks.reduce((sum, m) => sum + m.batches, 0),
      totalFailures: tasks.reduce((sum, m) => sum + m.recordsFailed, 0),
    };
    const clicksMetrics = metricsOf(states[3] as PipelineState);
    const clicks = { id: 'clicks', name: 'read-model-clicks', status: 'stopped', totalRecords: clicksMetrics.recordsProcessed, totalBatches: clicksMetrics.batches, totalFailures: clicksMetrics.recordsFailed };
    // No row per task: the tasks' lifecycle events change nothing, their batches add to `orders`.
    const table = (name: string) => store.executor.query<Record<string, unknown>>(`SELECT * FROM "${store.schema}".${name} ORDER BY pipeline_id`);
    const liveRows = await table('pipeline_status');
    expect(liveRows.map((r) => r['pipeline_id'])).toEqual(['clicks', 'orders']);

    const view = new PipelineStatusView(store.executor, { schema: store.schema });
    expect(await view.list()).toEqual([expect.objectContaining(clicks), expect.objectContaining(orders)]);
    expect(await view.list({ status: 'stopped' })).toHaveLength(2);
    expect(await view.list({ status: 'running' })).toEqual([]);
    const row = await view.get('orders');
    expect(row).toMatchObject(orders);
    expect(row?.createdAt).toBeInstanceOf(Date);
    expect(await view.get('orders.1')).toBeUndefined();
    expect(await view.get('nope')).toBeUndefined();
    expect(await view.lag()).toEqual({ lag: { kind: 'known', events: 0, seconds: 0 }, lastEventAt: expect.any(Number) as number, eventsApplied: total, keys: ['default'] });

    // Rebuilt from the journal (a fresh table, offset from the start): identical rows.
    const replay = async (projection: ReturnType<typeof pipelineStatusProjection>, done: () => Promise<boolean>) => {
      const controller = new AbortController();
      const running = runProjection(projection, deps, controller.signal);
      await until(`${projection.id.key} to apply its events`, done);
      controller.abort();
      await running;
    };
    await store.executor.query(`CREATE TABLE "${store.schema}".status_rebuilt (LIKE "${store.schema}".pipeline_status INCLUDING ALL)`);
    const rebuilt = pipelineStatusProjection({ schema: store.schema, key: 'rebuilt', table: 'status_rebuilt', groupSize: 7, groupWithinMs: 10 });
    await replay(rebuilt, async () => (await offsets.get(rebuilt.id)).eventsApplied === total);
    expect(await table('status_rebuilt')).toEqual(liveRows);

    // Over slice ranges, the range of a task first, alone: its batches wait in a row without status (not a pipeline to the view) until task 0's range creates it.
    const taskSlice = sliceForPersistenceId('pipeline-orders.1');
    expect(sliceForPersistenceId('pipeline-orders')).not.toBe(taskSlice);
    const ranges: SliceRange[] = [{ min: taskSlice, max: taskSlice }, ...(taskSlice > 0 ? [{ min: 0, max: taskSlice - 1 }] : []), ...(taskSlice < SLICE_COUNT - 1 ? [{ min: taskSlice + 1, max: SLICE_COUNT - 1 }] : [])];
    await store.executor.query(`CREATE TABLE "${store.schema}".status_split (LIKE "${store.schema}".pipeline_status INCLUDING ALL)`);
    const splitView = new PipelineStatusView(store.executor, { schema: store.schema, table: 'status_split', keys: ranges.map(sliceKey) });
    const caughtUp = (range: SliceRange) => async () => {
      const status = await management.status({ name: 'pipeline_status', key: sliceKey(range) }, 'pipeline-events', range);
      // Caught up: the offset is saved with the rows, so no event left means every event applied (a range without events has none from the start).
      return status.lag.kind === 'known' && status.lag.events === 0;
    };
    const [first, ...rest] = ranges.map((range) => ({ range, projection: pipelineStatusProjection({ schema: store.schema, key: sliceKey(range), table: 'status_split', slices: range, groupSize: 5, groupWithinMs: 10 }) }));
    if (first === undefined) throw new Error('no range');
    await replay(first.projection, caughtUp(first.range));
    expect(await splitView.get('orders')).toBeUndefined();
    expect(await table('status_split')).toEqual([expect.objectContaining({ pipeline_id: 'orders', status: null, pipeline_name: null })]);
    expect(Number((await table('status_split'))[0]?.['total_batches'])).toBe(tasks[1]?.batches);
    const behind = await splitView.lag();
    expect(behind.keys).toEqual(ranges.map(sliceKey));
    expect(behind.lag.kind === 'known' && behind.lag.events > 0).toBe(true);
    for (const { range, projection } of rest) await replay(projection, caughtUp(range));
    // The same pipelines and counts (updated_at is the last event applied, which depends on the order the ranges ran in).
    const withoutUpdatedAt = (rows: Record<string, unknown>[]) => rows.map(({ updated_at: _, ...r }) => r);
    expect(withoutUpdatedAt(await table('status_split'))).toEqual(withoutUpdatedAt(liveRows));
    expect((await splitView.lag()).lag).toEqual({ kind: 'known', events: 0, seconds: 0 });
  });
});
