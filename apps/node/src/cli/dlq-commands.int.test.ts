/**
 * `dataflow dlq peek|replay|purge` against a real node (embedded store, the
 * admin API on a free port) whose pipeline dead-letters real records into
 * the node's database: the letters shown with their reasons, a replay after
 * the fix writing them once, a replay that leaves letters (exit 1, each
 * listed), purge, and the exit codes scripts rely on (1, 69, 78).
 */
import { allConnectorsRegistry } from '@dataflow/connectors';
import type { SqlExecutor } from '@dataflow/persistence';
import type { FastifyInstance } from 'fastify';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAdminApi } from '../api/admin-api.js';
import { withConnectionDefaults } from '../node/connection-defaults.js';
import { localConnectorFactory } from '../node/connector-factory.js';
import { startNode, type DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { runCli } from './cli.js';

const quiet: NodeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
let dir: string;
let node: DataflowNode;
let db: SqlExecutor;
let app: FastifyInstance;
let url: string;

const databaseOf = (n: DataflowNode): SqlExecutor => (n.persistence as unknown as { executor: SqlExecutor }).executor;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-dlq-cli-'));
  node = await startNode({
    store: { type: 'pglite', dataDir: join(dir, 'data') },
    logger: quiet,
    connectors: localConnectorFactory(() => ({ executor: databaseOf(node) })),
    connectorRegistry: allConnectorsRegistry,
    prepareDefinition: (definition) => withConnectionDefaults(definition, { deadLetters: { type: 'postgres' } }),
  });
  db = databaseOf(node);
  app = await createAdminApi({ node, logger: quiet, authToken: 'tok-secret-1' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}, 120_000);

afterAll(async () => {
  await app?.close();
  await node?.shutdown();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCli([...argv, '--url', url], { out: (t) => (out += t), err: (t) => (err += t), env: {} });
  return { code, out, err };
}

describe('dataflow dlq', () => {
  it('peeks at the letters with their reasons, replays them once the cause is fixed, and purges', { timeout: 90_000 }, async () => {
    await db.query('CREATE TABLE public.cli_readings (id integer NOT NULL, v integer NOT NULL)');
    const file = join(dir, 'readings.yaml');
    await writeFile(
      file,
      [
        'name: readings',
        "source: { type: generator, rate: 100, fields: { id: { kind: sequence }, v: { kind: pick, values: ['10', 'x'] } } }",
        'sink: { type: postgres, table: cli_readings, columns: { id: id, v: v }, onError: dead-letter }',
        'batch: { size: 10, maxWaitMs: 20 }',
        '',
      ].join('\n'),
    );
    expect((await cli('pipelines', 'create', '-f', file, '--id', 'readings', '--start')).code).toBe(0);
    await vi.waitFor(async () => expect((JSON.parse((await cli('dlq', 'peek', 'readings', '--json')).out) as { total: number }).total).toBeGreaterThanOrEqual(4), { timeout: 30_000 });
    await cli('pipelines', 'stop', 'readings');

    const peek = await cli('dlq', 'peek', 'readings', '--limit', '2');
    expect(peek.code).toBe(0);
    expect(peek.out).toMatch(/^ID\s+STAGE\s+AT\s+FAILED AT\s+REASON\n\d+\s+sink\s+postgres\s+\S+Z\s+Postgres refused the row: invalid input syntax for type integer: "x"\n\d+\s+sink/);
    expect(peek.out).toMatch(/\n2 of \d+ dead letters of pipeline readings \("public"\."dead_letters"\); next page: --after \d+\n$/);
    const page = JSON.parse((await cli('dlq', 'peek', 'readings', '--limit', '500', '--json')).out) as { total: number; letters: { id: number; payload: { id: number } }[] };
    const [first, ...rest] = page.letters;

    // Not running: the node refuses, and the letters stay.
    const refused = await cli('dlq', 'replay', 'readings');
    expect(refused).toMatchObject({ code: 1, out: '' });
    expect(refused.err).toBe('dataflow: Pipeline readings is stopped: a replay pushes its letters through the running pipeline; start it first\n');

    await db.query('ALTER TABLE public.cli_readings ALTER COLUMN v TYPE text');
    await cli('pipelines', 'start', 'readings');
    const one = await cli('dlq', 'replay', 'readings', '--ids', `${first?.id},9000000`);
    expect(one.code).toBe(1);
    expect(one.out).toMatch(/^replayed 1 dead letters through pipeline readings \(batch dlq:\S+\) and deleted them\nleft 9000000: pipeline readings has no dead letter with this id\n$/);
    expect(one.err).toBe('dataflow: 1 dead letters of pipeline readings were left in the queue (see above)\n');
    const all = await cli('dlq', 'replay', 'readings', '--limit', '500', '--json');
    expect(all.code).toBe(0);
    expect(JSON.parse(all.out)).toMatchObject({ replayed: rest.length, duplicate: false, skipped: [] });
    const ids = page.letters.map((l) => String(l.payload.id));
    expect(await db.query('SELECT count(*)::integer AS n, count(DISTINCT id)::integer AS d FROM public.cli_readings WHERE id = ANY($1::text[]::integer[])', [ids])).toEqual([
      { n: ids.length, d: ids.length },
    ]);
    expect((await cli('dlq', 'peek', 'readings')).out).toBe('no dead letters for pipeline readings ("public"."dead_letters")\n');
    expect(await cli('dlq', 'replay', 'readings')).toEqual({ code: 0, out: 'replayed no dead letters of pipeline readings\n', err: '' });

    await cli('pipelines', 'stop', 'readings');
    await db.query(
      `INSERT INTO public.dead_letters (pipeline_id, stage, stage_name, error_message, retriable, attempt, payload, failed_at)
       VALUES ('readings', 'sink', 'postgres', 'old', false, 1, '{"id": 1}', '2020-01-01T00:00:00Z'), ('readings', 'sink', 'postgres', 'new', false, 1, '{"id": 2}', now())`,
    );
    expect(await cli('dlq', 'purge', 'readings', '--before', '2021-01-01T00:00:00Z')).toEqual({ code: 0, out: 'purged 1 dead letters of pipeline readings\n', err: '' });
    expect(await cli('dlq', 'purge', 'readings')).toEqual({ code: 0, out: 'purged 1 dead letters of pipeline readings\n', err: '' });
  });

  it('exits 1 when the node refuses, 69 when it is unreachable, 78 on usage errors', async () => {
    expect(await cli('dlq', 'peek', 'nope')).toEqual({ code: 1, out: '', err: 'dataflow: No pipeline nope is registered on this node\n' });
    let err = '';
    const unreachable = await runCli(['dlq', 'peek', 'readings', '--url', 'http://127.0.0.1:1'], { out: () => undefined, err: (t) => (err += t), env: {} });
    expect(unreachable).toBe(69);
    expect(err).toMatch(/^dataflow: cannot reach the node at http:\/\/127\.0\.0\.1:1 /);
    for (const argv of [
      ['dlq', 'peek'],
      ['dlq', 'peek', 'readings', '--limit', '0'],
      ['dlq', 'peek', 'readings', '--after', '1,2'],
      ['dlq', 'replay', 'readings', '--ids', '1,x'],
      ['dlq', 'replay', 'readings', '--ids', '1', '--limit', '3'],
      ['dlq', 'purge', 'readings', '--before', 'yesterday'],
      ['dlq', 'purge', 'readings', '--ids', '1', '--before', '2020-01-01T00:00:00Z'],
    ]) {
      const answer = await cli(...argv);
      expect(answer.code, argv.join(' ')).toBe(78);
    }
    expect((await cli('dlq', 'replay', 'readings', '--ids', '0')).err).toBe('dataflow: --ids: expects letter ids separated by commas, e.g. 3,4,9; got "0"\n');
  });
});
