/**
 * A Cassandra journal that goes away for 30 s: the node runs on a Cassandra
 * of its own (started by `scripts/services.sh` under a temporary home, on
 * free ports, from the jars the shared services home already holds), which
 * is stopped while a pipeline writes and started again. The node stays up,
 * `/ready` names the journal as degraded, it is ready again within seconds
 * of Cassandra answering (the driver's default reconnection backoff used to
 * keep it away for about a minute more), the pipeline writes every record
 * exactly once, its status shows no retry that is over, and the node stops
 * cleanly and exits at once (a connection the driver kept open after its
 * shutdown used to hold the process). Prints a JSON line with the numbers.
 */
import { freePort } from '@dataflow/test-env';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const cli = resolve(import.meta.dirname, '../dist/cli/dataflow.js');
const RECORDS = 12_000;
const OUTAGE_MS = 30_000;

let dir: string;
let servicesEnv: NodeJS.ProcessEnv;
let cassandraPort: number;

/** `scripts/services.sh <action> cassandra` for the private Cassandra; fails with its output. */
function services(action: 'up' | 'down'): void {
  execFileSync('bash', ['scripts/services.sh', action, 'cassandra'], { cwd: root, env: servicesEnv, stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
}

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: the test target depends on build (npx nx build @dataflow/node)`);
  dir = await mkdtemp(join(tmpdir(), 'dataflow-cassandra-outage-'));
  const home = join(dir, 'services');
  await mkdir(home, { recursive: true });
  // The jars come from the shared services home's Maven repository (npm test brought it up): nothing is downloaded again.
  const shared = process.env['DATAFLOW_SERVICES_HOME'] ?? join(homedir(), '.cache', 'dataflow', 'services');
  await symlink(join(shared, 'm2'), join(home, 'm2'));
  cassandraPort = await freePort();
  const { DATAFLOW_CASSANDRA_CONTACT_POINTS: _points, DATAFLOW_CASSANDRA_LOCAL_DC: _dc, ...rest } = process.env;
  servicesEnv = {
    ...rest,
    DATAFLOW_SERVICES_HOME: home,
    DATAFLOW_CASSANDRA_PORT: String(cassandraPort),
    DATAFLOW_CASSANDRA_STORAGE_PORT: String(await freePort()),
    DATAFLOW_CASSANDRA_SSL_STORAGE_PORT: String(await freePort()),
  };
  services('up');
}, 300_000);

afterAll(async () => {
  try {
    services('down');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}, 120_000);

interface LogLine {
  readonly log_level: string;
  readonly message: string;
}

describe('a node whose Cassandra journal goes away for 30 s', () => {
  it('stays up and degraded, is ready again within seconds of Cassandra, and writes every record once', { timeout: 420_000 }, async () => {
    const apiPort = await freePort();
    const output = join(dir, 'out.jsonl');
    const config = join(dir, 'dataflow.yaml');
    await writeFile(
      config,
      [
        'node: { id: outage-node }',
        'journal: { type: cassandra, migrate: auto }',
        `cassandra: { contactPoints: ["127.0.0.1:${cassandraPort}"], localDataCenter: datacenter1, keyspace: outage_journal }`,
        `api: { port: ${apiPort} }`,
        'metrics: { enabled: false }',
        'projections: { enabled: false }',
        'pipelines:',
        '  - id: ticks',
        '    start: true',
        `    definition: { name: ticks, source: { type: generator, rate: 150, count: ${RECORDS}, fields: { id: { kind: sequence } } }, sink: { type: file, path: "${output}", format: jsonl }, batch: { size: 50, maxWaitMs: 100 } }`,
      ].join('\n'),
    );
    const child: ChildProcess = spawn(process.execPath, [cli, 'start', '--config', config], { cwd: dir, env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'ignore', 'pipe'] });
    const logs: LogLine[] = [];
    let exitCode: number | null | undefined;
    const exited = new Promise<number | null>((done) =>
      child.on('exit', (code) => {
        exitCode = code;
        done(code);
      }),
    );
    let rest = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) if (line.startsWith('{')) logs.push(JSON.parse(line) as LogLine);
    });
    const base = `http://127.0.0.1:${apiPort}`;
    const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
      const response = await fetch(`${base}${path}`);
      return { status: response.status, body: (await response.json()) as T };
    };
    try {
      await vi.waitFor(async () => expect((await get<{ recordsProcessed: number }>('/api/v1/pipelines/ticks/metrics')).body.recordsProcessed).toBeGreaterThan(1_000), { timeout: 120_000, interval: 250 });

      const stoppedAt = Date.now();
      services('down');
      await vi.waitFor(
        async () => {
          const ready = await get<{ dependencies: { name: string; state: string; detail: string }[] }>('/ready');
          expect(ready.status).toBe(503);
          expect(ready.body.dependencies.find((d) => d.name === 'journal')).toMatchObject({ state: 'degraded', detail: expect.stringMatching(/ticks|coordinator/) as unknown });
        },
        { timeout: 60_000, interval: 500 },
      );
      const degradedAfterMs = Date.now() - stoppedAt;
      await new Promise((done) => setTimeout(done, Math.max(0, OUTAGE_MS - (Date.now() - stoppedAt))));
      expect(exitCode).toBeUndefined();

      services('up');
      const upAt = Date.now();
      await vi.waitFor(async () => expect((await get('/ready')).status).toBe(200), { timeout: 120_000, interval: 250 });
      const readyAfterMs = Date.now() - upAt;
      // The driver's default backoff had grown to about a minute by now; the node's policy waits at most 5 s between attempts.
      expect(readyAfterMs).toBeLessThan(30_000);

      await vi.waitFor(async () => expect((await get<{ status: string }>('/api/v1/pipelines/ticks/status')).body.status).toBe('stopped'), { timeout: 180_000, interval: 500 });
      expect((await get<{ retry: unknown; error: unknown }>('/api/v1/pipelines/ticks/status')).body).toMatchObject({ retry: null, error: null });
      const ids = (await readFile(output, 'utf8'))
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => (JSON.parse(line) as { id: number }).id);
      expect(ids.length).toBe(RECORDS);
      expect(new Set(ids).size).toBe(RECORDS);
      // It exits within moments of its stop: a connection the Cassandra driver left open after its shutdown once kept it alive for good.
      const termAt = Date.now();
      child.kill('SIGTERM');
      const ended = await Promise.race([exited, new Promise<string>((done) => setTimeout(() => done('still running 20 s after SIGTERM'), 20_000))]);
      expect(ended).toBe(0);
      const exitAfterMs = Date.now() - termAt;
      process.stdout.write(`${JSON.stringify({ bench: 'cassandra-outage', outageMs: OUTAGE_MS, degradedAfterMs, readyAfterMs, records: ids.length, exitAfterMs })}\n`);
      expect(logs.map((l) => l.message)).toContain('node state degraded -> ok');
      expect(logs.filter((l) => l.log_level === 'error').map((l) => l.message)).not.toContainEqual(expect.stringMatching(/^the node stops|not cleanly/));
    } finally {
      if (exitCode === undefined) child.kill('SIGKILL');
    }
  });
});
