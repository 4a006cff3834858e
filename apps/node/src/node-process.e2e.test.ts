/**
 * `npm start` and the node process under the ways a process ends badly
 * (issue 9 defects 10, 13, 15, 16; issue 10 item 2): a signal sent to the
 * npm process alone (as a process manager sends it) must not orphan the
 * node; a second node on the same data directory fails at once naming the
 * holder; a signal in the first instant is reported; an existing output is
 * not truncated by a start without a checkpoint; a damaged embedded journal
 * is reported with the store's own error; two nodes on one Postgres schema
 * or one Cassandra keyspace: the second is refused at start naming the
 * first, which runs on.
 *
 * Each test starts from a copy of one embedded journal directory created
 * once (creating one runs initdb, slow on a loaded machine).
 */
import { initializeDataDirectory } from '@dataflow/persistence';
import { freePort, serviceSettings, testNamespace } from '@dataflow/test-env';
import { Client as CassandraClient } from 'cassandra-driver';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');

interface Run {
  readonly child: ChildProcess;
  readonly stdout: string[];
  readonly stderr: string[];
  /** Resolves once stdout has `n` lines; rejects if the process exits first. */
  linesOut(n: number): Promise<void>;
  readonly exited: Promise<number | null>;
}

const groups: number[] = [];
afterEach(() => {
  // A process a failed test left running must not outlive the test.
  for (const pid of groups.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch (error) {
      if ((error as { code?: string }).code !== 'ESRCH') throw error;
    }
  }
});

function launch(command: string, args: readonly string[], env: Record<string, string>): Run {
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
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
  child.stdout?.on('data', collect(stdout));
  child.stderr?.on('data', collect(stderr));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return {
    child,
    stdout,
    stderr,
    exited,
    linesOut: (n) =>
      Promise.race([
        new Promise<void>((done) => (stdout.length >= n ? done() : waiters.push({ n, resolve: done }))),
        exited.then((code) => {
          throw new Error(`the process exited (${code}) before printing ${n} lines:\n${stderr.join('\n')}`);
        }),
      ]),
  };
}

const npmStart = (env: Record<string, string>): Run => launch('npm', ['start', '--silent'], env);
/** The command of the root `start` script, without npm; `preload` goes between the signal module and tsx. */
const nodeMain = (env: Record<string, string>, preload: readonly string[] = []): Run =>
  launch(process.execPath, ['--import', './apps/node/bin/early-signals.mjs', ...preload, '--import', 'tsx', '--conditions=@dataflow/source', 'apps/node/src/main.ts'], env);

interface LogLine {
  readonly log_level: string;
  readonly message: string;
}
const logLines = (run: Run): LogLine[] => run.stderr.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
const errors = (run: Run): string[] => logLines(run).filter((l) => l.log_level === 'error').map((l) => l.message);

/** Every process below `pid` (children, grandchildren, ...). */
function descendants(pid: number): number[] {
  const table = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift() as number;
    for (const [child, ppid] of table) {
      if (ppid === parent) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'ESRCH') return false;
    throw error;
  }
}

let work: string;
let template: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dataflow-node-process-'));
  template = join(work, 'template');
  await initializeDataDirectory(join(template, 'journal'), { timeoutMs: 300_000 });
}, 320_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** A fresh data directory holding a copy of the initialized, empty embedded journal. */
async function dataDir(name: string): Promise<string> {
  const dir = join(work, name);
  await cp(template, dir, { recursive: true });
  return dir;
}

describe('npm start, stopped as a process manager stops it', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    'stops the node on %s sent to the npm process alone, leaving no process; a second npm start on the data directory is refused at once, naming the holder',
    { timeout: 300_000 },
    async (signal) => {
      const dir = await dataDir(`signal-${signal}`);
      const first = npmStart({ DATAFLOW_DATA_DIR: dir });
      await first.linesOut(2);
      const tree = descendants(first.child.pid ?? 0);
      const node = tree.find((pid) => execFileSync('ps', ['-o', 'args=', '-p', String(pid)], { encoding: 'utf8' }).includes('apps/node/src/main.ts'));
      expect(node).toBeDefined();

      const second = npmStart({ DATAFLOW_DATA_DIR: dir });
      expect(await second.exited).not.toBe(0);
      expect(errors(second).at(-1)).toMatch(new RegExp(`^cannot start: DATAFLOW_DATA_DIR: The data directory .*/journal is in use by process ${node} on `));
      expect(second.stdout).toEqual([]);

      process.kill(first.child.pid ?? 0, signal); // npm alone, not its process group
      expect(await first.exited).toBe(0);
      // No process of the tree outlives npm for longer than the node's shutdown timeout.
      await vi.waitFor(() => expect(tree.filter(alive)).toEqual([]), { timeout: 30_000, interval: 100 });
      const last = logLines(first).at(-1);
      expect(last?.message).toMatch(/^stopped pipeline demo at offset \d+ .*; npm start resumes from there \(or one batch later, .*\)$/);
      expect(logLines(first)).toContainEqual(expect.objectContaining({ message: `${signal} received: stopping` }));
    },
  );

  it('reports a SIGINT that comes while the node is still loading, and exits 0', { timeout: 120_000 }, async () => {
    // A marker module preloaded right after the signal module and before tsx: the signal comes before any TypeScript is loaded.
    const marker = `data:text/javascript,process.stderr.write('preloaded\\n')`;
    const run = nodeMain({ DATAFLOW_DATA_DIR: join(work, 'early') }, ['--import', marker]);
    await vi.waitFor(() => expect(run.stderr).toContain('preloaded'), { timeout: 60_000, interval: 5 });
    process.kill(run.child.pid ?? 0, 'SIGINT');
    expect(await run.exited).toBe(0);
    expect(logLines(run).map((l) => l.message)).toContainEqual(expect.stringMatching(/^SIGINT received while starting: /));
  });
});

describe('the node refuses to lose data it cannot account for', () => {
  it('does not truncate an existing output when the journal has no checkpoint for it, unless DATAFLOW_OVERWRITE_OUTPUT is set', { timeout: 300_000 }, async () => {
    const dir = await dataDir('no-checkpoint');
    const output = join(dir, 'demo-output.jsonl');
    await writeFile(output, '{"id":1}\n{"id":2}\n');
    const refused = nodeMain({ DATAFLOW_DATA_DIR: dir });
    expect(await refused.exited).toBe(78);
    expect(errors(refused).at(-1)).toMatch(
      /^the pipelines could not start: DATAFLOW_OVERWRITE_OUTPUT: the output .*demo-output\.jsonl exists but the journal has no checkpoint for it .*set DATAFLOW_OVERWRITE_OUTPUT=1 to overwrite it$/,
    );
    expect(await readFile(output, 'utf8')).toBe('{"id":1}\n{"id":2}\n');
  });

  it("reports a damaged embedded journal with the store's own error at once, not an ask timeout", { timeout: 300_000 }, async () => {
    const dir = await dataDir('damaged');
    const first = nodeMain({ DATAFLOW_DATA_DIR: dir });
    await first.linesOut(2);
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    // Delete the files of every user table and index (relation file numbers from 16384 on).
    const base = join(dir, 'journal', 'base');
    let deleted = 0;
    for (const db of await readdir(base)) {
      for (const file of await readdir(join(base, db))) {
        if (/^\d+$/.test(file) && Number(file) >= 16384 && (await stat(join(base, db, file))).size > 0) {
          await unlink(join(base, db, file));
          deleted++;
        }
      }
    }
    expect(deleted).toBeGreaterThan(0);
    const damaged = nodeMain({ DATAFLOW_DATA_DIR: dir });
    expect(await damaged.exited).not.toBe(0);
    const reported = errors(damaged).at(-1) ?? '';
    expect(reported).toMatch(/^cannot start: .*could not open file/);
    expect(reported).not.toMatch(/No reply from/);
  });
});

describe('messages after a permanent sink error', () => {
  it('the stop line says the pipeline is failed, and the next start retries it without claiming to resume', { timeout: 300_000 }, async () => {
    const dir = await dataDir('permanent');
    // The output path is a directory: the file sink cannot open it, a permanent error.
    await mkdir(join(dir, 'demo-output.jsonl'));
    const failedLine = /^pipeline demo failed: file: cannot open .*demo-output\.jsonl: EISDIR/;
    const first = nodeMain({ DATAFLOW_DATA_DIR: dir, DATAFLOW_OVERWRITE_OUTPUT: '1' });
    await vi.waitFor(() => expect(errors(first)).toContainEqual(expect.stringMatching(failedLine)), { timeout: 120_000, interval: 200 });
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    expect(logLines(first).at(-1)?.message).toMatch(/^pipeline demo is failed at offset 0 \(0 records processed, 0 batches\): file: cannot open .*EISDIR.*; it does not resume by itself/);

    const second = nodeMain({ DATAFLOW_DATA_DIR: dir });
    // It fails again (the cause is still there), and only then is it stopped.
    await vi.waitFor(() => expect(errors(second)).toContainEqual(expect.stringMatching(failedLine)), { timeout: 120_000, interval: 200 });
    expect(logLines(second).map((l) => l.message)).toContain('pipeline demo: running -> failed');
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
    const said = logLines(second).map((l) => l.message);
    expect(said).toContainEqual(expect.stringMatching(/^pipeline demo had failed \(file: cannot open .*\); resetting it and trying again from its last checkpoint at offset 0 /));
    for (const run of [first, second]) {
      expect(logLines(run).map((l) => l.message)).not.toContainEqual(expect.stringMatching(/^resuming pipeline demo|npm start resumes from there/));
    }
  });
});

describe('two nodes on one Postgres journal', () => {
  it('refuses the second node at start, naming the first, which runs on; the schema is free again once the first stops or is killed', { timeout: 300_000 }, async () => {
    const schema = testNamespace(import.meta.url, 'two_nodes');
    const admin = new pg.Client({ connectionString: serviceSettings().postgresUrl });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
    // A node on a Postgres server does not migrate at start: the operator's step first, through the CLI.
    execFileSync(process.execPath, ['--import', 'tsx', '--conditions=@dataflow/source', 'apps/node/src/cli/dataflow.ts', 'migrate', '--journal', 'postgres', '--schema', schema], {
      cwd: root,
      env: { ...process.env, DATAFLOW_POSTGRES_URL: serviceSettings().postgresUrl },
      stdio: 'pipe',
    });
    const env = (name: string) => ({
      DATAFLOW_DATA_DIR: join(work, name),
      DATAFLOW_POSTGRES_URL: serviceSettings().postgresUrl,
      DATAFLOW_POSTGRES_SCHEMA: schema,
      DATAFLOW_NODE_ID: name,
    });
    const creator = nodeMain(env('pg-first'));
    await creator.linesOut(2);
    creator.child.kill('SIGINT');
    expect(await creator.exited).toBe(0);
    // The second node resumes the pipeline the first created: the log names the output path stored in the journal, not its own data directory.
    const first = nodeMain(env('pg-second'));
    await first.linesOut(2);
    const resumed = logLines(first).find((l) => l.message.startsWith('resuming pipeline demo'));
    expect(resumed?.message).toContain(`output: ${join(work, 'pg-first', 'demo-output.jsonl')}`);

    // Before, both ran until their first conflicting write, and then both stopped ('lost the single-writer race'), the first one included.
    const second = nodeMain(env('pg-third'));
    expect(await second.exited).toBe(78);
    expect(errors(second)).toEqual([
      expect.stringMatching(
        new RegExp(`^cannot start: postgres\\.schema: another node runs on journal schema ${schema}: dataflow node pg-second \\(pid ${first.child.pid ?? 0} on .+\\)( from \\S+)?, since \\S+\\. .*give each node its own schema, or run them as a cluster`),
      ),
    ]);
    // The first runs on, writing.
    const written = first.stdout.length;
    await first.linesOut(written + 2);
    expect(errors(first)).toEqual([]);
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);

    // Stopped: the next node takes the schema; killed with SIGKILL: the one after it too (the claim ends with its connection).
    const third = nodeMain(env('pg-third'));
    await third.linesOut(2);
    third.child.kill('SIGKILL');
    await third.exited;
    const fourth = nodeMain(env('pg-fourth'));
    await fourth.linesOut(2);
    fourth.child.kill('SIGINT');
    expect(await fourth.exited).toBe(0);
    expect(errors(fourth)).toEqual([]);
  });
});

describe('two nodes on one Cassandra keyspace', () => {
  it('refuses the second node at start, naming the first, which runs on; a node killed with SIGKILL is taken over once its claim lapses', { timeout: 300_000 }, async () => {
    const keyspace = testNamespace(import.meta.url, 'two_nodes');
    const services = serviceSettings();
    const cql = new CassandraClient({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
    await cql.connect();
    try {
      await cql.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    } finally {
      await cql.shutdown();
    }
    const env = async (name: string) => ({
      DATAFLOW_DATA_DIR: join(work, name),
      DATAFLOW_JOURNAL: 'cassandra',
      DATAFLOW_MIGRATE: 'auto',
      DATAFLOW_CASSANDRA_CONTACT_POINTS: services.cassandraContactPoints.join(','),
      DATAFLOW_CASSANDRA_LOCAL_DC: services.cassandraLocalDataCenter,
      DATAFLOW_CASSANDRA_KEYSPACE: keyspace,
      DATAFLOW_NODE_ID: name,
      DATAFLOW_API_PORT: String(await freePort()),
      DATAFLOW_METRICS_PORT: String(await freePort()),
    });
    const first = nodeMain(await env('cql-first'));
    await first.linesOut(2);

    // Before, both ran: they took each other's writer leases in turn, ran the same pipeline and wrote over each other's output.
    const refusedAt = Date.now();
    const second = nodeMain(await env('cql-second'));
    expect(await second.exited).toBe(78);
    // It waited for the claim to lapse (a node killed a moment ago), but the first kept renewing it.
    expect(Date.now() - refusedAt).toBeGreaterThan(10_000);
    expect(errors(second)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^cannot start: cassandra\\.keyspace: another node runs on Cassandra \\S+ \\(keyspace ${keyspace}\\): keyspace ${keyspace} is in use by node cql-first \\(pid ${first.child.pid ?? 0} on .+, started \\S+\\).*give each node its own keyspace, or run them as a cluster`,
        ),
      ),
    ]);
    expect(second.stdout).toEqual([]);
    // Told to stop while it waits for the claim: it stops at once (exit 0), not when the wait would have ended.
    const waiting = nodeMain(await env('cql-waiting'));
    await vi.waitFor(() => expect(logLines(waiting).map((l) => l.message)).toContainEqual(expect.stringContaining('waiting for its claim to lapse')), { timeout: 30_000, interval: 100 });
    const toldAt = Date.now();
    waiting.child.kill('SIGTERM');
    expect(await waiting.exited).toBe(0);
    expect(Date.now() - toldAt).toBeLessThan(5_000);
    expect(logLines(waiting).map((l) => l.message)).toContainEqual(expect.stringMatching(new RegExp(`^SIGTERM received while waiting for the keyspace claim \\(stopped waiting for keyspace ${keyspace}, in use by node cql-first .*\\): the node did not start$`)));
    expect(errors(waiting)).toEqual([]);
    // The first runs on, writing.
    const written = first.stdout.length;
    await first.linesOut(written + 2);
    expect(errors(first)).toEqual([]);

    // Killed with SIGKILL, its claim stays until it lapses: the next node waits for that, then resumes the pipeline.
    first.child.kill('SIGKILL');
    await first.exited;
    const third = nodeMain(await env('cql-third'));
    await third.linesOut(2);
    expect(logLines(third).map((l) => l.message)).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^keyspace ${keyspace} is in use by node cql-first .*: waiting for its claim to lapse`)), expect.stringMatching(/^resuming pipeline demo/)]));
    third.child.kill('SIGINT');
    expect(await third.exited).toBe(0);
    expect(errors(third)).toEqual([]);
    // Stopped cleanly, the claim is let go: the next node starts at once.
    const fourthAt = Date.now();
    const fourth = nodeMain(await env('cql-fourth'));
    await fourth.linesOut(2);
    expect(logLines(fourth).some((l) => l.message.includes('waiting for its claim'))).toBe(false);
    expect(Date.now() - fourthAt).toBeLessThan(60_000);
    fourth.child.kill('SIGINT');
    expect(await fourth.exited).toBe(0);
  });
});
