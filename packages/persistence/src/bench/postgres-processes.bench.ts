/**
 * Benchmark of Postgres appends from many writer processes (ADR 0003): N
 * processes, one persistence id each, every one-event tagged append awaited,
 * all starting together. Three variants in the same run, on their own schemas:
 * - journal: this release's append_events (a lock per persistence id);
 * - one lock: the append_events of migration 1 (one exclusive lock per schema),
 *   the scheme this release replaced;
 * - raw INSERT: the same rows with one plain INSERT per append into a table
 *   without checks, locks or tag rows (the ceiling).
 * Prints a table and one JSON line; ratios are against the other variants of
 * the same run.
 *
 *   npx tsx --conditions=@dataflow/source src/bench/postgres-processes.bench.ts
 */
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { pgPoolExecutor } from '../postgres/pg-pool-executor.js';
import { migratePostgres, migrationStatements, postgresMigrations } from '../postgres/postgres-schema.js';
import { runWriterProcesses, type WriterChildConfig, type WriterChildResult } from '../postgres/postgres-writer-processes.test.js';

export interface ProcessBenchOptions {
  readonly postgresUrl?: string;
  readonly processes?: number;
  readonly appendsPerProcess?: number;
}

export interface ProcessVariantResult {
  readonly appendsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface ProcessBenchResult {
  readonly processes: number;
  readonly appendsPerProcess: number;
  readonly journal: ProcessVariantResult;
  readonly oneLock: ProcessVariantResult;
  readonly rawInsert: ProcessVariantResult;
  /** journal / one lock (appends per second). */
  readonly speedupVsOneLock: number;
  /** journal / raw INSERT (appends per second). */
  readonly ratioVsRawInsert: number;
}

/** Runs the three variants one after the other; prints a table and one JSON line. */
export async function runPostgresProcessBench(options: ProcessBenchOptions = {}): Promise<ProcessBenchResult> {
  const url = options.postgresUrl ?? process.env['DATAFLOW_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const processes = options.processes ?? 20;
  const appendsPerProcess = options.appendsPerProcess ?? 250;
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

    const run = async (schema: string, mode: WriterChildConfig['mode']): Promise<ProcessVariantResult> =>
      summarize(
        await runWriterProcesses(
          Array.from({ length: processes }, (_, w) => ({
            url,
            schema,
            writerId: `bench-${w}`,
            pids: [`bench-${w}`],
            appends: appendsPerProcess,
            eventsPerAppend: 1,
            tags: ['bench'],
            mode,
          })),
          600_000,
        ),
      );
    const journal = await run(schemas.journal, 'journal');
    const oneLock = await run(schemas.oneLock, 'journal');
    const rawInsert = await run(schemas.raw, 'raw');
    const result: ProcessBenchResult = {
      processes,
      appendsPerProcess,
      journal,
      oneLock,
      rawInsert,
      speedupVsOneLock: round(journal.appendsPerSec / oneLock.appendsPerSec),
      ratioVsRawInsert: round(journal.appendsPerSec / rawInsert.appendsPerSec),
    };
    process.stdout.write(`Postgres appends from ${processes} processes (${appendsPerProcess} awaited one-event appends each, one id per process)\n`);
    console.table({
      'journal (lock per id)': { ...journal, ratio: 1 },
      'one lock per schema (migration 1)': { ...oneLock, ratio: round(oneLock.appendsPerSec / journal.appendsPerSec) },
      'raw INSERT': { ...rawInsert, ratio: round(rawInsert.appendsPerSec / journal.appendsPerSec) },
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
  runPostgresProcessBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
