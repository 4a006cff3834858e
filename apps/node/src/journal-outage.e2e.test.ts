/**
 * A journal outage longer than an entity's restarts (issue 9 defect 12): the
 * node runs on a Postgres server of its own (initdb in a temporary
 * directory, another port), the server is stopped with `pg_ctl stop -m
 * immediate` and started again 65 s later. The node used to exit 0 after
 * about a minute with nothing logged; now it stays up, logs that it is
 * degraded and why, is ok again once the server is back, and stops cleanly
 * on SIGINT. The demo pipeline itself resumes: after the restart new
 * checkpoints land in the journal, no `PipelineFailed` does, and the node
 * never exited. (A failure the pipeline cannot record while the journal is
 * down is re-sent after the journal backoff, uncounted; the counted retries
 * — `retry.maxRetries`, now `'unlimited'` by default — are covered with a
 * connector outage in core's `pipeline-outage.unit.test.ts`.)
 *
 * 65 s of outage is past the journal entity's old give-up (10 restarts in
 * about a minute) and the pipeline's old 5 retries (~31–37 s of backoff);
 * the test runs about 80 s.
 */
import { freePort } from '@dataflow/test-env';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const OUTAGE_MS = 65_000;

/** Runs a Postgres binary as the `postgres` user (initdb refuses root). */
function asPostgres(args: readonly string[]): string {
  const command = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', ...args] : [...args];
  return execFileSync(command[0] as string, command.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

let dir: string;
let data: string;
let port: number;
const pgCtl = (...args: string[]) => asPostgres(['pg_ctl', '-D', data, ...args]);
/** The number of journal events of `type` the demo pipeline recorded (psql on the private server). */
function demoEvents(type: string): number {
  const schema = asPostgres(['psql', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-tAc', "SELECT table_schema FROM information_schema.tables WHERE table_name = 'event_journal' LIMIT 1"]).trim();
  const sql = `SELECT count(*) FROM "${schema}".event_journal WHERE persistence_id LIKE '%demo%' AND event_type = '${type}'`;
  return Number(asPostgres(['psql', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-tAc', sql]).trim());
}
const startServer = () => pgCtl('-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, '-l', join(dir, 'server.log'), '-w', 'start');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-outage-'));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    await chown(dir, uid, gid);
  }
  data = join(dir, 'data');
  asPostgres(['initdb', '-D', data, '-U', 'postgres', '--auth=trust', '-N']);
  port = await freePort();
  startServer();
}, 180_000);

afterAll(async () => {
  try {
    pgCtl('-m', 'immediate', 'stop');
  } catch (error) {
    // Already stopped (a failed test may leave it either way): pg_ctl says the PID file does not exist.
    if (!String((error as { stderr?: unknown }).stderr).includes('PID file')) throw error;
  }
  await rm(dir, { recursive: true, force: true });
});

interface LogLine {
  readonly log_level: string;
  readonly message: string;
}

describe('a node whose Postgres journal goes away for longer than a minute', () => {
  it('stays up, reports degraded with the cause, is ok again when the server is back, and stops cleanly', { timeout: 420_000 }, async () => {
    const apiPort = await freePort();
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', '--conditions=@dataflow/source', 'apps/node/src/main.ts'], {
      cwd: root,
      // Ports of its own: other node processes of the suite run beside it.
      env: {
        ...process.env,
        DATAFLOW_DATA_DIR: join(dir, 'node'),
        DATAFLOW_POSTGRES_URL: `postgres://postgres@127.0.0.1:${port}/postgres`,
        DATAFLOW_MIGRATE: 'auto',
        DATAFLOW_API_PORT: String(apiPort),
        DATAFLOW_METRICS_PORT: String(await freePort()),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: string[] = [];
    const logs: LogLine[] = [];
    let exitCode: number | null | undefined;
    const exited = new Promise<number | null>((done) =>
      child.on('exit', (code) => {
        exitCode = code;
        done(code);
      }),
    );
    try {
      child.stdout?.on('data', (chunk: Buffer) => stdout.push(...chunk.toString().split('\n').filter((l) => l !== '')));
      let rest = '';
      child.stderr?.on('data', (chunk: Buffer) => {
        const parts = (rest + chunk.toString()).split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) if (line.startsWith('{')) logs.push(JSON.parse(line) as LogLine);
      });
      await vi.waitFor(() => expect(stdout.length).toBeGreaterThanOrEqual(3), { timeout: 120_000, interval: 200 });

      const stateLine = () => logs.filter((l) => l.message.startsWith('node state')).at(-1)?.message ?? '';
      // A transient problem of the start (a scrape of the demo pipeline that failed) can still be open when the server stops.
      const degradedBefore = stateLine().includes('-> degraded');
      pgCtl('-m', 'immediate', 'stop');
      await new Promise((done) => setTimeout(done, OUTAGE_MS));
      // Still running: the old node had exited (0, silently) by now.
      expect(exitCode).toBeUndefined();
      // Not ready, and /ready names the cause.
      const ready = await fetch(`http://127.0.0.1:${apiPort}/ready`);
      const readiness = (await ready.json()) as { dependencies: { name: string; state: string; detail: string }[] };
      expect(ready.status).toBe(503);
      expect(readiness.dependencies.find((d) => d.name === 'journal')).toMatchObject({ state: 'degraded', detail: expect.stringMatching(/ECONNREFUSED|ECONNRESET|terminat|connect/) as unknown });
      // The cause can span lines (a server's multi-line error text): `s` lets `.` take them. On a failure the node's state lines are what is shown.
      const stateLines = logs.filter((l) => l.message.startsWith('node state')).map((l) => `${l.log_level}: ${l.message}`);
      if (!degradedBefore) expect(stateLines, 'the node state lines').toContainEqual(expect.stringMatching(/^warn: node state ok -> degraded \(.*(ECONNREFUSED|ECONNRESET|terminat|connect).*\)/s));

      startServer();
      await vi.waitFor(() => expect(logs.map((l) => l.message)).toContain('node state degraded -> ok'), { timeout: 120_000, interval: 500 });
      expect(exitCode).toBeUndefined();

      // The demo pipeline resumes on its own: new checkpoints after the restart, and it never failed.
      const checkpointsAtRestart = demoEvents('CheckpointUpdated');
      expect(checkpointsAtRestart).toBeGreaterThan(0);
      await vi.waitFor(() => expect(demoEvents('CheckpointUpdated')).toBeGreaterThanOrEqual(checkpointsAtRestart + 3), { timeout: 60_000, interval: 1_000 });
      expect(demoEvents('PipelineFailed')).toBe(0);
      expect(exitCode).toBeUndefined();

      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(logs.filter((l) => l.log_level === 'error').map((l) => l.message)).not.toContainEqual(expect.stringMatching(/^the node stops|not cleanly/));
    } finally {
      if (exitCode === undefined) child.kill('SIGKILL');
    }
  });
});
