/**
 * The dead-letter routes against a real node on the embedded store (PGlite in
 * a temporary directory): a real pipeline dead-letters malformed records at
 * each stage into the node's own database (the default target), peek shows
 * them with their reasons, a replay after fixing the causes gets them
 * through the sink exactly once (also when an interrupted replay is
 * repeated), purge empties the queue; and every refusal (404, 409, 400).
 * A pipeline whose target names its own database is read there, on the real
 * Postgres server.
 */
import { allConnectorsRegistry, PostgresDeadLetterTarget } from '@dataflow/connectors';
import type { SqlExecutor } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import type { FastifyInstance } from 'fastify';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withConnectionDefaults } from '../node/connection-defaults.js';
import { localConnectorFactory } from '../node/connector-factory.js';
import { startNode, type DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { createAdminApi } from './admin-api.js';

const logger: NodeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

let dir: string;
let node: DataflowNode;
let db: SqlExecutor;
let app: FastifyInstance;
let schema: string;
let admin: pg.Pool;

const databaseOf = (n: DataflowNode): SqlExecutor => (n.persistence as unknown as { executor: SqlExecutor }).executor;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-dlq-'));
  schema = testNamespace(import.meta.url);
  admin = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 1 });
  node = await startNode({
    store: { type: 'pglite', dataDir: dir },
    logger,
    // Postgres sinks and dead-letter targets without connectionString use the node's database, as run-node.ts wires them.
    connectors: localConnectorFactory(() => ({ executor: databaseOf(node) })),
    connectorRegistry: allConnectorsRegistry,
    // As a node with a database does; a pipeline named "no-target" stands for one created on a node without.
    prepareDefinition: (definition) =>
      (definition as { name?: unknown }).name === 'no-target' ? definition : withConnectionDefaults(definition, { deadLetters: { type: 'postgres' } }),
    statusReportIntervalMs: 100,
  });
  db = databaseOf(node);
  app = await createAdminApi({ node, logger });
}, 120_000);

afterAll(async () => {
  await app?.close();
  await node?.shutdown();
  await admin?.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  await admin?.end();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

type Body = Record<string, unknown>;
const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) => {
  const response = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: response.statusCode, body: response.body === '' ? undefined : (JSON.parse(response.body) as Body), raw: response.body };
};
const expectError = (answer: { status: number; body: Body | undefined }, status: number, error: string): string => {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.body).toMatchObject({ error, message: expect.any(String) as string, details: expect.anything() as unknown, timestamp: expect.any(String) as string });
  return answer.body?.['message'] as string;
};

interface Letter {
  id: number;
  stage: string;
  stageName: string;
  error: { message: string; retriable: boolean };
  payload: unknown;
  failedAt: string;
}

const lines = [
  JSON.stringify({ id: 1, v: '10', body: '{"a":1}' }),
  JSON.stringify({ id: 2, v: '20', body: '{oops' }),
  'not json at all',
  JSON.stringify({ id: 4, v: 'x4', body: '{"a":4}' }),
];

const ordersDefinition = (path: string, transforms: unknown[]) => ({
  name: 'orders',
  source: { type: 'file', path, format: 'ndjson', onError: 'dead-letter' },
  transforms,
  sink: { type: 'postgres', table: 'dlq_orders', columns: { id: 'id', v: 'v' }, onError: 'dead-letter' },
  batch: { size: 10, maxWaitMs: 20 },
});
const parseBody = { type: 'json-parse', field: 'body', target: 'parsed', keepSource: true, onError: 'dead-letter' };

const rows = () => db.query<{ id: number; v: string }>('SELECT id, v::text AS v FROM public.dlq_orders ORDER BY id, v');

describe('the dead-letter queue of a pipeline', () => {
  let letters: Letter[] = [];

  it("keeps the records each stage refuses in the node's database by default, and pages them oldest first with their reasons", { timeout: 60_000 }, async () => {
    await db.query('CREATE TABLE public.dlq_orders (id integer NOT NULL, v integer NOT NULL)');
    const input = join(dir, 'orders.ndjson');
    await writeFile(input, `${lines.join('\n')}\n`);
    const created = await call('POST', '/api/v1/pipelines', { id: 'orders', definition: ordersDefinition(input, [parseBody]), start: true });
    expect(created.status, created.raw).toBe(201);
    expect(created.body?.['definition']).toMatchObject({ deadLetter: { type: 'postgres' } });

    await vi.waitFor(async () => expect((await call('GET', '/api/v1/pipelines/orders/dead-letters')).body?.['total']).toBe(3), { timeout: 30_000 });
    expect(await rows()).toEqual([{ id: 1, v: '10' }]);

    const first = await call('GET', '/api/v1/pipelines/orders/dead-letters?limit=2');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ id: 'orders', table: '"public"."dead_letters"', total: 3 });
    const page = first.body?.['letters'] as Letter[];
    expect(page).toHaveLength(2);
    expect(first.body?.['next']).toBe(page[1]?.id);
    const second = await call('GET', `/api/v1/pipelines/orders/dead-letters?after=${page[1]?.id}&limit=2`);
    expect(second.body?.['next']).toBeNull();
    letters = [...page, ...(second.body?.['letters'] as Letter[])];
    expect(letters.map((l) => l.id)).toEqual([...letters.map((l) => l.id)].sort((a, b) => a - b));
    const byStage = Object.fromEntries(letters.map((l) => [l.stage, l]));
    expect(byStage['source']).toMatchObject({ stageName: 'file', payload: 'not json at all' });
    expect(byStage['transform']).toMatchObject({ stageName: 'transforms[0]:json-parse', payload: { id: 2, v: '20', body: '{oops' } });
    expect(byStage['transform']?.error.message).toMatch(/not valid JSON/);
    expect(byStage['sink']).toMatchObject({ stageName: 'postgres', payload: { id: 4, v: 'x4', parsed: { a: 4 } } });
    expect(byStage['sink']?.error.message).toMatch(/column "v" \(integer\)|invalid input syntax for type integer/);
    expect(new Date(byStage['sink']?.failedAt ?? '').getTime()).toBeGreaterThan(Date.now() - 60_000);
  });

  it('refuses a replay while the pipeline is not running (409): this one stopped at the end of its file', { timeout: 30_000 }, async () => {
    await vi.waitFor(async () => expect((await call('GET', '/api/v1/pipelines/orders/status')).body).toMatchObject({ status: 'stopped', reason: 'the source is exhausted' }), {
      timeout: 20_000,
    });
    const message = expectError(await call('POST', '/api/v1/pipelines/orders/dead-letters/replay', {}), 409, 'conflict');
    expect(message).toBe('Pipeline orders is stopped: a replay pushes its letters through the running pipeline; start it first');
  });

  it('purges by age, by id and all', async () => {
    const source = letters.find((l) => l.stage === 'source');
    expect((await call('DELETE', '/api/v1/pipelines/orders/dead-letters?before=2000-01-01T00:00:00Z')).body).toEqual({ purged: 0 });
    expect((await call('DELETE', `/api/v1/pipelines/orders/dead-letters?ids=${source?.id},${(source?.id ?? 0) + 1000}`)).body).toEqual({ purged: 1 });
    expect((await call('DELETE', '/api/v1/pipelines/orders/dead-letters')).body).toEqual({ purged: 2 });
    expect((await call('GET', '/api/v1/pipelines/orders/dead-letters')).body).toMatchObject({ total: 0, letters: [], next: null });
  });

  it('replays the letters after their cause is fixed: through the sink once, deleted, and a repeated or interrupted replay writes nothing twice', { timeout: 90_000 }, async () => {
    await db.query('CREATE TABLE public.dlq_readings (id integer NOT NULL, v integer NOT NULL)');
    const definition = {
      name: 'readings',
      // About half the values are not numbers: the integer column refuses them, and the sink dead-letters those records.
      source: { type: 'generator', rate: 100, fields: { id: { kind: 'sequence' }, v: { kind: 'pick', values: ['10', 'x'] } } },
      sink: { type: 'postgres', table: 'dlq_readings', columns: { id: 'id', v: 'v' }, onError: 'dead-letter' },
      batch: { size: 10, maxWaitMs: 20 },
    };
    expect((await call('POST', '/api/v1/pipelines', { id: 'readings', definition, start: true })).status).toBe(201);
    await vi.waitFor(async () => expect((await call('GET', '/api/v1/pipelines/readings/dead-letters')).body?.['total']).toBeGreaterThanOrEqual(5), { timeout: 30_000 });
    expect((await call('POST', '/api/v1/pipelines/readings/stop')).status).toBe(200);
    const queued = (await call('GET', '/api/v1/pipelines/readings/dead-letters?limit=500')).body?.['letters'] as Letter[];
    expect(queued.every((l) => l.stage === 'sink' && (l.payload as { v: string }).v === 'x')).toBe(true);
    const idsOf = (list: readonly Letter[]) => list.map((l) => (l.payload as { id: number }).id);
    const written = async (ids: readonly number[]) =>
      db.query<{ id: number; n: number }>('SELECT id, count(*)::integer AS n FROM public.dlq_readings WHERE id = ANY($1::text[]::integer[]) GROUP BY id ORDER BY id', [ids.map(String)]);
    expect(await written(idsOf(queued))).toEqual([]);

    // The cause: the column's type. Fixed, the pipeline runs again (and writes its new records itself).
    await db.query('ALTER TABLE public.dlq_readings ALTER COLUMN v TYPE text');
    expect((await call('POST', '/api/v1/pipelines/readings/start')).body).toMatchObject({ status: 'running' });

    const [head, ...rest] = queued;
    const unknownId = 9_000_000;
    const first = await call('POST', '/api/v1/pipelines/readings/dead-letters/replay', { ids: [head?.id, unknownId] });
    expect(first.status, first.raw).toBe(200);
    expect(first.body).toEqual({
      replayed: 1,
      duplicate: false,
      batchId: expect.stringMatching(/^dlq:\d+-\d+:1:[0-9a-f]{12}$/) as unknown,
      skipped: [{ id: unknownId, reason: 'pipeline readings has no dead letter with this id' }],
    });
    const all = await call('POST', '/api/v1/pipelines/readings/dead-letters/replay', { limit: 500 });
    expect(all.body).toMatchObject({ replayed: rest.length, duplicate: false, skipped: [] });
    expect(await written(idsOf(queued))).toEqual(idsOf(queued).map((id) => ({ id, n: 1 })));
    expect((await call('GET', '/api/v1/pipelines/readings/dead-letters')).body).toMatchObject({ total: 0 });

    // Replayed again: the letters are gone.
    const again = await call('POST', '/api/v1/pipelines/readings/dead-letters/replay', { ids: rest.map((l) => l.id) });
    expect(again.body).toMatchObject({ replayed: 0, duplicate: false, skipped: rest.map((l) => ({ id: l.id })) });

    // A replay interrupted after the ingest and before the delete leaves its letters: replaying them is a duplicate that only deletes them.
    for (const letter of rest) {
      await db.query(
        `INSERT INTO public.dead_letters (id, pipeline_id, stage, stage_name, error_message, retriable, attempt, payload, failed_at)
         VALUES ($1::bigint, 'readings', $2, $3, $4, false, 1, $5::jsonb, now())`,
        [String(letter.id), letter.stage, letter.stageName, letter.error.message, JSON.stringify(letter.payload)],
      );
    }
    const interrupted = await call('POST', '/api/v1/pipelines/readings/dead-letters/replay', { ids: rest.map((l) => l.id) });
    expect(interrupted.body).toEqual({ replayed: rest.length, duplicate: true, batchId: all.body?.['batchId'], skipped: [] });
    expect(await written(idsOf(queued))).toEqual(idsOf(queued).map((id) => ({ id, n: 1 })));
    expect((await call('GET', '/api/v1/pipelines/readings/dead-letters')).body).toMatchObject({ total: 0 });
    expect((await call('POST', '/api/v1/pipelines/readings/stop')).status).toBe(200);
  });

  it('reads, replays into and purges the database a target names itself, without showing its URL', { timeout: 60_000 }, async () => {
    const url = serviceSettings().postgresUrl;
    const definition = {
      name: 'own-db',
      source: { type: 'generator', rate: 50, fields: { id: { kind: 'sequence' } } },
      sink: { type: 'console' },
      deadLetter: { type: 'postgres', connectionString: url, schema },
    };
    expect((await call('POST', '/api/v1/pipelines', { id: 'own-db', definition })).status).toBe(201);
    expect((await call('GET', '/api/v1/pipelines/own-db/dead-letters')).body).toMatchObject({ total: 0, letters: [] });
    const target = new PostgresDeadLetterTarget({ type: 'postgres', connectionString: url, schema });
    await target.open();
    const letter = { pipelineId: 'own-db', stage: 'sink', stageName: 'console', error: { message: 'refused', retriable: false }, attempt: 1, payload: { id: 7 }, failedAt: Date.now() } as const;
    await target.send([letter, { ...letter, pipelineId: 'another' }]);
    await target.close();
    const page = await call('GET', '/api/v1/pipelines/own-db/dead-letters');
    expect(page.body).toMatchObject({ table: `"${schema}"."dead_letters"`, total: 1, letters: [{ stage: 'sink', payload: { id: 7 }, error: { message: 'refused' } }] });
    expect(page.raw).not.toContain(url);
    expect((await call('POST', '/api/v1/pipelines/own-db/start')).status).toBe(200);
    expect((await call('POST', '/api/v1/pipelines/own-db/dead-letters/replay', { limit: 10 })).body).toMatchObject({ replayed: 1, duplicate: false, skipped: [] });
    expect((await call('POST', '/api/v1/pipelines/own-db/stop')).status).toBe(200);
    await target.open();
    await target.send([letter]);
    await target.close();
    expect((await call('DELETE', '/api/v1/pipelines/own-db/dead-letters')).body).toEqual({ purged: 1 });
    const { rows: others } = await admin.query(`SELECT pipeline_id FROM ${pg.escapeIdentifier(schema)}.dead_letters`);
    expect(others).toEqual([{ pipeline_id: 'another' }]);
  });

  it('answers 404 for an unknown pipeline', async () => {
    expectError(await call('GET', '/api/v1/pipelines/nope/dead-letters'), 404, 'not-found');
    expectError(await call('POST', '/api/v1/pipelines/nope/dead-letters/replay', {}), 404, 'not-found');
    expectError(await call('DELETE', '/api/v1/pipelines/nope/dead-letters'), 404, 'not-found');
  });

  it('answers 409 saying where the letters are when the node cannot read them', async () => {
    const generator = { type: 'generator', rate: 10, fields: { id: { kind: 'sequence' } } };
    const dlqFile = join(dir, 'letters.jsonl');
    await call('POST', '/api/v1/pipelines', { id: 'to-file', definition: { name: 'to-file', source: generator, sink: { type: 'console' }, deadLetter: { type: 'file', path: dlqFile } } });
    await call('POST', '/api/v1/pipelines', {
      id: 'to-kafka',
      definition: { name: 'to-kafka', source: generator, sink: { type: 'console' }, deadLetter: { type: 'kafka', brokers: ['127.0.0.1:9092'], topic: 'orders-dlq' } },
    });
    await call('POST', '/api/v1/pipelines', { id: 'no-target', definition: { name: 'no-target', source: generator, sink: { type: 'console' } } });

    for (const [method, suffix] of [['GET', ''], ['POST', '/replay'], ['DELETE', '']] as const) {
      expect(expectError(await call(method, `/api/v1/pipelines/to-file/dead-letters${suffix}`, method === 'POST' ? {} : undefined), 409, 'conflict')).toContain(`the file ${JSON.stringify(dlqFile)}`);
    }
    expect(expectError(await call('GET', '/api/v1/pipelines/to-kafka/dead-letters'), 409, 'conflict')).toContain('the Kafka topic "orders-dlq"');
    const none = await call('GET', '/api/v1/pipelines/no-target/dead-letters');
    expect(expectError(none, 409, 'conflict')).toMatch(/has no dead-letter target/);
    expect(none.body?.['details']).toEqual({ deadLetterType: null });
  });

  it('answers 400 for bad ids, limits and combinations', async () => {
    const replay = (body: unknown) => call('POST', '/api/v1/pipelines/orders/dead-letters/replay', body);
    expectError(await replay({ ids: ['x'] }), 400, 'bad-request');
    expectError(await replay({ ids: [] }), 400, 'bad-request');
    expectError(await replay({ ids: [0] }), 400, 'bad-request');
    expectError(await replay({ ids: [1, 1] }), 400, 'bad-request');
    expectError(await replay({ ids: [1], limit: 5 }), 400, 'bad-request');
    expectError(await replay({ limit: 0 }), 400, 'bad-request');
    expectError(await replay({ what: 1 }), 400, 'bad-request');
    expectError(await call('GET', '/api/v1/pipelines/orders/dead-letters?after=-1'), 400, 'bad-request');
    expectError(await call('GET', '/api/v1/pipelines/orders/dead-letters?limit=501'), 400, 'bad-request');
    expectError(await call('DELETE', '/api/v1/pipelines/orders/dead-letters?ids=abc'), 400, 'bad-request');
    expectError(await call('DELETE', '/api/v1/pipelines/orders/dead-letters?ids=1,,2'), 400, 'bad-request');
    expectError(await call('DELETE', '/api/v1/pipelines/orders/dead-letters?before=yesterday'), 400, 'bad-request');
    expectError(await call('DELETE', '/api/v1/pipelines/orders/dead-letters?ids=1&before=2020-01-01T00:00:00Z'), 400, 'bad-request');
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await call('GET', '/api/v1/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths['/api/v1/pipelines/{id}/dead-letters'] ?? {}).sort()).toEqual(['delete', 'get']);
    expect(Object.keys(doc.paths['/api/v1/pipelines/{id}/dead-letters/replay'] ?? {})).toEqual(['post']);
  });
});
