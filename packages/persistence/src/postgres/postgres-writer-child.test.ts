/**
 * A writer process on the Postgres journal, for the multi-process tests and
 * the benchmark (not a test itself: vitest only runs `*.{unit,int,e2e}.test.ts`).
 * Appends `appends` times to each of its persistence ids, each append awaited
 * (one writer per id), and prints one JSON line: the acknowledged events and
 * the latency of each append.
 *
 *   tsx postgres-writer-child.test.ts '<WriterChildConfig as JSON>'
 *
 * It prints `ready` once connected, and starts when a line arrives on stdin
 * (so the processes of one run overlap however long each took to start).
 *
 * Mode `raw` writes the same rows with one plain INSERT statement per append
 * into a table without the journal (the benchmark's baseline).
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createPostgresPersistence } from './postgres-persistence.js';

export interface WriterChildConfig {
  readonly url: string;
  readonly schema: string;
  readonly writerId: string;
  readonly pids: readonly string[];
  readonly appends: number;
  readonly eventsPerAppend: number;
  readonly tags: readonly string[];
  readonly mode: 'journal' | 'raw';
  /** Connections of the process's pool; default one per id. */
  readonly poolSize?: number;
}

export interface WriterChildResult {
  /** `[pid, sequenceNr]` of every acknowledged event. */
  readonly acknowledged: [string, number][];
  readonly latenciesMs: number[];
  readonly startedAt: number;
  readonly endedAt: number;
}

const config = JSON.parse(process.argv[2] ?? '') as WriterChildConfig;
const pool = new pg.Pool({ connectionString: config.url, max: config.poolSize ?? Math.max(1, config.pids.length) });
const acknowledged: [string, number][] = [];
const latenciesMs: number[] = [];

type Append = (pid: string, expected: number) => Promise<void>;
let append: Append;
let close: () => Promise<void>;
if (config.mode === 'journal') {
  const persistence = await createPostgresPersistence({ pool, schema: config.schema, checkSchema: false });
  append = async (pid, expected) => {
    const events = Array.from({ length: config.eventsPerAppend }, (_, k) => ({
      eventType: 'Written',
      payload: { writer: config.writerId, seq: expected + k + 1 },
      tags: config.tags,
    }));
    await persistence.journal.append(pid, events, { expectedSequenceNr: expected, writerId: config.writerId });
  };
  close = () => persistence.close();
} else {
  const table = `"${config.schema}".raw_events`;
  append = async (pid, expected) => {
    const seqs = Array.from({ length: config.eventsPerAppend }, (_, k) => expected + k + 1);
    const payloads = seqs.map((seq) => Buffer.from(JSON.stringify({ writer: config.writerId, seq })));
    await pool.query(`INSERT INTO ${table} (persistence_id, sequence_nr, payload, tags) SELECT $1, s, p, $4 FROM unnest($2::bigint[], $3::bytea[]) AS x(s, p)`, [
      pid,
      seqs,
      payloads,
      config.tags,
    ]);
  };
  close = () => pool.end();
}

process.stdout.write('ready\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
process.stdin.pause();
const startedAt = Date.now();
await Promise.all(
  config.pids.map(async (pid) => {
    for (let i = 0; i < config.appends; i++) {
      const expected = i * config.eventsPerAppend;
      const t0 = performance.now();
      await append(pid, expected);
      latenciesMs.push(performance.now() - t0);
      for (let k = 1; k <= config.eventsPerAppend; k++) acknowledged.push([pid, expected + k]);
    }
  }),
);
const endedAt = Date.now();
await close();
const result: WriterChildResult = { acknowledged, latenciesMs, startedAt, endedAt };
process.stdout.write(`${JSON.stringify(result)}\n`);
