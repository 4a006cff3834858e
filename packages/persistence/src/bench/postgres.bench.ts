/**
 * Benchmark of the Postgres journal (one run, own schemas, dropped at the end):
 * - write: many actors appending 1-5 events at a time through the journal,
 *   versus plain multi-row INSERTs of the same rows, in the same chunks and
 *   with the same concurrency, into an identical table (no conflict check,
 *   no append lock, no tag rows);
 * - batching: events of one persistence id appended 100 per call versus
 *   awaited one by one;
 * - PGlite: events per second appended to the embedded store on a data directory;
 * then, from the command line, `runPostgresProcessBench()` (20 writer processes).
 *
 *   npx tsx --conditions=@dataflow/source src/bench/postgres.bench.ts
 *
 * Connection: DATAFLOW_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { JsonSerializer } from '@dataflow/core';
import pg from 'pg';
import { createPglitePersistence } from '../pglite/pglite-persistence.js';
import { createPostgresPersistence, type PostgresPersistence } from '../postgres/postgres-persistence.js';
import { ensureSchema } from '../postgres/postgres-schema.js';
import { pgPoolExecutor } from '../postgres/pg-pool-executor.js';
import { runPostgresProcessBench } from './postgres-processes.bench.js';
import { BENCH_PAYLOAD } from './bench-settings.js';

export interface PostgresBenchOptions {
  readonly postgresUrl?: string;
  readonly actors?: number;
  readonly eventsPerActor?: number;
  /** Pool size, shared by the journal and the raw inserts. */
  readonly poolSize?: number;
  readonly batchedEvents?: number;
  readonly oneByOneEvents?: number;
  readonly pgliteEvents?: number;
}

export interface PostgresBenchResult {
  readonly writeJournalEventsPerSec: number;
  readonly writeRawRowsPerSec: number;
  /** Journal throughput as a fraction of the raw insert's. */
  readonly writeRatio: number;
  readonly batchedEventsPerSec: number;
  readonly oneByOneEventsPerSec: number;
  readonly batchedSpeedup: number;
  readonly pgliteEventsPerSec: number;
}


/** Runs the comparisons; prints a table and one JSON line. */
export async function runPostgresBench(options: PostgresBenchOptions = {}): Promise<PostgresBenchResult> {
  const postgresUrl = options.postgresUrl ?? process.env['DATAFLOW_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const actors = options.actors ?? 200;
  const eventsPerActor = options.eventsPerActor ?? 50;
  const poolSize = options.poolSize ?? 16;
  const batchedEvents = options.batchedEvents ?? 10_000;
  const oneByOneEvents = options.oneByOneEvents ?? 1_000;
  const pgliteEvents = options.pgliteEvents ?? 5_000;
  const suffix = Date.now().toString(36);
  const schema = `bench_pg_${suffix}`;
  const rawSchema = `bench_pg_raw_${suffix}`;

  const pool = new pg.Pool({ connectionString: postgresUrl, max: poolSize });
  let persistence: PostgresPersistence | undefined;
  try {
    persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
    await ensureSchema(pgPoolExecutor(pool, { ownsPool: false }), rawSchema);
    const journal = persistence.journal;
    const total = actors * eventsPerActor;

    const journalMs = await timed(() =>
      forEachActor(actors, eventsPerActor, async (pid, from, size) => {
        const events = Array.from({ length: size }, (_, i) => ({ eventType: 'Tick', payload: { ...BENCH_PAYLOAD, n: from + i }, tags: ['bench'] }));
        await journal.append(pid, events, { expectedSequenceNr: from - 1, writerId: 'bench' });
      }),
    );
    const json = new JsonSerializer();
    const rawMs = await timed(() =>
      forEachActor(actors, eventsPerActor, async (pid, from, size) => {
        const params: unknown[] = [];
        const tuples = Array.from({ length: size }, (_, i) => {
          const bytes = Buffer.from(json.serialize({ ...BENCH_PAYLOAD, n: from + i }, { eventType: 'Tick', schemaVersion: 1 }));
          params.push(pid, from + i, 'bench', 'Tick', 1, 'json', bytes, ['bench'], Date.now());
          const base = i * 9;
          return `(${Array.from({ length: 9 }, (_, k) => `$${base + k + 1}`).join(', ')})`;
        });
        await pool.query(
          `INSERT INTO "${rawSchema}".event_journal (persistence_id, sequence_nr, writer_id, event_type, schema_version, serializer_id, payload, tags, written_at) VALUES ${tuples.join(', ')}`,
          params,
        );
      }),
    );

    const batchedMs = await timed(async () => {
      for (let from = 1; from <= batchedEvents; from += 100) {
        const events = Array.from({ length: Math.min(100, batchedEvents - from + 1) }, (_, i) => ({ eventType: 'Tick', payload: { ...BENCH_PAYLOAD, n: from + i } }));
        await journal.append('batched', events, { expectedSequenceNr: from - 1, writerId: 'bench' });
      }
    });
    const oneByOneMs = await timed(async () => {
      for (let n = 1; n <= oneByOneEvents; n++) {
        await journal.append('one-by-one', [{ eventType: 'Tick', payload: { ...BENCH_PAYLOAD, n } }], { expectedSequenceNr: n - 1, writerId: 'bench' });
      }
    });

    const pgliteEventsPerSec = await benchPglite(pgliteEvents);

    const result: PostgresBenchResult = {
      writeJournalEventsPerSec: Math.round(total / (journalMs / 1000)),
      writeRawRowsPerSec: Math.round(total / (rawMs / 1000)),
      writeRatio: round(rawMs / journalMs),
      batchedEventsPerSec: Math.round(batchedEvents / (batchedMs / 1000)),
      oneByOneEventsPerSec: Math.round(oneByOneEvents / (oneByOneMs / 1000)),
      batchedSpeedup: round(batchedEvents / batchedMs / (oneByOneEvents / oneByOneMs)),
      pgliteEventsPerSec,
    };
    process.stdout.write(`Postgres journal bench (${actors} actors x ${eventsPerActor} events, 1-5 per append, pool ${poolSize})\n`);
    console.table({
      'write: journal append': { 'events/s': result.writeJournalEventsPerSec },
      'write: raw multi-row INSERT': { 'events/s': result.writeRawRowsPerSec, ratio: result.writeRatio },
      'one id: 100 per append': { 'events/s': result.batchedEventsPerSec },
      'one id: 1 per awaited append': { 'events/s': result.oneByOneEventsPerSec, ratio: result.batchedSpeedup },
      'PGlite (data dir): 10 per append': { 'events/s': result.pgliteEventsPerSec },
    });
    process.stdout.write(`${JSON.stringify({ bench: 'postgres', ...result })}\n`);
    return result;
  } finally {
    await persistence?.close();
    try {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.query(`DROP SCHEMA IF EXISTS "${rawSchema}" CASCADE`);
    } finally {
      await pool.end();
    }
  }
}

/** Every actor appends its events in chunks of 1-5, all actors concurrently (the pool bounds concurrency). */
async function forEachActor(actors: number, eventsPerActor: number, append: (pid: string, from: number, size: number) => Promise<void>): Promise<void> {
  await Promise.all(
    Array.from({ length: actors }, async (_, a) => {
      let written = 0;
      let k = a;
      while (written < eventsPerActor) {
        const size = Math.min(1 + (k++ % 5), eventsPerActor - written);
        await append(`actor-${a}`, written + 1, size);
        written += size;
      }
    }),
  );
}

async function benchPglite(events: number): Promise<number> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dataflow-bench-pglite-'));
  const persistence = await createPglitePersistence({ dataDir });
  try {
    const ms = await timed(async () => {
      for (let from = 1; from <= events; from += 10) {
        const batch = Array.from({ length: Math.min(10, events - from + 1) }, (_, i) => ({ eventType: 'Tick', payload: { ...BENCH_PAYLOAD, n: from + i }, tags: ['bench'] }));
        await persistence.journal.append('pglite', batch, { expectedSequenceNr: from - 1, writerId: 'bench' });
      }
    });
    return Math.round(events / (ms / 1000));
  } finally {
    await persistence.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

async function timed(task: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await task();
  return performance.now() - start;
}

const round = (x: number): number => Math.round(x * 100) / 100;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  // The multi-process comparison (postgres-processes.bench.ts) runs after, so `nx bench` covers both.
  runPostgresBench()
    .then(() => runPostgresProcessBench())
    .catch((error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    });
}
