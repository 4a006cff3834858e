/**
 * Benchmark of the Cassandra sink inside a running pipeline against raw
 * driver inserts of the same rows, in one run (own keyspace and journal
 * schema, dropped at the end).
 *
 * - pipeline: generator → Cassandra sink (per-partition unlogged batches,
 *   bounded concurrency), batches of 500, checkpoints in the Postgres journal;
 * - raw: the same generator polled 500 at a time, each record converted by
 *   hand and written with one prepared, idempotent INSERT per row, as many in
 *   flight as the sink allows (`maxConcurrency`), no checkpoint.
 *
 * Both write the same rows (a Prometheus-like sample table keyed by series)
 * into two tables of the same shape; the row counts are checked afterwards.
 * The Kafka source is not part of this run (see the docs file for why).
 *
 *   npx tsx --conditions=@dataflow/source src/bench/cassandra-sink.bench.ts
 *
 * Targets: DATAFLOW_CASSANDRA_CONTACT_POINTS (default 127.0.0.1:19042),
 * DATAFLOW_CASSANDRA_LOCAL_DC (default datacenter1), DATAFLOW_POSTGRES_URL.
 */
import { pathToFileURL } from 'node:url';
import {
  askWithStatus,
  createActorSystem,
  pipelineActor,
  type ActorRef,
  type DataRecord,
  type EntityPersistence,
  type PipelineCommand,
  type PipelineReply,
  type PipelineResult,
  type PipelineState,
} from '@dataflow/core';
import { createPostgresPersistence } from '@dataflow/persistence';
import { Client, types } from 'cassandra-driver';
import pg from 'pg';
import { CassandraSink, type CassandraSinkDefinition } from '../cassandra/cassandra-sink.js';
import { createSource } from '../factory/create-connector.js';
import { GeneratorSource, type GeneratorSourceDefinition } from '../generator/generator-source.js';

export interface CassandraSinkBenchOptions {
  readonly contactPoints?: readonly string[];
  readonly localDataCenter?: string;
  readonly postgresUrl?: string;
  /** Records per measured side (default 40 000). */
  readonly records?: number;
  /** Measured pairs, alternating which side runs first; the ratio is the median (default 3). */
  readonly rounds?: number;
  readonly batchSize?: number;
  /** Statements in flight, for the sink and for the raw loop (default 32). */
  readonly concurrency?: number;
}

export interface CassandraSinkBenchResult {
  readonly records: number;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly pipelineRowsPerSec: number;
  readonly rawRowsPerSec: number;
  /** Pipeline throughput as a fraction of the raw inserts': median over the pairs. */
  readonly ratio: number;
  readonly ratios: readonly number[];
}

const COLUMNS = { metric_name: 'metric_name', job: 'job', series: 'series', timestamp: 'timestamp', value: 'value', labels: 'labels' };

function generator(count: number): GeneratorSourceDefinition {
  return {
    type: 'generator',
    count,
    seed: 11,
    fields: {
      timestamp: { kind: 'sequence', start: 1_700_000_000_000 },
      metric_name: { kind: 'pick', values: Array.from({ length: 40 }, (_, i) => `metric_${i}`) },
      job: { kind: 'pick', values: ['node', 'api', 'db'] },
      series: { kind: 'pick', values: Array.from({ length: 8 }, (_, i) => `{cpu="${i}",mode="user"}`) },
      value: { kind: 'float', min: 0, max: 1000, decimals: 3 },
      labels: { kind: 'constant', value: { mode: 'user', instance: 'localhost:9100' } },
    },
  };
}

const tableDdl = (keyspace: string, table: string): string =>
  `CREATE TABLE ${keyspace}.${table} (metric_name text, job text, series text, timestamp timestamp, value double, labels map<text, text>,
   PRIMARY KEY ((metric_name, job), series, timestamp))`;

/** Runs the comparison; prints a table and one JSON line. */
export async function runCassandraSinkBench(options: CassandraSinkBenchOptions = {}): Promise<CassandraSinkBenchResult> {
  const contactPoints = options.contactPoints ?? (process.env['DATAFLOW_CASSANDRA_CONTACT_POINTS'] ?? '127.0.0.1:19042').split(',');
  const localDataCenter = options.localDataCenter ?? process.env['DATAFLOW_CASSANDRA_LOCAL_DC'] ?? 'datacenter1';
  const postgresUrl = options.postgresUrl ?? process.env['DATAFLOW_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const records = options.records ?? 40_000;
  const rounds = options.rounds ?? 3;
  const batchSize = options.batchSize ?? 500;
  const concurrency = options.concurrency ?? 32;
  const name = `bench_cassandra_sink_${Date.now().toString(36)}`;

  const client = new Client({ contactPoints: [...contactPoints], localDataCenter, pooling: { maxRequestsPerConnection: 2048 } });
  const pool = new pg.Pool({ connectionString: postgresUrl, max: 4 });
  await client.connect();
  try {
    await client.execute(`CREATE KEYSPACE ${name} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    await client.execute(tableDdl(name, 'pipeline_rows'));
    await client.execute(tableDdl(name, 'raw_rows'));
    const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema: name, ensureSchema: true });
    const sinkDefinition: CassandraSinkDefinition = {
      type: 'cassandra',
      contactPoints: [...contactPoints],
      localDataCenter,
      keyspace: name,
      table: 'pipeline_rows',
      columns: COLUMNS,
      maxConcurrency: concurrency,
    };
    try {
      // Warm-up of both sides (JIT, prepared statements, connections), not measured.
      await runPipeline(persistence, sinkDefinition, client, 'warmup', 5_000, batchSize);
      await runRaw(client, name, 5_000, batchSize, concurrency);
      const pairs: { pipelineMs: number; rawMs: number }[] = [];
      for (let round = 0; round < rounds; round++) {
        await client.execute(`TRUNCATE ${name}.pipeline_rows`);
        await client.execute(`TRUNCATE ${name}.raw_rows`);
        let pipelineMs: number;
        let rawMs: number;
        if (round % 2 === 0) {
          pipelineMs = await runPipeline(persistence, sinkDefinition, client, `measured-${round}`, records, batchSize);
          rawMs = await runRaw(client, name, records, batchSize, concurrency);
        } else {
          rawMs = await runRaw(client, name, records, batchSize, concurrency);
          pipelineMs = await runPipeline(persistence, sinkDefinition, client, `measured-${round}`, records, batchSize);
        }
        const counts = await Promise.all(['pipeline_rows', 'raw_rows'].map((t) => countRows(client, name, t)));
        if (counts[0] !== records || counts[1] !== records) throw new Error(`row counts differ: pipeline ${counts[0]}, raw ${counts[1]}, expected ${records}`);
        pairs.push({ pipelineMs, rawMs });
      }
      const ratios = pairs.map((p) => round2(p.rawMs / p.pipelineMs));
      const pipelineMs = median(pairs.map((p) => p.pipelineMs));
      const rawMs = median(pairs.map((p) => p.rawMs));
      const result: CassandraSinkBenchResult = {
        records,
        batchSize,
        concurrency,
        pipelineRowsPerSec: Math.round(records / (pipelineMs / 1000)),
        rawRowsPerSec: Math.round(records / (rawMs / 1000)),
        ratio: round2(median(ratios)),
        ratios,
      };
      process.stdout.write(`Cassandra sink bench: ${records} rows per side, batch ${batchSize}, ${concurrency} statements in flight, ${rounds} alternating pairs\n`);
      console.table({
        'pipeline: generator → Cassandra sink, Postgres journal': { 'rows/s': result.pipelineRowsPerSec, 'median ms': Math.round(pipelineMs) },
        'raw driver: one prepared INSERT per row': { 'rows/s': result.rawRowsPerSec, 'median ms': Math.round(rawMs), ratio: result.ratio, pairs: ratios.join(' ') },
      });
      process.stdout.write(`${JSON.stringify({ bench: 'connectors.cassandra-sink', ...result })}\n`);
      return result;
    } finally {
      await persistence.close();
    }
  } finally {
    try {
      await client.execute(`DROP KEYSPACE IF EXISTS ${name}`);
      await pool.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
    } finally {
      await client.shutdown();
      await pool.end();
    }
  }
}

async function countRows(client: Client, keyspace: string, table: string): Promise<number> {
  const result = await client.execute(`SELECT count(*) AS n FROM ${keyspace}.${table}`, [], { readTimeout: 60_000 });
  return Number(result.first()?.['n'] ?? -1);
}

/** The pipeline from `start` until it stops at the end of its source; ms between the two. */
async function runPipeline(
  persistence: EntityPersistence,
  sinkDefinition: CassandraSinkDefinition,
  client: Client,
  pipelineId: string,
  records: number,
  batchSize: number,
): Promise<number> {
  const system = createActorSystem({ name: `bench-${pipelineId}` });
  try {
    let stopped: (state: PipelineState) => void = () => undefined;
    const done = new Promise<PipelineState>((resolve) => (stopped = resolve));
    const pipeline = system.spawn(
      pipelineActor({
        pipelineId: `${pipelineId}-${Date.now().toString(36)}`,
        persistence,
        connectors: {
          createSource: (definition) => createSource(definition),
          // The sink shares the bench's connected client, as the raw side does.
          createSink: () => new CassandraSink(sinkDefinition, { client }),
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
    const call = (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => askWithStatus<PipelineCommand, PipelineResult>(pipeline, build, { timeoutMs: 60_000 });
    const definition = { name: `bench-${pipelineId}`, source: generator(records), transforms: [], sink: sinkDefinition, batch: { size: batchSize, maxWaitMs: 100 } };
    await call((replyTo) => ({ type: 'create', definition, replyTo }));
    const start = performance.now();
    await call((replyTo) => ({ type: 'start', replyTo }));
    const state = await done;
    const ms = performance.now() - start;
    if (state.status !== 'stopped') throw new Error(`the bench pipeline ended ${state.status}: ${JSON.stringify(state)}`);
    return ms;
  } finally {
    await system.terminate();
  }
}

/** The same rows by hand: poll, convert, one prepared INSERT per row with `concurrency` in flight. */
async function runRaw(client: Client, keyspace: string, records: number, batchSize: number, concurrency: number): Promise<number> {
  const insert = `INSERT INTO ${keyspace}.raw_rows (metric_name, job, series, timestamp, value, labels) VALUES (?, ?, ?, ?, ?, ?)`;
  const source = new GeneratorSource(generator(records));
  const start = performance.now();
  await source.open({ pipelineId: 'raw', checkpoint: undefined, signal: new AbortController().signal });
  for (;;) {
    const polled = await source.poll(batchSize, 100);
    const rows = polled.records.flatMap((r) => (r.ok ? [r.value] : []));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < rows.length) {
        const row = rows[next++] as DataRecord;
        await client.execute(insert, [row['metric_name'], row['job'], row['series'], new Date(row['timestamp'] as number), row['value'], row['labels']], {
          prepare: true,
          isIdempotent: true,
          consistency: types.consistencies.localQuorum,
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, rows.length) }, worker));
    if (polled.done) break;
  }
  await source.close();
  return performance.now() - start;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runCassandraSinkBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
