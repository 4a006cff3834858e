/**
 * `npm start` as a real process (the command of the root `start` script, in
 * its own process group as a terminal runs it): the demo prints batch lines,
 * SIGINT stops it cleanly, a second start resumes from the checkpoint, and the
 * output file holds every record that passed the filter exactly once. Bad
 * settings exit with 78 and name the variable.
 */
import { GeneratorSource, type GeneratorSourceDefinition } from '@dataflow/connectors';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { demoOutputPath, demoPipeline } from './demo/demo-pipeline.js';

const root = resolve(import.meta.dirname, '../../..');

interface Run {
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves once stdout has `n` lines. */
  linesOut(n: number): Promise<void>;
  interrupt(): void;
  readonly exited: Promise<number | null>;
}

const groups: number[] = [];
afterEach(() => {
  // A node a failed test left running must not outlive the test.
  for (const pid of groups.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch (error) {
      if ((error as { code?: string }).code !== 'ESRCH') throw error;
    }
  }
});

function startNode(env: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--import', './apps/node/bin/early-signals.mjs', '--import', 'tsx', '--conditions=@dataflow/source', 'apps/node/src/main.ts'], {
    cwd: root,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) groups.push(child.pid);
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const collect = (into: string[]) => {
    let rest = '';
    return (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() ?? '';
      into.push(...parts);
      for (const w of waiters.filter((w) => stdout.length >= w.n)) w.resolve();
    };
  };
  child.stdout.on('data', collect(stdout));
  child.stderr.on('data', collect(stderr));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return {
    stdout,
    stderr,
    exited,
    linesOut: (n) =>
      Promise.race([
        new Promise<void>((done) => (stdout.length >= n ? done() : waiters.push({ n, resolve: done }))),
        exited.then((code) => {
          throw new Error(`the node exited (${code}) before printing ${n} lines:\n${stderr.join('\n')}`);
        }),
      ]),
    // Like Ctrl-C in a terminal: the whole foreground process group gets it.
    interrupt: () => process.kill(-(child.pid ?? 0), 'SIGINT'),
  };
}

interface LogLine {
  readonly log_level: string;
  readonly message: string;
  readonly offset?: number;
  readonly total_records?: number;
  readonly batches?: number;
}
const logLines = (run: Run): LogLine[] => run.stderr.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

/** `[demo] batch demo:7: 430 records (first: {"id":3001,...})` → { batch: 7, firstId: 3001 } */
function batchLine(line: string): { batch: number; firstId: number } {
  const m = /^\[demo\] batch demo:(\d+): \d+ records? \(first: \{"id":(\d+),/.exec(line);
  if (m === null) throw new Error(`not a batch line: ${line}`);
  return { batch: Number(m[1]), firstId: Number(m[2]) };
}

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'dataflow-node-e2e-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

describe('npm start', () => {
  it('runs the demo, stops on SIGINT, and resumes from the checkpoint writing every record once', { timeout: 180_000 }, async () => {
    const first = startNode({ DATAFLOW_DATA_DIR: dataDir });
    await first.linesOut(3);
    first.interrupt();
    expect(await first.exited).toBe(0);
    const firstBatches = first.stdout.map(batchLine);
    expect(firstBatches[0]).toEqual({ batch: 1, firstId: expect.any(Number) as unknown });
    const started = logLines(first).find((l) => l.message.startsWith('starting pipeline demo from the beginning'));
    expect(started).toBeDefined();
    const stopped = logLines(first).at(-1);
    expect(stopped?.message).toMatch(/^stopped pipeline demo at offset \d+ \(\d+ records processed, \d+ batches\); npm start resumes from there \(or one batch later, if the checkpoint being written at the stop landed\)$/);
    // One batch at a time: batch 3 was only read after batch 2's checkpoint.
    expect(stopped?.batches).toBeGreaterThanOrEqual(2);
    expect(logLines(first).filter((l) => l.log_level === 'error' || l.log_level === 'warn')).toEqual([]);

    const second = startNode({ DATAFLOW_DATA_DIR: dataDir });
    await second.linesOut(2);
    second.interrupt();
    expect(await second.exited).toBe(0);
    const resumed = logLines(second).find((l) => l.message.startsWith('resuming pipeline demo from offset'));
    // Where the first run said it stopped, or one batch later: a checkpoint already being appended at the stop lands.
    const landed = (resumed?.batches ?? 0) - (stopped?.batches ?? 0);
    expect(landed === 0 || landed === 1).toBe(true);
    if (landed === 0) expect(resumed).toMatchObject({ offset: stopped?.offset, total_records: stopped?.total_records });
    else expect(resumed?.offset).toBeGreaterThan(stopped?.offset ?? 0);
    const next = batchLine(second.stdout[0] ?? '');
    expect(next.batch).toBe((resumed?.batches ?? 0) + 1);
    expect(next.firstId).toBeGreaterThan(resumed?.offset ?? 0);
    const end = logLines(second).at(-1);
    expect(end?.message).toMatch(/^stopped pipeline demo at offset/);

    // Exactly once: the file holds, in order, each generated record up to the last checkpoint that passed the filter.
    const written = (await readFile(demoOutputPath(dataDir), 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { id: number }).id);
    const generator = new GeneratorSource(demoPipeline(dataDir).source as GeneratorSourceDefinition);
    const expected: number[] = [];
    for (let i = 0; i < (end?.offset ?? 0); i++) {
      const record = generator.recordAt(i) as { id: number; temperature: number };
      if (record.temperature > 0) expected.push(record.id);
    }
    expect(written.slice(0, expected.length)).toEqual(expected);
    // Past the checkpoint, at most the abandoned batch: the next start cuts it off and writes it again.
    const tail = written.slice(expected.length);
    expect(tail.length).toBeLessThanOrEqual(500);
    expect(tail.every((id) => id > (end?.offset ?? 0))).toBe(true);
    expect(new Set(written).size).toBe(written.length);
  });

  it.each([
    ['DATAFLOW_DATA_DIR', { DATAFLOW_DATA_DIR: 'UNDER_A_FILE' }, /DATAFLOW_DATA_DIR: the directory .*a-file\/data cannot be created or is not writable \(ENOTDIR/],
    ['DATAFLOW_POSTGRES_URL (scheme)', { DATAFLOW_POSTGRES_URL: 'mysql://root@127.0.0.1/x' }, /DATAFLOW_POSTGRES_URL: has the scheme mysql:/],
    ['DATAFLOW_POSTGRES_URL (unreachable)', { DATAFLOW_POSTGRES_URL: 'postgres://postgres:secret@127.0.0.1:1/dataflow' }, /DATAFLOW_POSTGRES_URL: cannot use postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/dataflow/],
    ['DATAFLOW_LOG_LEVEL', { DATAFLOW_LOG_LEVEL: 'loud' }, /DATAFLOW_LOG_LEVEL: is "loud"; .*expected one of/],
  ])('exits with 78 and a clear message for a bad %s', { timeout: 60_000 }, async (_name, env, message) => {
    const underAFile = join(dataDir, 'a-file', 'data');
    await writeFile(join(dataDir, 'a-file'), 'not a directory');
    const settings: Record<string, string> = { DATAFLOW_DATA_DIR: join(dataDir, 'bad-config'), ...env };
    if (settings['DATAFLOW_DATA_DIR'] === 'UNDER_A_FILE') settings['DATAFLOW_DATA_DIR'] = underAFile;
    const run = startNode(settings);
    expect(await run.exited).toBe(78);
    const last = logLines(run).at(-1);
    expect(last?.log_level).toBe('error');
    expect(last?.message).toMatch(message);
    expect(run.stdout).toEqual([]);
  });
});
