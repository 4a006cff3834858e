/**
 * The done-criterion of the pipelines issue: a file → filter → map → file
 * pipeline on the real Postgres journal, in a child process killed with
 * SIGKILL part-way (at seeded random moments, and once exactly between a sink
 * write and the checkpoint that would cover it), restarted each time and then
 * run to the end, writes every expected record exactly once and in order
 * across its rotated output files.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recoveredOf, runKillPlan, seeded, type KillStep } from './harness/crash-harness.js';

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

/** The pipeline under test; `expectedOutput` applies its filter and map by hand. */
function crashPipelineDefinition(input: string, output: string) {
  return {
    name: 'file-crash-test',
    source: { type: 'file', path: input, format: 'ndjson' },
    transforms: [
      { type: 'filter', expression: 'status != "test"' },
      { type: 'map', rename: [{ from: 'value', to: 'amount' }], set: [{ to: 'pipeline', value: 'crash-test' }], drop: ['status'] },
    ],
    sink: { type: 'file', path: output, format: 'jsonl', maxBytes: MAX_BYTES },
    batch: { size: BATCH_SIZE, maxWaitMs: 100 },
    retry: { maxRetries: 0 },
  };
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
    const random = seeded(SEED);
    // Each kill lands in a later slice of the input, so every incarnation makes progress of its own.
    const plan: KillStep[] = [
      { kind: 'random', atRecords: Math.round(RECORDS * (0.1 + 0.2 * random())), delayMs: Math.floor(random() * 25) },
      { kind: 'after-write', writes: 3 + Math.floor(random() * 10) },
      { kind: 'random', atRecords: Math.round(RECORDS * (0.55 + 0.2 * random())), delayMs: Math.floor(random() * 25) },
    ];
    const recoveredCheckpoints: ({ index: number; bytes: number } | null)[] = [];
    const { runs, kills } = await runKillPlan(
      { postgresUrl: serviceSettings().postgresUrl, schema: schema(), pipelineId: 'file-crash', definition: crashPipelineDefinition(input, output) },
      plan,
      async () => ({
        outputAtKill: (await outputLines(output)).length,
        sizesAtKill: await Promise.all((await outputSegments(output)).map(async (file) => (await stat(file)).size)),
      }),
    );
    expect(runs.at(-1)?.messages.at(-1)).toMatchObject({ type: 'done', records: RECORDS });

    // What each later incarnation recovered is the checkpoint its predecessor died with.
    for (const run of runs.slice(1)) {
      const recovered = recoveredOf(run);
      expect(recovered).toMatchObject({ type: 'recovered', status: 'running' });
      recoveredCheckpoints.push((recovered?.checkpoint?.sinkPosition as { index: number; bytes: number } | undefined) ?? null);
    }
    const expected = expectedOutput();
    const report = kills.map((kill, i) => {
      const { index, bytes } = recoveredCheckpoints[i] ?? { index: 0, bytes: 0 };
      const { outputAtKill, sizesAtKill } = kill.measured;
      const beyondCheckpoint = sizesAtKill.length > index + 1 || (sizesAtKill[index] ?? 0) > bytes;
      return { kind: kill.kind, outputAtKill, progressed: kill.progressed, beyondCheckpoint };
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
