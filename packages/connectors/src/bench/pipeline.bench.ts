/**
 * Benchmark of a running pipeline (one run, own Postgres schema, dropped at
 * the end): generator → filter + map → in-memory sink, with its checkpoints in
 * the Postgres journal, against a plain loop that does the same work by hand
 * in the same process: it draws the same records from the same generator,
 * applies the same filter and map (the transforms of `@dataflow/core`), keeps
 * the output in an array and, per batch, awaits one checkpoint INSERT into a
 * table of the same schema. Also: the same pipeline on the embedded PGlite
 * journal (a data directory).
 *
 *   npx tsx --conditions=@dataflow/source src/bench/pipeline.bench.ts
 *
 * Connection: DATAFLOW_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  askWithStatus,
  createActorSystem,
  createTransform,
  pipelineActor,
  validatePipelineDefinition,
  type ActorRef,
  type DataRecord,
  type EntityPersistence,
  type PipelineCommand,
  type PipelineReply,
  type PipelineResult,
  type PipelineState,
} from '@dataflow/core';
import { createPglitePersistence, createPostgresPersistence } from '@dataflow/persistence';
import pg from 'pg';
import { createSource } from '../factory/create-connector.js';
import { GeneratorSource, type GeneratorSourceDefinition } from '../generator/generator-source.js';
import { InMemorySink } from '../memory/in-memory-sink.js';

export interface PipelineBenchOptions {
  readonly postgresUrl?: string;
  /** Schema of the journal and the loop's checkpoint table, dropped at the end (default `bench_pipeline_<time>`). */
  readonly schema?: string;
  /** Batch sizes to compare at, each with its own pairs (default 500 and 50). */
  readonly batchSizes?: readonly number[];
  /**
   * Each measured side runs at least this long (default 2000 ms): the record
   * count is calibrated from the warm-up, and a pair with a shorter side is
   * measured again with twice the records.
   */
  readonly minSideMs?: number;
  /** Records per measured run at least (default 20 000). */
  readonly minRecords?: number;
  /** Records of the pipeline on PGlite (batch 500). */
  readonly pgliteRecords?: number;
  /** Records of an unmeasured run of each variant first, so that both run JIT-compiled code. */
  readonly warmupRecords?: number;
  /** Measured pairs (pipeline, loop) per batch size, alternating which runs first; the ratio is the median of the pairs' ratios (default 5). */
  readonly rounds?: number;
}

/** The comparison at one batch size. */
export interface PipelineBenchRow {
  readonly batchSize: number;
  readonly records: number;
  /** Records the filter kept (the same for both variants). */
  readonly written: number;
  readonly pipelineRecordsPerSec: number;
  readonly loopRecordsPerSec: number;
  /** Median measured time of a side, ms. */
  readonly pipelineMs: number;
  readonly loopMs: number;
  /** Pipeline throughput as a fraction of the plain loop's: median over the measured pairs. */
  readonly ratio: number;
  /** The ratio of every measured pair. */
  readonly ratios: readonly number[];
  /**
   * One run of the pipeline with one batch per checkpoint (no group commit,
   * the sink write still overlapping the previous checkpoint), as a fraction
   * of the loop's median time: what the group commit adds.
   */
  readonly ungroupedRatio: number;
}

export interface PipelineBenchResult {
  readonly rows: readonly PipelineBenchRow[];
  readonly pgliteRecordsPerSec: number;
}

/** The pipeline both variants run; the loop takes its parsed transforms from the same validation. */
function benchDefinition(name: string, records: number, batchSize: number) {
  return {
    name,
    source: generator(records),
    transforms: [
      { type: 'filter', expression: 'status != "test"' },
      { type: 'map', rename: [{ from: 'value', to: 'amount' }], set: [{ to: 'pipeline', value: 'bench' }], drop: ['status'] },
    ],
    sink: { type: 'memory' },
    batch: { size: batchSize, maxWaitMs: 100 },
  };
}

function generator(count: number): GeneratorSourceDefinition {
  return {
    type: 'generator',
    count,
    seed: 7,
    fields: {
      id: { kind: 'sequence' },
      status: { kind: 'pick', values: ['live', 'live', 'live', 'test'] },
      value: { kind: 'int', min: 0, max: 999 },
      region: { kind: 'pick', values: ['eu-west', 'us-east', 'ap-south'] },
    },
  };
}

/** Runs the comparison; prints a table and one JSON line. */
export async function runPipelineBench(options: PipelineBenchOptions = {}): Promise<PipelineBenchResult> {
  const postgresUrl = options.postgresUrl ?? process.env['DATAFLOW_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const batchSizes = options.batchSizes ?? [500, 50];
  const minSideMs = options.minSideMs ?? 2_000;
  const minRecords = options.minRecords ?? 20_000;
  const pgliteRecords = options.pgliteRecords ?? 50_000;
  const warmupRecords = options.warmupRecords ?? 20_000;
  const rounds = options.rounds ?? 5;
  const schema = options.schema ?? `bench_pipeline_${Date.now().toString(36)}`;

  const pool = new pg.Pool({ connectionString: postgresUrl, max: 4 });
  try {
    const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
    await pool.query(`CREATE TABLE "${schema}".bench_checkpoints (run text NOT NULL, batch integer NOT NULL, source_offset bigint NOT NULL, records bigint NOT NULL, PRIMARY KEY (run, batch))`);
    try {
      const rows: PipelineBenchRow[] = [];
      let runs = 0;
      for (const batchSize of batchSizes) {
        // Warm up both variants, and size the measured runs so that the faster side takes minSideMs.
        const warmPipeline = await runPipeline(persistence, `warmup-${batchSize}`, warmupRecords, batchSize);
        const warmLoop = await runLoop(pool, schema, `warmup-${batchSize}`, warmupRecords, batchSize);
        const fastestMs = Math.max(1, Math.min(warmPipeline.ms, warmLoop.ms));
        let records = Math.max(minRecords, roundUp(Math.ceil((warmupRecords * minSideMs * 1.25) / fastestMs), batchSize));
        const pairs: { pipeline: Timed; loop: Timed }[] = [];
        while (pairs.length < rounds) {
          const id = `measured-${batchSize}-${runs++}`;
          let pipeline: Timed;
          let loop: Timed;
          // Alternate the order so that neither variant always runs on a warmer (or busier) machine.
          if (pairs.length % 2 === 0) {
            pipeline = await runPipeline(persistence, id, records, batchSize);
            loop = await runLoop(pool, schema, id, records, batchSize);
          } else {
            loop = await runLoop(pool, schema, id, records, batchSize);
            pipeline = await runPipeline(persistence, id, records, batchSize);
          }
          if (pipeline.written !== loop.written) throw new Error(`the pipeline wrote ${pipeline.written} records, the loop ${loop.written}`);
          if (Math.min(pipeline.ms, loop.ms) < minSideMs) {
            // Too short to trust: measure this pair again with more records (earlier pairs keep their size).
            records *= 2;
            continue;
          }
          pairs.push({ pipeline, loop });
        }
        const ratios = pairs.map((p) => round2(p.loop.ms / p.pipeline.ms));
        const last = pairs[pairs.length - 1] as { pipeline: Timed; loop: Timed };
        const ungrouped = await runPipeline(persistence, `ungrouped-${batchSize}-${runs++}`, last.loop.records, batchSize, { maxBatchesPerCheckpoint: 1 });
        const pipelineMs = median(pairs.map((p) => p.pipeline.ms / p.pipeline.records));
        const loopMs = median(pairs.map((p) => p.loop.ms / p.loop.records));
        rows.push({
          batchSize,
          records: last.pipeline.records,
          written: last.loop.written,
          pipelineRecordsPerSec: Math.round(1000 / pipelineMs),
          loopRecordsPerSec: Math.round(1000 / loopMs),
          pipelineMs: Math.round(median(pairs.map((p) => p.pipeline.ms))),
          loopMs: Math.round(median(pairs.map((p) => p.loop.ms))),
          ratio: round2(median(ratios)),
          ratios,
          ungroupedRatio: round2(last.loop.ms / ungrouped.ms),
        });
      }
      const pglite = await runPipelineOnPglite(pgliteRecords, 500);
      const result: PipelineBenchResult = { rows, pgliteRecordsPerSec: perSec(pgliteRecords, pglite.ms) };
      process.stdout.write(`Pipeline bench: generator → filter + map → memory, checkpoint per batch; ${rounds} alternating pairs per batch size, each side ≥ ${minSideMs} ms\n`);
      const table: Record<string, Record<string, number | string>> = {};
      for (const row of rows) {
        table[`pipeline, Postgres journal, batch ${row.batchSize}`] = { 'records/s': row.pipelineRecordsPerSec, 'median ms': row.pipelineMs, records: row.records };
        table[`plain loop, 1 INSERT per batch, batch ${row.batchSize}`] = {
          'records/s': row.loopRecordsPerSec,
          'median ms': row.loopMs,
          records: row.records,
          ratio: row.ratio,
          pairs: row.ratios.join(' '),
        };
        table[`pipeline, 1 batch per checkpoint, batch ${row.batchSize} (one run)`] = { records: row.records, ratio: row.ungroupedRatio };
      }
      table[`pipeline, PGlite journal, batch 500 (${pgliteRecords})`] = { 'records/s': result.pgliteRecordsPerSec, 'median ms': Math.round(pglite.ms) };
      console.table(table);
      process.stdout.write(`${JSON.stringify({ bench: 'connectors.pipeline', ...result })}\n`);
      return result;
    } finally {
      await persistence.close();
    }
  } finally {
    try {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await pool.end();
    }
  }
}

const round2 = (n: number): number => Math.round(n * 100) / 100;
const roundUp = (n: number, step: number): number => Math.ceil(n / step) * step;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

interface Timed {
  readonly ms: number;
  readonly records: number;
  readonly written: number;
}

/**
 * The pipeline from `start` until it stops at the end of its source (one
 * measured side of the bench; exported for profiling it alone, see ADR 0004).
 */
export async function runPipeline(
  persistence: EntityPersistence,
  pipelineId: string,
  records: number,
  batchSize: number,
  options: { readonly maxBatchesPerCheckpoint?: number } = {},
): Promise<Timed> {
  const system = createActorSystem({ name: `bench-${pipelineId}` });
  const sink = new InMemorySink();
  try {
    let stopped: (state: PipelineState) => void = () => undefined;
    const done = new Promise<PipelineState>((resolve) => (stopped = resolve));
    const pipeline = system.spawn(
      pipelineActor({
        pipelineId,
        persistence,
        ...options,
        connectors: {
          createSource: (definition) => createSource(definition),
          createSink: () => sink,
          createDeadLetterTarget: (definition) => {
            throw new Error(`no dead-letter target in this bench (${definition.type})`);
          },
        },
        onStateChange: (state) => {
          if (state.status === 'stopped' || state.status === 'failed') stopped(state);
        },
      }),
      `pipeline-${pipelineId}`,
    );
    const call = (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => askWithStatus<PipelineCommand, PipelineResult>(pipeline, build, { timeoutMs: 30_000 });
    const definition = benchDefinition(`bench-${pipelineId}`, records, batchSize);
    await call((replyTo) => ({ type: 'create', definition, replyTo }));
    const start = performance.now();
    await call((replyTo) => ({ type: 'start', replyTo }));
    const state = await done;
    const ms = performance.now() - start;
    if (state.status !== 'stopped') throw new Error(`the bench pipeline ended ${state.status}`);
    return { ms, records, written: sink.records().length };
  } finally {
    await system.terminate();
  }
}

/** The same work without the pipeline: poll, filter, map, keep, one awaited checkpoint row per batch. */
async function runLoop(pool: pg.Pool, schema: string, run: string, records: number, batchSize: number): Promise<Timed> {
  const validation = validatePipelineDefinition(benchDefinition(`bench-${run}`, records, batchSize));
  if (!validation.ok) throw new Error(`invalid bench definition: ${JSON.stringify(validation.issues)}`);
  const source = new GeneratorSource(generator(records));
  const transforms = validation.definition.transforms.map((t, i) => createTransform(t, { stage: `transforms[${i}]` }));
  const written: DataRecord[] = [];
  const start = performance.now();
  await source.open({ pipelineId: run, checkpoint: undefined, signal: new AbortController().signal });
  let batch = 0;
  let processed = 0;
  for (;;) {
    const polled = await source.poll(batchSize, 100);
    let current: DataRecord[] = [];
    for (const record of polled.records) if (record.ok) current.push(record.value);
    for (const transform of transforms) {
      if (transform.kind === 'stateful') throw new Error('the bench transforms are stateless');
      const result = transform.apply(current, { now: Date.now() });
      if (result instanceof Promise) throw new Error('the bench transforms are synchronous');
      current = [...result.records];
    }
    written.push(...current);
    processed += polled.records.length;
    if (polled.records.length > 0) {
      batch++;
      await pool.query(`INSERT INTO "${schema}".bench_checkpoints (run, batch, source_offset, records) VALUES ($1, $2, $3, $4)`, [run, batch, polled.offset, processed]);
    }
    if (polled.done) break;
  }
  await source.close();
  return { ms: performance.now() - start, records, written: written.length };
}

async function runPipelineOnPglite(records: number, batchSize: number): Promise<Timed> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dataflow-bench-pipeline-'));
  try {
    const persistence = await createPglitePersistence({ dataDir });
    try {
      return await runPipeline(persistence, 'pglite', records, batchSize);
    } finally {
      await persistence.close();
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

const perSec = (records: number, ms: number): number => Math.round(records / (ms / 1000));

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runPipelineBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
