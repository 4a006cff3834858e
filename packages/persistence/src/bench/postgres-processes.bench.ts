/**
 * Benchmark of Postgres appends from many writer processes (ADR 0003): N
 * processes all starting together, every one-event tagged append awaited, in
 * two shapes:
 * - one id per process: each process has a single writer, so each append is
 *   its own transaction and commit (the worst case; no group commit);
 * - a node's shape: `entitiesPerNode` ids per process (10 by default), each
 *   awaiting its own appends, so the journal's group commit can share a
 *   transaction between the ids of one process.
 * Three variants per shape, on their own schemas, in the same run:
 * - journal: this release's append_events (a lock per persistence id);
 * - one lock: the append_events of migration 1 (one exclusive lock per schema),
 *   the scheme this release replaced;
 * - raw INSERT: the same rows with one plain INSERT per append into a table
 *   without checks, locks or tag rows (the ceiling).
 * Every process has a pool of one connection per id, at most
 * `connectionsPerNode` (3 by default: 20 processes stay within Postgres's
 * default 100 connections).
 * Prints a table and one JSON line; ratios are against the other variants of
 * the same run.
 *
 *   npx tsx --conditions=@dataflow/source src/bench/postgres-processes.bench.ts [--appends-per-process=2000]
 */
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { pgPoolExecutor } from '../postgres/pg-pool-executor.js';
import { migratePostgres, migrationStatements, postgresMigrations } from '../postgres/postgres-schema.js';
import { runWriterProcesses, type WriterChildConfig, type WriterChildResult } from '../postgres/postgres-writer-processes.test.js';

export interface ProcessBenchOptions {
  readonly postgresUrl?: string;
  readonly processes?: number;
  /** Appends per process in the one-id shape (default 250). */
  readonly appendsPerProcess?: number;
  /** Ids per process in the node shape (default 10); 0 skips that shape. */
  readonly entitiesPerNode?: number;
  /** Appends per id in the node shape (default 50). */
  readonly appendsPerEntity?: number;
  /** Pool size of each process in the node shape (default 3). */
  readonly connectionsPerNode?: number;
}

export interface ProcessVariantResult {
  readonly appendsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface ProcessShapeResult {
  readonly idsPerProcess: number;
  readonly appendsPerId: number;
  readonly connectionsPerProcess: number;
  readonly journal: ProcessVariantResult;
  readonly oneLock: ProcessVariantResult;
  readonly rawInsert: ProcessVariantResult;
  /** journal / one lock (appends per second). */
  readonly speedupVsOneLock: number;
  /** journal / raw INSERT (appends per second). */
  readonly ratioVsRawInsert: number;
}

export interface ProcessBenchResult extends ProcessShapeResult {
  readonly processes: number;
  readonly appendsPerProcess: number;
  /** The node shape (`entitiesPerNode` ids per process), when run. */
  readonly node: ProcessShapeResult | undefined;
}

/** Runs the three variants of each shape one after the other; prints a table and one JSON line. */
export async function runPostgresProcessBench(options: ProcessBenchOptions = {}): Promise<ProcessBenchResult> {
  const url = options.postgresUrl ?? process.env['DATAFLOW_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const processes = options.processes ?? 20;
  const appendsPerProcess = options.appendsPerProcess ?? 250;
  const entitiesPerNode = options.entitiesPerNode ?? 10;
  const appendsPerEntity = options.appendsPerEntity ?? 50;
  const connectionsPerNode = options.connectionsPerNode ?? 3;
  const suffix = Date.now().toString(36);
  const schemas = { journal: `bench_proc_${suffix}`, oneLock: `bench_proc_old_${suffix}`, raw: `bench_proc_raw_${suffix}` };
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    await migratePostgres(pgPoolExecutor(pool, { ownsPool: false }), schemas.journal);
    const [first] = await postgresMigrations();
    if (first === undefined) throw new Error('no migrations');
    for (const sql of migrationStatements(first, schemas.oneLock)) await pool.query(sql);
    await pool.query(`CREATE SCHEMA "${schemas.raw}"`);
    await pool.query(`CREATE TABLE "${schemas.raw}".raw_events (
      ordering BIGSERIAL, persistence_id TEXT NOT NULL, sequence_nr BIGINT NOT NULL, payload BYTEA NOT NULL, tags TEXT[] NOT NULL,
      PRIMARY KEY (persistence_id, sequence_nr))`);

    const run = async (schema: string, mode: WriterChildConfig['mode'], shape: string, ids: number, appends: number): Promise<ProcessVariantResult> =>
      summarize(
        await runWriterProcesses(
          Array.from({ length: processes }, (_, w) => ({
            url,
            schema,
            writerId: `bench-${shape}-${w}`,
            pids: Array.from({ length: ids }, (_, e) => `bench-${shape}-${w}-${e}`),
            appends,
            eventsPerAppend: 1,
            tags: ['bench'],
            mode,
            poolSize: Math.min(ids, connectionsPerNode),
          })),
          600_000,
        ),
      );
    const runShape = async (shape: string, ids: number, appends: number): Promise<ProcessShapeResult> => {
      const journal = await run(schemas.journal, 'journal', shape, ids, appends);
      const oneLock = await run(schemas.oneLock, 'journal', shape, ids, appends);
      const rawInsert = await run(schemas.raw, 'raw', shape, ids, appends);
      return {
        idsPerProcess: ids,
        appendsPerId: appends,
        connectionsPerProcess: Math.min(ids, connectionsPerNode),
        journal,
        oneLock,
        rawInsert,
        speedupVsOneLock: round(journal.appendsPerSec / oneLock.appendsPerSec),
        ratioVsRawInsert: round(journal.appendsPerSec / rawInsert.appendsPerSec),
      };
    };
    const single = await runShape('one', 1, appendsPerProcess);
    const node = entitiesPerNode > 0 ? await runShape('node', entitiesPerNode, appendsPerEntity) : undefined;
    const result: ProcessBenchResult = { processes, appendsPerProcess, ...single, node };
    process.stdout.write(`Postgres appends from ${processes} processes (awaited one-event tagged appends; goal >= 5000 appends/s)\n`);
    const rows = (label: string, r: ProcessShapeResult): Record<string, ProcessVariantResult & { ratio: number }> => ({
      [`${label}: journal (lock per id)`]: { ...r.journal, ratio: 1 },
      [`${label}: one lock per schema (migration 1)`]: { ...r.oneLock, ratio: round(r.oneLock.appendsPerSec / r.journal.appendsPerSec) },
      [`${label}: raw INSERT`]: { ...r.rawInsert, ratio: round(r.rawInsert.appendsPerSec / r.journal.appendsPerSec) },
    });
    console.table({
      ...rows(`1 id/process x ${appendsPerProcess}`, single),
      ...(node === undefined ? {} : rows(`${entitiesPerNode} ids/process x ${appendsPerEntity}`, node)),
    });
    process.stdout.write(`${JSON.stringify({ bench: 'postgres-processes', ...result })}\n`);
    return result;
  } finally {
    try {
      for (const schema of Object.values(schemas)) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    } finally {
      await pool.end();
    }
  }
}

/** Throughput over the span from the first start to the last end; latency percentiles of all appends. */
function summarize(results: readonly WriterChildResult[]): ProcessVariantResult {
  const start = Math.min(...results.map((r) => r.startedAt));
  const end = Math.max(...results.map((r) => r.endedAt));
  const latencies = results.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
  const at = (q: number): number => round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0);
  return { appendsPerSec: Math.round(latencies.length / ((end - start) / 1000)), p50Ms: at(0.5), p99Ms: at(0.99) };
}

const round = (x: number): number => Math.round(x * 100) / 100;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // `--appends-per-process=N`: a longer run measures the processes past their JIT warm-up (20 of them share the cores).
  const appends = process.argv.slice(2).find((a) => a.startsWith('--appends-per-process='));
  const appendsPerProcess = appends === undefined ? undefined : Number(appends.split('=')[1]);
  if (appendsPerProcess !== undefined && !(Number.isInteger(appendsPerProcess) && appendsPerProcess > 0)) {
    process.stderr.write(`--appends-per-process must be a positive integer, got ${appends}\n`);
    process.exit(2);
  }
  runPostgresProcessBench(appendsPerProcess === undefined ? {} : { appendsPerProcess }).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
