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
  ask,
  createActorSystem,
  createTransform,
  pipelineActor,
  validatePipelineDefinition,
  type ActorRef,
  type DataRecord,
  type EntityPersistence,
  type PipelineCommand,
  type PipelineReply,
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
  /** Records per measured run (pipeline and plain loop alike). */
  readonly records?: number;
  readonly batchSize?: number;
  /** Records of the pipeline on PGlite. */
  readonly pgliteRecords?: number;
  /** Records of an unmeasured run of each variant first, so that both run JIT-compiled code. */
  readonly warmupRecords?: number;
  /** Measured pairs (pipeline, loop), alternating which runs first; the ratio is the median of the pairs' ratios (default 3). */
  readonly rounds?: number;
}

export interface PipelineBenchResult {
  readonly records: number;
  readonly batchSize: number;
  /** Records the filter kept (the same for both variants). */
  readonly written: number;
  readonly pipelineRecordsPerSec: number;
  readonly loopRecordsPerSec: number;
  /** Pipeline throughput as a fraction of the plain loop's: median over the measured pairs. */
  readonly ratio: number;
  /** The ratio of every measured pair. */
  readonly ratios: readonly number[];
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
  const records = options.records ?? 200_000;
  const batchSize = options.batchSize ?? 500;
  const pgliteRecords = options.pgliteRecords ?? 50_000;
  const warmupRecords = options.warmupRecords ?? 20_000;
  const schema = options.schema ?? `bench_pipeline_${Date.now().toString(36)}`;

  const pool = new pg.Pool({ connectionString: postgresUrl, max: 4 });
  try {
    const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
    await pool.query(`CREATE TABLE "${schema}".bench_checkpoints (run text NOT NULL, batch integer NOT NULL, source_offset bigint NOT NULL, records bigint NOT NULL, PRIMARY KEY (run, batch))`);
    try {
      await runPipeline(persistence, 'warmup', warmupRecords, batchSize);
      await runLoop(pool, schema, 'warmup', warmupRecords, batchSize);
      const rounds = options.rounds ?? 3;
      const pipelines: Timed[] = [];
      const loops: Timed[] = [];
      for (let round = 0; round < rounds; round++) {
        // Alternate the order so that neither variant always runs on a warmer (or busier) machine.
        if (round % 2 === 0) {
          pipelines.push(await runPipeline(persistence, `measured-${round}`, records, batchSize));
          loops.push(await runLoop(pool, schema, `measured-${round}`, records, batchSize));
        } else {
          loops.push(await runLoop(pool, schema, `measured-${round}`, records, batchSize));
          pipelines.push(await runPipeline(persistence, `measured-${round}`, records, batchSize));
        }
      }
      const ratios = pipelines.map((p, i) => Math.round(((loops[i]?.ms ?? 0) / p.ms) * 100) / 100);
      const pipeline = { ms: median(pipelines.map((p) => p.ms)), written: pipelines[0]?.written ?? 0 };
      const loop = { ms: median(loops.map((l) => l.ms)), written: loops[0]?.written ?? 0 };
      if (pipeline.written !== loop.written) throw new Error(`the pipeline wrote ${pipeline.written} records, the loop ${loop.written}`);
      const pglite = await runPipelineOnPglite(pgliteRecords, batchSize);

      const result: PipelineBenchResult = {
        records,
        batchSize,
        written: loop.written,
        pipelineRecordsPerSec: perSec(records, pipeline.ms),
        loopRecordsPerSec: perSec(records, loop.ms),
        ratio: median(ratios),
        ratios,
        pgliteRecordsPerSec: perSec(pgliteRecords, pglite.ms),
      };
      process.stdout.write(`Pipeline bench: generator → filter + map → memory, ${records} records, batch ${batchSize}, checkpoint per batch\n`);
      console.table({
        'pipeline, Postgres journal': { 'records/s': result.pipelineRecordsPerSec, ms: Math.round(pipeline.ms) },
        'plain loop, 1 INSERT per batch': { 'records/s': result.loopRecordsPerSec, ms: Math.round(loop.ms), ratio: result.ratio },
        [`pipeline, PGlite journal (${pgliteRecords})`]: { 'records/s': result.pgliteRecordsPerSec, ms: Math.round(pglite.ms) },
      });
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

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

interface Timed {
  readonly ms: number;
  readonly written: number;
}

/** The pipeline from `start` until it stops at the end of its source. */
async function runPipeline(persistence: EntityPersistence, pipelineId: string, records: number, batchSize: number): Promise<Timed> {
  const system = createActorSystem({ name: `bench-${pipelineId}` });
  const sink = new InMemorySink();
  try {
    let stopped: (state: PipelineState) => void = () => undefined;
    const done = new Promise<PipelineState>((resolve) => (stopped = resolve));
    const pipeline = system.spawn(
      pipelineActor({
        pipelineId,
        persistence,
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
    const call = (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => ask<PipelineCommand, PipelineReply>(pipeline, build, { timeoutMs: 30_000 });
    const definition = benchDefinition(`bench-${pipelineId}`, records, batchSize);
    const created = await call((replyTo) => ({ type: 'create', definition, replyTo }));
    if (!created.ok) throw created.error;
    const start = performance.now();
    const started = await call((replyTo) => ({ type: 'start', replyTo }));
    if (!started.ok) throw started.error;
    const state = await done;
    const ms = performance.now() - start;
    if (state.status !== 'stopped') throw new Error(`the bench pipeline ended ${state.status}`);
    return { ms, written: sink.records().length };
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
  return { ms: performance.now() - start, written: written.length };
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
