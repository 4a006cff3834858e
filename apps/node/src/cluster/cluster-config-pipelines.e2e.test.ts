/**
 * The configuration file's pipelines on a cluster node (the built `dataflow
 * start`, real Postgres journal and Redis): the first start creates and
 * starts them through the API; a restart finds them (the API answers 200 for
 * the same definition, 409 for another) and leaves them as they are, instead
 * of failing the start; the pipeline runs on from its checkpoint.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { builtCli, nodeJoined, nodeMessages, startNodeProcess, writeClusterConfig, type NodeProcess } from './testing/node-processes.js';

const postgresUrl = process.env['DATAFLOW_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const redisUrl = process.env['DATAFLOW_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const run = `cp${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const journalSchema = `${run}_journal`;

let dir: string;
const started: NodeProcess[] = [];

beforeAll(async () => {
  if (!existsSync(builtCli)) throw new Error(`${builtCli} is missing: the test target depends on build (npx nx build @dataflow/node)`);
  dir = await mkdtemp(join(tmpdir(), 'dataflow-cluster-config-'));
});

afterEach(async () => {
  const running = started.filter((node) => node.child.exitCode === null && node.child.signalCode === null);
  for (const node of running) node.child.kill('SIGKILL');
  await Promise.all(running.map((node) => node.exited));
});

afterAll(async () => {
  const db = new pg.Client({ connectionString: postgresUrl });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS ${journalSchema} CASCADE`);
  await db.end();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

const metricsOf = async (node: NodeProcess, id: string) => (await (await fetch(`${node.url}/api/v1/pipelines/${id}/metrics`)).json()) as { recordsProcessed: number };

describe('configured pipelines on a cluster node', () => {
  it('are created on the first start and left as they are by a restart, which runs on', { timeout: 120_000 }, async () => {
    const file = await writeClusterConfig(dir, 'node', {
      postgresUrl,
      journalSchema,
      redisUrl,
      run,
      leaseTtlMs: 4_000,
      tickMs: 500,
      extra: [
        'projections: { enabled: false }',
        'pipelines:',
        '  - id: ticks',
        '    start: true',
        '    definition: { name: ticks, source: { type: generator, rate: 100, fields: { id: { kind: sequence } } }, sink: { type: console }, batch: { size: 20, maxWaitMs: 50 } }',
      ],
    });
    const first = startNodeProcess('node-a', file, dir);
    started.push(first);
    await nodeJoined(first);
    await vi.waitFor(() => expect(nodeMessages(first)).toContain('created pipeline ticks and started it'), { timeout: 60_000, interval: 100 });
    await vi.waitFor(async () => expect((await metricsOf(first, 'ticks')).recordsProcessed).toBeGreaterThan(0), { timeout: 30_000, interval: 200 });
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const again = startNodeProcess('node-a', file, dir);
    started.push(again);
    await nodeJoined(again);
    const before = await vi.waitFor(
      async () => {
        const { recordsProcessed } = await metricsOf(again, 'ticks');
        expect(recordsProcessed).toBeGreaterThan(0);
        return recordsProcessed;
      },
      { timeout: 60_000, interval: 200 },
    );
    await vi.waitFor(async () => expect((await metricsOf(again, 'ticks')).recordsProcessed).toBeGreaterThan(before), { timeout: 30_000, interval: 200 });
    // Still up (a start that failed on the existing pipeline would have exited), and it did not create the pipeline again.
    expect(again.child.exitCode).toBeNull();
    expect(nodeMessages(again)).not.toContain('created pipeline ticks and started it');
    expect(nodeMessages(again).filter((m) => /could not start|cannot start/.test(m))).toEqual([]);
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  });
});
