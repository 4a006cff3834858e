/**
 * The done-criterion of the pipelines issue: a file → filter → map → file
 * pipeline on the real Postgres journal, in a child process killed with
 * SIGKILL part-way (at seeded random moments, and once exactly between a sink
 * write and the checkpoint that would cover it), restarted each time and then
 * run to the end, writes every expected record exactly once and in order
 * across its rotated output files.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const child = fileURLToPath(new URL('./file-pipeline-crash-child.test.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');

const RECORDS = 100_000;
const BATCH_SIZE = 500;
const MAX_BYTES = 1_000_000;
const SEED = 0x5eed_2024;

/** Input record `i`: one in 20 has status "test" and is dropped by the filter. */
function inputRecord(i: number) {
  return { id: i, name: `rec-${i}`, status: i % 20 === 7 ? 'test' : 'live', value: (i * 7919) % 1000 };
}

/** What the pipeline's filter and map make of the input, in order. */
function expectedOutput() {
  const out: Record<string, unknown>[] = [];
  for (let i = 1; i <= RECORDS; i++) {
    const r = inputRecord(i);
    if (r.status !== 'test') out.push({ id: r.id, name: r.name, amount: r.value, pipeline: 'crash-test' });
  }
  return out;
}

/** Small seeded generator (mulberry32): the same kill moments on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type ChildMessage =
  | { type: 'recovered'; status: string; records: number; checkpoint: { sinkPosition: { index: number; bytes: number } | null } | null }
  | { type: 'progress'; records: number }
  | { type: 'hung'; position: unknown }
  | { type: 'done'; records: number }
  | { type: 'error'; message: string }
  | { type: 'batch-failed'; error: string };

interface ChildOutcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly messages: readonly ChildMessage[];
  readonly stderr: string;
}

/**
 * Runs the pipeline process; `onMessage` sees every line it reports and may
 * kill it. Resolves when the process has ended.
 */
function runChild(env: Record<string, string>, onMessage: (message: ChildMessage, kill: () => void) => void): Promise<ChildOutcome> {
  const proc = spawn(process.execPath, ['--conditions=@dataflow/source', '--import', tsx, child], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const messages: ChildMessage[] = [];
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const kill = () => proc.kill('SIGKILL');
  createInterface({ input: proc.stdout }).on('line', (line) => {
    const message = JSON.parse(line) as ChildMessage;
    messages.push(message);
    onMessage(message, kill);
  });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code, signal) => resolve({ code, signal, messages, stderr }));
  });
}

/** The sink's files in rotation order: `out.jsonl`, `out.jsonl.1`, ... */
async function outputSegments(path: string): Promise<string[]> {
  const segments: string[] = [];
  for (let index = 0; ; index++) {
    const file = index === 0 ? path : `${path}.${index}`;
    try {
      await stat(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return segments;
      throw error;
    }
    segments.push(file);
  }
}

async function outputLines(path: string): Promise<string[]> {
  const lines: string[] = [];
  for (const file of await outputSegments(path)) {
    const text = await readFile(file, 'utf8');
    if (text.length > 0 && !text.endsWith('\n')) throw new Error(`${file} ends in a partial line`);
    lines.push(...text.split('\n').slice(0, -1));
  }
  return lines;
}

/** Loss, duplicates and order of the output ids against the expected ids. */
function audit(expectedIds: readonly number[], actualIds: readonly number[]) {
  const seen = new Set<number>();
  let duplicates = 0;
  for (const id of actualIds) {
    if (seen.has(id)) duplicates++;
    seen.add(id);
  }
  const missing = expectedIds.filter((id) => !seen.has(id)).length;
  const firstOutOfOrder = actualIds.findIndex((id, i) => id !== expectedIds[i]);
  return { count: actualIds.length, duplicates, missing, firstOutOfOrder };
}

describe('file pipeline crash test', () => {
  let dir: string;
  let pool: pg.Pool;
  const schema = () => testNamespace(import.meta.url);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dataflow-crash-'));
    pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 1 });
  });

  afterAll(async () => {
    await pool?.query(`DROP SCHEMA IF EXISTS "${schema()}" CASCADE`);
    await pool?.end();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every record exactly once, in order, through SIGKILLs at random moments and between a sink write and its checkpoint', { timeout: 300_000 }, async () => {
    const input = join(dir, 'input.ndjson');
    const output = join(dir, 'out', 'records.jsonl');
    let text = '';
    for (let i = 1; i <= RECORDS; i++) text += `${JSON.stringify(inputRecord(i))}\n`;
    await writeFile(input, text);
    const env = {
      CRASH_POSTGRES_URL: serviceSettings().postgresUrl,
      CRASH_SCHEMA: schema(),
      CRASH_PIPELINE_ID: 'file-crash',
      CRASH_INPUT: input,
      CRASH_OUTPUT: output,
      CRASH_MAX_BYTES: String(MAX_BYTES),
      CRASH_BATCH_SIZE: String(BATCH_SIZE),
    };
    const random = seeded(SEED);
    // Each kill lands in a later slice of the input, so every incarnation makes progress of its own.
    const plan: ({ kind: 'random'; atRecords: number; delayMs: number } | { kind: 'after-write'; writes: number })[] = [
      { kind: 'random', atRecords: Math.round(RECORDS * (0.1 + 0.2 * random())), delayMs: Math.floor(random() * 25) },
      { kind: 'after-write', writes: 3 + Math.floor(random() * 10) },
      { kind: 'random', atRecords: Math.round(RECORDS * (0.55 + 0.2 * random())), delayMs: Math.floor(random() * 25) },
    ];

    const kills: { kind: string; outputAtKill: number; sizesAtKill: number[]; progressed: number }[] = [];
    const recoveredCheckpoints: ({ index: number; bytes: number } | null)[] = [];
    const runs: ChildOutcome[] = [];
    for (const step of plan) {
      let armed = false;
      let progressed = 0;
      const outcome = await runChild(step.kind === 'after-write' ? { ...env, CRASH_HANG_AFTER_WRITES: String(step.writes) } : env, (message, kill) => {
        if (message.type === 'progress') progressed++;
        if (step.kind === 'after-write') {
          if (message.type === 'hung') kill();
          return;
        }
        if (!armed && message.type === 'progress' && message.records >= step.atRecords) {
          armed = true;
          setTimeout(kill, step.delayMs);
        }
      });
      runs.push(outcome);
      expect(outcome.signal, `${step.kind} kill: the process ended by itself (code ${outcome.code}): ${outcome.stderr}`).toBe('SIGKILL');
      const segments = await outputSegments(output);
      kills.push({
        kind: step.kind,
        outputAtKill: (await outputLines(output)).length,
        sizesAtKill: await Promise.all(segments.map(async (file) => (await stat(file)).size)),
        progressed,
      });
    }
    const final = await runChild(env, () => undefined);
    runs.push(final);
    expect(final.code, `the last run failed: ${JSON.stringify(final.messages.slice(-3))} ${final.stderr}`).toBe(0);
    expect(final.messages.at(-1)).toMatchObject({ type: 'done', records: RECORDS });

    // What each later incarnation recovered is the checkpoint its predecessor died with.
    for (const run of runs.slice(1)) {
      const recovered = run.messages.find((m) => m.type === 'recovered');
      expect(recovered).toMatchObject({ type: 'recovered', status: 'running' });
      recoveredCheckpoints.push(recovered?.type === 'recovered' ? (recovered.checkpoint?.sinkPosition ?? null) : null);
    }
    const expected = expectedOutput();
    const report = kills.map((kill, i) => {
      const { index, bytes } = recoveredCheckpoints[i] ?? { index: 0, bytes: 0 };
      const beyondCheckpoint = kill.sizesAtKill.length > index + 1 || (kill.sizesAtKill[index] ?? 0) > bytes;
      return { kind: kill.kind, outputAtKill: kill.outputAtKill, progressed: kill.progressed, beyondCheckpoint };
    });
    console.log(`crash test (seed ${SEED}): ${JSON.stringify(report)}`);
    for (const kill of report) {
      // Each kill really happened mid-run, after this incarnation completed batches of its own.
      expect(kill.outputAtKill, `${kill.kind} kill`).toBeGreaterThan(0);
      expect(kill.outputAtKill, `${kill.kind} kill`).toBeLessThan(expected.length);
      expect(kill.progressed, `${kill.kind} kill`).toBeGreaterThan(1);
    }
    // The kill after a durable sink write left output the checkpoint does not cover: the restart must cut it off.
    expect(report.find((kill) => kill.kind === 'after-write')?.beyondCheckpoint).toBe(true);

    const lines = await outputLines(output);
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(audit(expected.map((r) => r['id'] as number), records.map((r) => r['id'] as number))).toEqual({
      count: expected.length,
      duplicates: 0,
      missing: 0,
      firstOutOfOrder: -1,
    });
    expect(records.findIndex((r, i) => !isDeepStrictEqual(r, expected[i]))).toBe(-1);
    expect((await outputSegments(output)).length).toBeGreaterThan(3);
  });
});
