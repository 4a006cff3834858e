/**
 * `dataflow pipelines ...` and `dataflow projections ...` against a real
 * node (embedded store, admin API listening on a free port): create from a
 * YAML file, lifecycle, list and status in both output forms, a rebuild with
 * progress, and the exit codes scripts rely on.
 */
import type { FastifyInstance } from 'fastify';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAdminApi } from '../api/admin-api.js';
import { localConnectorFactory } from '../node/connector-factory.js';
import { startNode, type DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { startNodeProjections, type NodeProjections } from '../projections/node-projections.js';
import { runCli } from './cli.js';

const quiet: NodeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
let dir: string;
let node: DataflowNode;
let projections: NodeProjections;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-cli-'));
  node = await startNode({ store: { type: 'pglite', dataDir: join(dir, 'data') }, logger: quiet, connectors: localConnectorFactory({ stream: new Writable({ write: (_c, _e, done) => done() }) }) });
  const started = await startNodeProjections({ persistence: node.persistence, logger: quiet, migrate: 'auto' });
  if (started === undefined) throw new Error('projections must run on the embedded store');
  projections = started;
  app = await createAdminApi({ node, projections, logger: quiet, authToken: 'tok-secret-1' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}, 120_000);

afterAll(async () => {
  await app?.close();
  await projections?.close();
  await node?.shutdown();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli([...argv, '--url', url], { out: (t) => (out += t), err: (t) => (err += t), env: {} });
  return { code, out, err };
}

describe('dataflow pipelines / projections', () => {
  it('creates a pipeline from YAML, runs its lifecycle, lists it and shows its status', { timeout: 60_000 }, async () => {
    const file = join(dir, 'numbers.yaml');
    await writeFile(file, 'name: numbers\nsource: { type: generator, rate: 100, fields: { id: { kind: sequence } } }\nsink: { type: console }\nbatch: { size: 10, maxWaitMs: 20 }\n');
    expect(await cli('pipelines', 'create', '-f', file, '--id', 'numbers', '--start')).toEqual({ code: 0, out: 'created pipeline numbers (running)\n', err: '' });
    // Run again (a script that retries): the same pipeline, said so, not an error.
    expect(await cli('pipelines', 'create', '-f', file, '--id', 'numbers', '--start')).toEqual({ code: 0, out: 'pipeline numbers exists with this definition (running)\n', err: '' });
    expect((await cli('pipelines', 'pause', 'numbers')).out).toBe('pipeline numbers: paused\n');
    const listed = await cli('pipelines', 'list', '--json');
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.out) as { pipelines: { id: string; status: string }[] }).pipelines).toEqual([expect.objectContaining({ id: 'numbers', status: 'paused' })]);
    expect((await cli('pipelines', 'list', '--status', 'running')).out).toBe('no pipelines\n');
    const status = await cli('pipelines', 'status', 'numbers');
    expect(status.out).toMatch(/^pipeline\s+numbers\nname\s+numbers\nstatus\s+paused \(paused through the admin API\)\nrecordsProcessed\s+\d+/);
    expect((await cli('pipelines', 'resume', 'numbers')).out).toBe('pipeline numbers: running\n');
    expect((await cli('pipelines', 'stop', 'numbers')).out).toBe('pipeline numbers: stopped\n');
  });

  it('exits 1 with the node message and field errors, 69 when the node is unreachable, 78 on usage errors', async () => {
    const refused = await cli('pipelines', 'resume', 'numbers');
    expect(refused).toMatchObject({ code: 1, out: '' });
    expect(refused.err).toBe('dataflow: Pipeline numbers: cannot resume while stopped: only a paused pipeline can resume\n');
    expect((await cli('pipelines', 'status', 'nope')).code).toBe(1);
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'name: x\nsource: { type: nowhere }\nsink: { type: console }\n');
    const invalid = await cli('pipelines', 'create', '-f', bad);
    expect(invalid.code).toBe(1);
    expect(invalid.err).toContain('  definition.source.type: ');
    expect((await cli('pipelines', 'create', '-f', join(dir, 'missing.yaml'))).err).toMatch(/cannot read the definition .*missing\.yaml/);
    let err = '';
    const unreachable = await runCli(['pipelines', 'list', '--url', 'http://127.0.0.1:1', '--token', 'tok-secret-1'], { out: () => undefined, err: (t) => (err += t), env: {} });
    expect(unreachable).toBe(69);
    expect(err).toMatch(/^dataflow: cannot reach the node at http:\/\/127\.0\.0\.1:1 /);
    expect(err).not.toContain('tok-secret-1');
    expect((await cli('pipelines', 'start')).code).toBe(78);
    expect((await cli('pipelines', 'create')).code).toBe(78);
  });

  it('updates, resets the offsets of and deletes a stopped pipeline; refuses a running one with exit 1', { timeout: 60_000 }, async () => {
    const file = join(dir, 'bigger.yaml');
    await writeFile(file, 'name: numbers\nsource: { type: generator, rate: 100, fields: { id: { kind: sequence } } }\nsink: { type: console }\nbatch: { size: 25, maxWaitMs: 20 }\n');
    expect(await cli('pipelines', 'update', 'numbers', '-f', file)).toEqual({ code: 0, out: 'updated pipeline numbers (stopped)\n', err: '' });
    expect((JSON.parse((await cli('pipelines', 'status', 'numbers', '--json')).out) as { definition: { batch: { size: number } } }).definition.batch.size).toBe(25);
    const reset = await cli('pipelines', 'reset-offsets', 'numbers', '--json');
    expect(reset.code).toBe(0);
    expect(JSON.parse(reset.out)).toMatchObject({ id: 'numbers', checkpoint: { sourceOffset: null } });
    await cli('pipelines', 'start', 'numbers');
    const refused = await cli('pipelines', 'delete', 'numbers');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/cannot delete while running: .*stop it first/);
    expect((await cli('pipelines', 'update', 'numbers', '-f', file)).code).toBe(1);
    await cli('pipelines', 'stop', 'numbers');
    expect(await cli('pipelines', 'delete', 'numbers')).toEqual({ code: 0, out: 'deleted pipeline numbers\n', err: '' });
    expect((await cli('pipelines', 'list')).out).toBe('no pipelines\n');
    expect((await cli('pipelines', 'delete', 'numbers')).code).toBe(1);
    expect((await cli('pipelines', 'delete')).code).toBe(78);
  });

  it('shows projections and rebuilds one to the end', { timeout: 90_000 }, async () => {
    await vi.waitFor(async () => expect((await cli('projections', 'status')).out).toMatch(/^pipeline_status\s+running\s+[1-9]/m), { timeout: 30_000 });
    const rebuilt = await cli('projections', 'rebuild', 'pipeline_metrics_hourly');
    expect(rebuilt).toMatchObject({ code: 0 });
    expect(rebuilt.out).toMatch(/^rebuilt pipeline_metrics_hourly: \d+ events\n$/);
    expect((await cli('projections', 'rebuild', 'nope')).code).toBe(1);
  });
});
