/**
 * Projections benchmark (issue 12 item 7), on the real Postgres, in one run:
 *
 * 1. Catch-up: `pipeline_metrics_hourly` built by its projection, event by
 *    event (`groupedWithin`, 1 000 events per transaction) and in SQL (the
 *    bulk catch-up a node on Postgres/PGlite runs: parts of the range read at
 *    once, one write), from 100 000 `BatchProcessed` events of 50 pipelines
 *    already in the journal, from an empty offset to the last event; against
 *    writing the same 100 000 event rows (pipeline, hour, successes,
 *    failures) raw: one single-row INSERT per row (autocommit), and one
 *    server-side COPY of a CSV file. The SQL catch-up and the COPY run in
 *    alternate rounds and each is the median of its rounds (this machine's
 *    speed drifts within a minute); every round's rows are checked against
 *    the event-by-event ones.
 * 2. Live lag: events appended at a steady 2 000 events/s (batches of 20
 *    every 10 ms, 10 s) while the projection runs live; per batch, the time
 *    from its append to the projection's stored offset covering it, p50 / p99.
 *
 *   npx tsx --conditions=@dataflow/source src/bench/projections.bench.ts
 *
 * Target: DATAFLOW_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { writeFile, rm, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { NewEvent } from '@dataflow/core';
import { createPostgresPersistence, pgPoolExecutor } from '@dataflow/persistence';
import pg from 'pg';
import { ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { pipelineMetricsHourlyProjection } from '../read-models/pipeline-read-models.js';
import { runProjection, type JournalTables, type ProjectionStatusEvent } from '../runner/projection-runner.js';

import { sqlJournalOf } from '../runner/sql-journal.js';
import { migrateProjections } from '../schema/projections-schema.js';

const PIPELINES = 50;
/** Alternate rounds of the SQL catch-up and the COPY. */
const ROUNDS = 5;
const START = Date.UTC(2026, 0, 1);

const median = (values: readonly number[]): number => percentile(values, 50);

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

/** Event `i`: a BatchProcessed of pipeline i % 50, one minute apart per pipeline. */
function batchEvent(i: number, at: number): NewEvent {
  return {
    eventType: 'BatchProcessed',
    payload: { type: 'BatchProcessed', at, batchId: `b-${i}`, successCount: 100 + (i % 400), failureCount: i % 13 === 0 ? 5 : 0, deadLetterCount: 0, processingMs: 12 },
    tags: ['pipeline-events', 'all-events', 'batch-events'],
  };
}

/** Resolves when the projection's progress events add up to `events` applied events (each is emitted after its transaction committed). */
function appliedAll(events: number): { readonly onStatus: (event: ProjectionStatusEvent) => void; readonly done: Promise<void> } {
  let applied = 0;
  let resolve = (): void => undefined;
  const done = new Promise<void>((r) => (resolve = r));
  return {
    onStatus: (event) => {
      if (event.type === 'progress' && (applied += event.events) >= events) resolve();
    },
    done,
  };
}

/** Runs both parts; prints a table and one JSON line. */
export async function runProjectionsBench(options: { readonly events?: number; readonly liveSeconds?: number } = {}) {
  const events = options.events ?? 100_000;
  const liveSeconds = options.liveSeconds ?? 10;
  const schema = `bench_projections_${Date.now().toString(36)}`;
  const pool = new pg.Pool({ connectionString: process.env['DATAFLOW_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres', max: 6 });
  const executor = pgPoolExecutor(pool, { ownsPool: false });
  const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
  const csv = join(tmpdir(), `${schema}.csv`);
  try {
    await migrateProjections(executor, schema);
    const store = new ProjectionOffsetStore(executor, schema);
    const seq = new Array<number>(PIPELINES).fill(0);
    const append = async (from: number, count: number, at: (i: number) => number): Promise<void> => {
      const byPipeline = new Map<number, NewEvent[]>();
      for (let i = from; i < from + count; i++) {
        const p = i % PIPELINES;
        const list = byPipeline.get(p) ?? [];
        list.push(batchEvent(i, at(i)));
        byPipeline.set(p, list);
      }
      await Promise.all(
        [...byPipeline].map(async ([p, list]) => {
          await persistence.journal.append(`pipeline-p${p}`, list, { expectedSequenceNr: seq[p] ?? 0, writerId: 'bench' });
          seq[p] = (seq[p] ?? 0) + list.length;
        }),
      );
    };
    for (let i = 0; i < events; i += 5_000) await append(i, Math.min(5_000, events - i), (k) => START + Math.floor(k / PIPELINES) * 60_000);

    // What reading the events alone costs (the tag query the projection runs on).
    const readStart = performance.now();
    let read = 0;
    for await (const _ of persistence.queries.eventsByTag('pipeline-events')) read++;
    const readMs = performance.now() - readStart;
    if (read !== events) throw new Error(`the tag query returned ${read} events, expected ${events}`);

    // 1a. Catch-up event by event (any store: the tag query, groups of 1 000 per transaction): the reference rows. It runs on, live, for part 2.
    const projection = pipelineMetricsHourlyProjection({ schema, groupSize: 1_000, groupWithinMs: 100 });
    const controller = new AbortController();
    const catchUpApplied = appliedAll(events);
    const catchUpStart = performance.now();
    const run = runProjection(projection, { queries: persistence.queries, store, executor, pauseCheckMs: 60_000, onStatus: catchUpApplied.onStatus }, controller.signal);
    await catchUpApplied.done;
    const catchUpMs = performance.now() - catchUpStart;

    // The raw baselines' rows: one per event (pipeline, hour, successes, failures).
    const rows = Array.from({ length: events }, (_, i) => [`p${i % PIPELINES}`, new Date(START + Math.floor(Math.floor(i / PIPELINES) * 60_000 / 3_600_000) * 3_600_000).toISOString(), 100 + (i % 400), i % 13 === 0 ? 5 : 0] as const);
    await pool.query(`CREATE TABLE "${schema}".raw_rows (pipeline_id text, hour timestamptz, successes bigint, failures bigint)`);
    await writeFile(csv, rows.map((r) => r.join(',')).join('\n'));
    await chmod(csv, 0o644);

    // 1b. Catch-up in SQL (the bulk catch-up over the journal's table, as a node on Postgres or PGlite runs it) against one COPY of the
    // event rows, in alternate rounds: this machine's speed drifts by up to 1.6x within a minute, so each is the median of its rounds.
    const bulkRounds: number[] = [];
    const copyRounds: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const table = `pipeline_metrics_hourly_bulk${round}`;
      await pool.query(`CREATE TABLE "${schema}".${table} (LIKE "${schema}".pipeline_metrics_hourly INCLUDING ALL)`);
      const bulkProjection = pipelineMetricsHourlyProjection({ schema, key: `bulk${round}`, table });
      const bulkController = new AbortController();
      // Timed to the progress event of the transaction that applied the last event (as the COPY is timed to its statement's end).
      const bulkApplied = appliedAll(events);
      const bulkStart = performance.now();
      const bulkRun = runProjection(bulkProjection, { queries: persistence.queries, store, executor, pauseCheckMs: 60_000, journal: sqlJournalOf(persistence) as JournalTables, onStatus: bulkApplied.onStatus }, bulkController.signal);
      await bulkApplied.done;
      bulkRounds.push(performance.now() - bulkStart);
      bulkController.abort();
      await bulkRun;
      const [same] = (
        await pool.query<{ differ: string }>(
          `SELECT count(*) AS differ FROM ((SELECT * FROM "${schema}".pipeline_metrics_hourly EXCEPT SELECT * FROM "${schema}".${table})
             UNION ALL (SELECT * FROM "${schema}".${table} EXCEPT SELECT * FROM "${schema}".pipeline_metrics_hourly)) d`,
        )
      ).rows;
      if (Number(same?.differ) !== 0) throw new Error(`the bulk catch-up (round ${round}) and the event-by-event one differ in ${same?.differ} rows`);

      await pool.query(`TRUNCATE "${schema}".raw_rows`);
      const copyStart = performance.now();
      await pool.query(`COPY "${schema}".raw_rows FROM '${csv}' WITH (FORMAT csv)`);
      copyRounds.push(performance.now() - copyStart);
    }
    const bulkMs = median(bulkRounds);
    const copyMs = median(copyRounds);

    await pool.query(`TRUNCATE "${schema}".raw_rows`);
    const singleStart = performance.now();
    for (const r of rows) await pool.query(`INSERT INTO "${schema}".raw_rows VALUES ($1, $2, $3, $4)`, [...r]);
    const singleMs = performance.now() - singleStart;

    // 2. Live lag at 2 000 events/s.
    const lags: number[] = [];
    const appendedAt: { upTo: number; at: number }[] = [];
    let total = events;
    const watcher = (async () => {
      let next = 0;
      while (next < liveSeconds * 100 || appendedAt.length > next) {
        const applied = (await store.get(projection.id)).eventsApplied;
        const now = performance.now();
        while (next < appendedAt.length && (appendedAt[next]?.upTo ?? Infinity) <= applied) lags.push(now - (appendedAt[next++]?.at ?? now));
        if (next >= liveSeconds * 100) break;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const liveStart = performance.now();
    for (let tick = 0; tick < liveSeconds * 100; tick++) {
      const due = liveStart + tick * 10;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const at = performance.now();
      await append(total, 20, () => Date.now());
      total += 20;
      appendedAt.push({ upTo: total, at });
    }
    await watcher;
    controller.abort();
    await run;

    const result = {
      bench: 'projections.catch-up-and-lag',
      events,
      bulkCatchUpEventsPerSec: Math.round(events / (bulkMs / 1000)),
      bulkVsSingleRowInserts: Math.round((singleMs / bulkMs) * 100) / 100,
      bulkVsCopy: Math.round((copyMs / bulkMs) * 1000) / 1000,
      bulkVsCopyRounds: bulkRounds.map((ms, i) => Math.round(((copyRounds[i] ?? Number.NaN) / ms) * 1000) / 1000),
      catchUpEventsPerSec: Math.round(events / (catchUpMs / 1000)),
      singleRowInsertsPerSec: Math.round(events / (singleMs / 1000)),
      copyRowsPerSec: Math.round(events / (copyMs / 1000)),
      vsSingleRowInserts: Math.round((singleMs / catchUpMs) * 100) / 100,
      vsCopy: Math.round((copyMs / catchUpMs) * 1000) / 1000,
      tagQueryEventsPerSec: Math.round(events / (readMs / 1000)),
      liveEventsPerSec: 2000,
      liveLagP50Ms: Math.round(percentile(lags, 50)),
      liveLagP99Ms: Math.round(percentile(lags, 99)),
      liveBatchesMeasured: lags.length,
    };
    process.stdout.write(`Projections bench: ${events} BatchProcessed events of ${PIPELINES} pipelines on Postgres; live: ${liveSeconds} s at 2 000 events/s\n`);
    console.table({
      [`catch-up in SQL (bulk, the default on Postgres/PGlite; median of ${ROUNDS})`]: { 'events/s': result.bulkCatchUpEventsPerSec, ms: Math.round(bulkMs), 'vs single INSERTs': result.bulkVsSingleRowInserts, 'vs COPY': result.bulkVsCopy },
      'catch-up event by event (groupedWithin 1 000)': { 'events/s': result.catchUpEventsPerSec, ms: Math.round(catchUpMs), 'vs single INSERTs': result.vsSingleRowInserts, 'vs COPY': result.vsCopy },
      'raw: single-row INSERT per event row': { 'events/s': result.singleRowInsertsPerSec, ms: Math.round(singleMs) },
      [`raw: COPY of the event rows (median of ${ROUNDS})`]: { 'events/s': result.copyRowsPerSec, ms: Math.round(copyMs) },
      'the tag query alone (current eventsByTag)': { 'events/s': result.tagQueryEventsPerSec, ms: Math.round(readMs) },
      'live lag, append -> offset stored (ms)': { p50: result.liveLagP50Ms, p99: result.liveLagP99Ms },
    });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result;
  } finally {
    await rm(csv, { force: true });
    await persistence.close();
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runProjectionsBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
