/**
 * The dead-letter queue of a node process on a Postgres journal (the node's
 * own database is the `postgres.url` server): a configured pipeline without
 * a `deadLetter` gets the node's table in its schema, its sink's refusals are
 * kept there, and `dataflow dlq` (the built CLI's source, as a user runs it)
 * peeks at them, replays them after the fix through the node's pool and
 * purges; the letters and the rows are checked in the server.
 */
import { freePort, serviceSettings, testNamespace } from '@dataflow/test-env';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
const tsx = ['--import', 'tsx', '--conditions=@dataflow/source'];

let work: string;
let schema: string;
let admin: pg.Pool;
let stopNode: (() => Promise<number | null>) | undefined;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dataflow-dlq-e2e-'));
  schema = testNamespace(import.meta.url);
  admin = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 1 });
  await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
});

afterAll(async () => {
  await stopNode?.();
  await admin?.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  await admin?.end();
  await rm(work, { recursive: true, force: true });
}, 60_000);

function dlq(url: string, ...argv: string[]): { code: number; out: string; err: string } {
  try {
    const out = execFileSync(process.execPath, [...tsx, 'apps/node/src/cli/dataflow.ts', 'dlq', ...argv, '--url', url], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    return { code: 0, out, err: '' };
  } catch (error) {
    const failed = error as { status: number; stdout: string; stderr: string };
    return { code: failed.status, out: failed.stdout, err: failed.stderr };
  }
}

describe('a node on a Postgres journal', () => {
  it("keeps a pipeline's refused records in its own schema and replays them after the fix, through the CLI", { timeout: 300_000 }, async () => {
    const url = serviceSettings().postgresUrl;
    execFileSync(process.execPath, [...tsx, 'apps/node/src/cli/dataflow.ts', 'migrate', '--journal', 'postgres', '--schema', schema], {
      cwd: root,
      env: { ...process.env, DATAFLOW_POSTGRES_URL: url },
      stdio: 'pipe',
    });
    await admin.query(`CREATE TABLE ${pg.escapeIdentifier(schema)}.readings (id integer NOT NULL, v integer NOT NULL)`);
    const port = await freePort();
    const config = join(work, 'dataflow.yaml');
    await writeFile(
      config,
      [
        `node: { dataDir: ${JSON.stringify(join(work, 'data'))} }`,
        'journal: { type: postgres }',
        `postgres: { url: ${JSON.stringify(url)}, schema: ${schema} }`,
        'metrics: { enabled: false }',
        'projections: { enabled: false }',
        'pipelines:',
        '  - id: readings',
        '    definition:',
        '      name: readings',
        "      source: { type: generator, rate: 100, fields: { id: { kind: sequence }, v: { kind: pick, values: ['10', 'x'] } } }",
        `      sink: { type: postgres, schema: ${schema}, table: readings, columns: { id: id, v: v }, onError: dead-letter }`,
        '      batch: { size: 10, maxWaitMs: 20 }',
        '',
      ].join('\n'),
    );
    const child = spawn(process.execPath, ['--import', './apps/node/bin/early-signals.mjs', ...tsx, 'apps/node/src/main.ts'], {
      cwd: root,
      // The test run sets DATAFLOW_API_PORT=0 for in-process nodes; this node's port must be known.
      env: { ...process.env, DATAFLOW_CONFIG: config, DATAFLOW_API_PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const stderr: string[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    stopNode = async () => {
      if (child.exitCode === null) child.kill('SIGINT');
      return exited;
    };
    const api = `http://127.0.0.1:${port}`;
    const call = async (method: string, path: string): Promise<Record<string, unknown>> => {
      const response = await fetch(`${api}${path}`, { method });
      return (await response.json()) as Record<string, unknown>;
    };

    const early = exited.then((code) => {
      throw new Error(`the node exited (${code}):\n${stderr.join('')}`);
    });
    await Promise.race([
      vi.waitFor(async () => expect((await call('GET', '/api/v1/pipelines/readings/dead-letters'))['total'], stderr.join('')).toBeGreaterThanOrEqual(4), { timeout: 120_000, interval: 500 }),
      early,
    ]);
    early.catch(() => undefined);
    const pipeline = await call('GET', '/api/v1/pipelines/readings');
    expect(pipeline['definition']).toMatchObject({ deadLetter: { type: 'postgres', schema } });
    await call('POST', '/api/v1/pipelines/readings/stop');
    const peek = dlq(api, 'peek', 'readings', '--limit', '3');
    expect(peek.code, peek.err).toBe(0);
    expect(peek.out).toContain(`dead letters of pipeline readings ("${schema}"."dead_letters")`);
    expect(peek.out).toMatch(/Postgres refused the row: invalid input syntax for type integer: "x"/);
    const { rows: stored } = await admin.query<{ id: number }>(
      `SELECT (payload->>'id')::integer AS id FROM ${pg.escapeIdentifier(schema)}.dead_letters WHERE pipeline_id = 'readings' ORDER BY id`,
    );
    expect(stored.length).toBeGreaterThanOrEqual(4);

    await admin.query(`ALTER TABLE ${pg.escapeIdentifier(schema)}.readings ALTER COLUMN v TYPE text`);
    await call('POST', '/api/v1/pipelines/readings/start');
    const replay = dlq(api, 'replay', 'readings', '--limit', '500');
    expect(replay.code, replay.err).toBe(0);
    expect(replay.out).toMatch(new RegExp(`^replayed ${stored.length} dead letters through pipeline readings \\(batch dlq:\\S+\\) and deleted them\\n$`));
    const { rows: written } = await admin.query<{ n: number }>(`SELECT count(*)::integer AS n FROM ${pg.escapeIdentifier(schema)}.readings WHERE id = ANY($1::integer[])`, [
      stored.map((r) => r.id),
    ]);
    expect(written).toEqual([{ n: stored.length }]);
    expect(dlq(api, 'purge', 'readings')).toEqual({ code: 0, out: 'purged 0 dead letters of pipeline readings\n', err: '' });
    expect(await stopNode()).toBe(0);
    stopNode = undefined;
    expect(stderr.join('')).not.toContain('"log_level":"error"');
  });
});
