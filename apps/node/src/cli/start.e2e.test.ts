/**
 * `dataflow start` as production runs it: the built JavaScript
 * (`dist/cli/dataflow.js`, built by the `test` target's dependency on
 * `build`), no TypeScript loader, a YAML configuration, SIGTERM to stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const cli = resolve(import.meta.dirname, '../../dist/cli/dataflow.js');
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: the test target depends on build (npx nx build @dataflow/node)`);
  dir = await mkdtemp(join(tmpdir(), 'dataflow-start-'));
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  readonly stdout: string[];
  readonly stderr: string[];
  readonly exited: Promise<number | null>;
  readonly child: ChildProcess;
}

function start(args: readonly string[], env: Record<string, string> = {}): Run {
  // Only what the node needs from the environment: a DATAFLOW_* variable of the test run must not leak in.
  const child = spawn(process.execPath, [cli, 'start', ...args], { cwd: dir, env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const lines = (into: string[]) => (chunk: Buffer) => into.push(...chunk.toString().split('\n').filter((l) => l !== ''));
  const stdout: string[] = [];
  const stderr: string[] = [];
  child.stdout?.on('data', lines(stdout));
  child.stderr?.on('data', lines(stderr));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { stdout, stderr, exited, child };
}

const messages = (run: Run): string[] => run.stderr.map((l) => (JSON.parse(l) as { message: string }).message);

describe('dataflow start (built)', () => {
  it('runs the pipelines of the configuration file and stops cleanly on SIGTERM', { timeout: 90_000 }, async () => {
    await writeFile(
      join(dir, 'dataflow.yaml'),
      [
        'journal: { type: memory }',
        'api: { enabled: false }',
        'metrics: { enabled: false }',
        'pipelines:',
        '  - id: numbers',
        '    definition:',
        '      name: numbers',
        '      source: { type: generator, count: 100, fields: { id: { kind: sequence } } }',
        '      sink: { type: console }',
        '      batch: { size: 50, maxWaitMs: 10 }',
      ].join('\n'),
    );
    const run = start([]);
    await vi.waitFor(() => expect(messages(run)).toContain('created pipeline numbers and started it'), { timeout: 60_000, interval: 100 });
    await vi.waitFor(() => expect(run.stdout.filter((l) => l.startsWith('[numbers] batch'))).toHaveLength(2), { timeout: 10_000, interval: 50 });
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(messages(run).at(-1)).toMatch(/^node .* stopped; 1 pipelines$/);

    // A hang-up (a closed terminal, a process manager) stops it as cleanly; Node's default would end it at once with 129.
    const again = start([]);
    await vi.waitFor(() => expect(messages(again)).toContain('created pipeline numbers and started it'), { timeout: 60_000, interval: 100 });
    again.child.kill('SIGHUP');
    expect(await again.exited).toBe(0);
    expect(messages(again)).toContain('SIGHUP received: stopping');
    expect(messages(again).at(-1)).toMatch(/^node .* stopped; 1 pipelines$/);
  });

  it('exits 78 naming the field of a bad configuration, and of a bad pipeline definition', { timeout: 90_000 }, async () => {
    await writeFile(join(dir, 'bad.yaml'), 'api:\n  port: eighty\n');
    const bad = start(['--config', 'bad.yaml']);
    expect(await bad.exited).toBe(78);
    expect(messages(bad).at(-1)).toBe('cannot start: api.port in bad.yaml: is "eighty"; expected a port number');

    await writeFile(
      join(dir, 'def.yaml'),
      'journal: { type: memory }\napi: { enabled: false }\nmetrics: { enabled: false }\npipelines:\n  - id: p\n    definition: { name: ppp, source: { type: nowhere }, sink: { type: console } }\n',
    );
    const def = start(['--config', 'def.yaml']);
    expect(await def.exited).toBe(78);
    expect(messages(def).join('\n')).toMatch(/pipelines\[0\]\.definition\.source(\.type)?: Invalid pipeline definition/);

    const missing = start([], { DATAFLOW_CONFIG: join(dir, 'nope.yaml') });
    expect(await missing.exited).toBe(78);
    expect(messages(missing).at(-1)).toMatch(/^cannot start: DATAFLOW_CONFIG: cannot read the configuration file .*nope\.yaml/);
  });

  it('lists Logstash in /ready without making the node unready while it is down, and ships lines once it is up', { timeout: 90_000 }, async () => {
    // A free port, closed again: Logstash is down when the node starts.
    const probe = createServer();
    await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((done) => probe.close(() => done()));
    await writeFile(
      join(dir, 'logstash.yaml'),
      ['journal: { type: memory }', 'api: { port: 0 }', 'metrics: { enabled: false }', `logging: { logstash: { host: 127.0.0.1, port: ${port} } }`].join('\n'),
    );
    const run = start(['--config', 'logstash.yaml']);
    let url = '';
    await vi.waitFor(
      () => {
        const line = messages(run).find((m) => m.startsWith('admin API and console on '));
        expect(line).toBeDefined();
        url = /on (http:\/\/[^/]+)\//.exec(line ?? '')?.[1] ?? '';
      },
      { timeout: 60_000, interval: 100 },
    );
    const ready = async () => {
      const response = await fetch(`${url}/ready`);
      return { status: response.status, body: (await response.json()) as { ready: boolean; dependencies: { name: string; state: string; detail?: string; required: boolean }[] } };
    };
    const down = await ready();
    expect(down.status).toBe(200);
    expect(down.body.ready).toBe(true);
    expect(down.body.dependencies).toContainEqual(expect.objectContaining({ name: 'logstash', state: 'degraded', required: false, detail: expect.stringMatching(/unreachable; \d+ lines wait/) as string }));

    const received: string[] = [];
    const sockets: Socket[] = [];
    const logstash = createServer((socket) => {
      sockets.push(socket);
      socket.on('data', (chunk) => received.push(...chunk.toString().split('\n').filter((l) => l !== '')));
    });
    await new Promise<void>((done) => logstash.listen(port, '127.0.0.1', done));
    try {
      await vi.waitFor(async () => expect((await ready()).body.dependencies).toContainEqual(expect.objectContaining({ name: 'logstash', state: 'ok' })), { timeout: 40_000, interval: 200 });
      await vi.waitFor(() => expect(received.map((l) => (JSON.parse(l) as { message: string }).message)).toContain(`admin API and console on ${url}/ (OpenAPI: ${url}/api/v1/openapi.json)`), { timeout: 20_000 });
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(0);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((done) => logstash.close(() => done()));
    }
  });
});
