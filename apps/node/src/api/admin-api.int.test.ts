/**
 * The admin API against a real node on the embedded store (PGlite in a
 * temporary directory) with its projections: every route and its error
 * cases through `inject`, the live feed over a real socket, the bearer token
 * from off loopback, and the OpenAPI document.
 */
import type { FastifyInstance } from 'fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ask, type CoordinatorCommand, type CoordinatorReply } from '@dataflow/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { localConnectorFactory } from '../node/connector-factory.js';
import { startNode, type DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { startNodeProjections, type NodeProjections } from '../projections/node-projections.js';
import { createAdminApi } from './admin-api.js';

const logged: string[] = [];
const logger: NodeLogger = { debug: () => undefined, info: () => undefined, warn: (m) => logged.push(m), error: (m) => logged.push(m) };
const sink = new Writable({ write: (_chunk, _encoding, done) => done() });

let dir: string;
let node: DataflowNode;
let projections: NodeProjections;
let app: FastifyInstance;

const numbers = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  source: { type: 'generator', rate: 200, fields: { id: { kind: 'sequence' } } },
  sink: { type: 'console' },
  batch: { size: 20, maxWaitMs: 20 },
  ...extra,
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-api-'));
  node = await startNode({ store: { type: 'pglite', dataDir: dir }, logger, connectors: localConnectorFactory({ stream: sink }), statusReportIntervalMs: 100 });
  const started = await startNodeProjections({ persistence: node.persistence, logger, migrate: 'auto' });
  if (started === undefined) throw new Error('projections must run on the embedded store');
  projections = started;
  app = await createAdminApi({ node, projections, logger, authToken: 'secret-token-123', bodyLimit: 64 * 1024, feedIntervalMs: 200 });
}, 120_000);

afterAll(async () => {
  await app?.close();
  await projections?.close();
  await node?.shutdown();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}) => {
  const response = await app.inject({ method, url, headers, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: response.statusCode, body: response.body === '' ? undefined : (JSON.parse(response.body) as Record<string, unknown>), headers: response.headers };
};

const expectError = (answer: { status: number; body: Record<string, unknown> | undefined }, status: number, error: string) => {
  expect(answer.status).toBe(status);
  expect(answer.body).toMatchObject({ error, message: expect.any(String) as string, details: expect.anything() as unknown, timestamp: expect.any(String) as string });
};

describe('the admin API', () => {
  it('creates a pipeline (201 + id), lists, gets, and runs it through its lifecycle', { timeout: 60_000 }, async () => {
    const created = await call('POST', '/api/v1/pipelines', { id: 'orders', definition: numbers('orders') });
    expect(created.status).toBe(201);
    expect(created.headers['location']).toBe('/api/v1/pipelines/orders');
    expect(created.body).toMatchObject({ id: 'orders', name: 'orders', status: 'configured' });

    expect((await call('POST', '/api/v1/pipelines/orders/start')).body).toMatchObject({ status: 'running' });
    await vi.waitFor(async () => expect(((await call('GET', '/api/v1/pipelines/orders/metrics')).body?.['recordsProcessed'] as number) > 0).toBe(true), { timeout: 20_000 });
    expect((await call('GET', '/api/v1/pipelines')).body?.['pipelines']).toEqual([expect.objectContaining({ id: 'orders', name: 'orders' })]);
    expect((await call('GET', '/api/v1/pipelines?status=running')).body?.['pipelines']).toHaveLength(1);
    expect((await call('GET', '/api/v1/pipelines?status=paused')).body?.['pipelines']).toHaveLength(0);
    expect((await call('GET', '/api/v1/pipelines/orders')).body).toMatchObject({ id: 'orders', status: 'running', definition: { name: 'orders' } });
    expect((await call('GET', '/api/v1/pipelines/orders/status')).body).toMatchObject({ id: 'orders', status: 'running', error: null });
    await vi.waitFor(async () => expect((await call('GET', '/api/v1/pipelines/orders/offsets')).body?.['checkpoint']).not.toBeNull(), { timeout: 20_000 });

    expect((await call('POST', '/api/v1/pipelines/orders/pause')).body).toMatchObject({ status: 'paused', reason: 'paused through the admin API' });
    // Commands the pipeline is already in are idempotent (200 with the same state).
    expect((await call('POST', '/api/v1/pipelines/orders/pause')).body).toMatchObject({ status: 'paused' });
    expect((await call('POST', '/api/v1/pipelines/orders/resume')).body).toMatchObject({ status: 'running' });
    expect((await call('POST', '/api/v1/pipelines/orders/restart')).body).toMatchObject({ status: 'running' });
    expect((await call('POST', '/api/v1/pipelines/orders/stop')).body).toMatchObject({ status: 'stopped' });
    expectError(await call('POST', '/api/v1/pipelines/orders/pause'), 409, 'conflict');
    const resumeStopped = await call('POST', '/api/v1/pipelines/orders/resume');
    expectError(resumeStopped, 409, 'conflict');
    expect(resumeStopped.body?.['message']).toBe('Pipeline orders: cannot resume while stopped: only a paused pipeline can resume');
    expectError(await call('POST', '/api/v1/pipelines/orders/reset'), 409, 'conflict');
    expect((await call('GET', '/api/v1/pipelines/orders/status')).body).toMatchObject({ status: 'stopped', reason: 'stopped through the admin API' });
  });

  it('pages the journal events of a pipeline', async () => {
    const first = await call('GET', '/api/v1/pipelines/orders/events?limit=2');
    expect(first.status).toBe(200);
    const events = first.body?.['events'] as { sequenceNr: number; eventType: string }[];
    expect(events).toHaveLength(2);
    expect(events[0]?.eventType).toBe('PipelineCreated');
    expect(first.body?.['next']).toBe(events[1]?.sequenceNr);
    const second = await call('GET', `/api/v1/pipelines/orders/events?after=${String(first.body?.['next'])}&limit=500`);
    expect((second.body?.['events'] as { sequenceNr: number }[])[0]?.sequenceNr).toBe((events[1]?.sequenceNr ?? 0) + 1);
    expectError(await call('GET', '/api/v1/pipelines/orders/events?limit=0'), 400, 'bad-request');
  });

  it('updates a stopped pipeline, resets its offsets and deletes it; refuses each while it runs (409) and names what is wrong', { timeout: 60_000 }, async () => {
    expect((await call('POST', '/api/v1/pipelines', { id: 'changes', definition: numbers('changes'), start: true })).status).toBe(201);
    await vi.waitFor(async () => expect((await call('GET', '/api/v1/pipelines/changes/offsets')).body?.['checkpoint']).not.toBeNull(), { timeout: 20_000 });

    const whileRunning = await call('PUT', '/api/v1/pipelines/changes', { definition: numbers('changes', { batch: { size: 5, maxWaitMs: 20 } }) });
    expectError(whileRunning, 409, 'conflict');
    expect(whileRunning.body?.['message']).toMatch(/only while configured or stopped/);
    expectError(await call('DELETE', '/api/v1/pipelines/changes/offsets'), 409, 'conflict');
    const deleteRunning = await call('DELETE', '/api/v1/pipelines/changes');
    expectError(deleteRunning, 409, 'conflict');
    expect(deleteRunning.body?.['message']).toMatch(/stop it first/);

    await call('POST', '/api/v1/pipelines/changes/stop');
    const updated = await call('PUT', '/api/v1/pipelines/changes', { definition: numbers('changes', { sink: { type: 'file', path: join(dir, 'changes.jsonl'), format: 'jsonl' }, batch: { size: 5, maxWaitMs: 20 } }) });
    expect(updated.status, JSON.stringify(updated.body)).toBe(200);
    expect(updated.body).toMatchObject({ id: 'changes', status: 'stopped', definition: { batch: { size: 5 }, sink: { type: 'file' } } });
    expect((await call('GET', '/api/v1/pipelines')).body?.['pipelines']).toContainEqual(expect.objectContaining({ id: 'changes', sinkType: 'file' }));
    const renamed = await call('PUT', '/api/v1/pipelines/changes', { definition: numbers('renamed') });
    expectError(renamed, 400, 'bad-request');
    expect(renamed.body?.['details']).toEqual([expect.objectContaining({ field: 'definition.name' })]);
    const invalid = await call('PUT', '/api/v1/pipelines/changes', { definition: numbers('changes', { batch: { size: 0 } }) });
    expectError(invalid, 400, 'bad-request');
    expect(invalid.body?.['details']).toEqual([expect.objectContaining({ field: 'definition.batch.size' })]);
    expectError(await call('PUT', '/api/v1/pipelines/changes', { name: 'no definition' }), 400, 'bad-request');
    expectError(await call('PUT', '/api/v1/pipelines/nope', { definition: numbers('nope') }), 404, 'not-found');

    const before = (await call('GET', '/api/v1/pipelines/changes/offsets')).body?.['checkpoint'] as { sourceOffset: unknown };
    expect(before.sourceOffset).not.toBeNull();
    const reset = await call('DELETE', '/api/v1/pipelines/changes/offsets');
    expect(reset.status).toBe(200);
    expect(reset.body).toMatchObject({ id: 'changes', checkpoint: { sourceOffset: null } });
    expectError(await call('DELETE', '/api/v1/pipelines/nope/offsets'), 404, 'not-found');
    const events = (await call('GET', '/api/v1/pipelines/changes/events?limit=500')).body?.['events'] as { eventType: string; payload: Record<string, unknown> }[];
    expect(events.at(-1)).toMatchObject({ eventType: 'OffsetsReset', payload: { sourceOffset: null, previous: before.sourceOffset } });

    const deleted = await call('DELETE', '/api/v1/pipelines/changes');
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBeUndefined();
    expectError(await call('GET', '/api/v1/pipelines/changes'), 404, 'not-found');
    expect((await call('GET', '/api/v1/pipelines')).body?.['pipelines']).not.toContainEqual(expect.objectContaining({ id: 'changes' }));
    expectError(await call('DELETE', '/api/v1/pipelines/changes'), 404, 'not-found');
    // The id is free again: a new pipeline starts from nothing.
    const again = await call('POST', '/api/v1/pipelines', { id: 'changes', definition: numbers('changes') });
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ status: 'configured', checkpoint: null, metrics: { recordsProcessed: 0 } });
    expect((await call('DELETE', '/api/v1/pipelines/changes')).status).toBe(204);
  });

  it('answers a retried create (same id, same definition) with 200 and the pipeline as it is, and takes over a registration whose create was cut off', { timeout: 60_000 }, async () => {
    const first = await call('POST', '/api/v1/pipelines', { id: 'retried', definition: numbers('retried') });
    expect(first.status).toBe(201);
    // The client lost that answer and asks again with start: the pipeline is not created twice, and it starts (it was still configured).
    const retry = await call('POST', '/api/v1/pipelines', { id: 'retried', definition: numbers('retried'), start: true });
    expect(retry).toMatchObject({ status: 200, body: { id: 'retried', status: 'running' } });
    expect(retry.headers['location']).toBe('/api/v1/pipelines/retried');
    // Running already: a further retry changes nothing.
    expect(await call('POST', '/api/v1/pipelines', { id: 'retried', definition: numbers('retried'), start: true })).toMatchObject({ status: 200, body: { status: 'running' } });
    expect(((await call('GET', '/api/v1/pipelines')).body?.['pipelines'] as { id: string }[]).filter((p) => p.id === 'retried')).toHaveLength(1);
    await call('POST', '/api/v1/pipelines/retried/stop');
    expect((await call('DELETE', '/api/v1/pipelines/retried')).status).toBe(204);

    // Two creates of one id at once: one creates it, the other finds it (200) or is told to retry (503), and the pipeline stays.
    const racing = await Promise.all([1, 2].map(() => call('POST', '/api/v1/pipelines', { id: 'raced', definition: numbers('raced') })));
    expect(racing.map((r) => r.status).sort()).toContainEqual(201);
    for (const answer of racing) expect([200, 201, 503]).toContain(answer.status);
    expect((await call('GET', '/api/v1/pipelines/raced')).body).toMatchObject({ id: 'raced', status: 'configured' });
    expect((await call('DELETE', '/api/v1/pipelines/raced')).status).toBe(204);

    // A create cut off after the coordinator registered the id but before the pipeline was created (its answer lost while the coordinator moved):
    // the id is registered, with nothing behind it. A new create takes it over instead of answering 409 for a pipeline that does not exist.
    const coordinator = node.localCoordinator();
    if (coordinator === undefined) throw new Error('a single node runs its coordinator');
    const registered = await ask<CoordinatorCommand, CoordinatorReply>(coordinator, (replyTo) => ({ type: 'register', pipelineId: 'cutoff', name: 'cutoff', sourceType: 'generator', sinkType: 'console', replyTo }), { timeoutMs: 5_000 });
    expect(registered.status).toBe('success');
    logged.length = 0;
    const taken = await call('POST', '/api/v1/pipelines', { id: 'cutoff', definition: numbers('cutoff') });
    expect(taken).toMatchObject({ status: 201, body: { id: 'cutoff', status: 'configured' } });
    expect(logged).toContainEqual(expect.stringMatching(/pipeline cutoff was registered but never created .* creating it now/));
    expect((await call('DELETE', '/api/v1/pipelines/cutoff')).status).toBe(204);
  });

  it('refuses bad input with field-level errors, unknown ids with 404, big bodies with 413, poisoned and deep bodies with 400', async () => {
    const invalid = await call('POST', '/api/v1/pipelines', { definition: { name: 'x', source: { type: 'nowhere' }, sink: { type: 'console' } } });
    expectError(invalid, 400, 'bad-request');
    expect(invalid.body?.['details']).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'definition.source.type' }), expect.objectContaining({ field: 'definition.name' })]));
    const noDefinition = await call('POST', '/api/v1/pipelines', { id: 'x' });
    expectError(noDefinition, 400, 'bad-request');
    expect(noDefinition.body?.['details']).toEqual([expect.objectContaining({ field: 'body.definition' })]);
    expectError(await call('POST', '/api/v1/pipelines', { id: 'bad id!', definition: numbers('bad') }), 400, 'bad-request');
    const other = await call('POST', '/api/v1/pipelines', { id: 'orders', definition: numbers('orders', { batch: { size: 21, maxWaitMs: 20 } }) });
    expectError(other, 409, 'conflict');
    expect(other.body?.['message']).toMatch(/a pipeline with this id exists with another definition/);
    expectError(await call('GET', '/api/v1/pipelines?status=sleeping'), 400, 'bad-request');
    expectError(await call('GET', '/api/v1/pipelines/nope'), 404, 'not-found');
    expectError(await call('POST', '/api/v1/pipelines/nope/start'), 404, 'not-found');
    expectError(await call('GET', '/api/v1/nothing-here'), 404, 'not-found');
    expectError(await call('POST', '/api/v1/pipelines', { definition: numbers('big', { description: 'x'.repeat(70_000) }) }), 413, 'payload-too-large');
    const poisoned = await app.inject({ method: 'POST', url: '/api/v1/pipelines', headers: { 'content-type': 'application/json' }, payload: '{"definition":{"__proto__":{"polluted":true}}}' });
    expect(poisoned.statusCode).toBe(400);
    // Named as what it is (Fastify's own parser called it 'Body is not valid JSON').
    expect(JSON.parse(poisoned.body)).toMatchObject({ error: 'bad-request', details: [{ field: 'body.definition.__proto__', message: 'A key named __proto__ is not allowed' }] });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    const constructorPoisoned = await app.inject({
      method: 'POST',
      url: '/api/v1/pipelines',
      headers: { 'content-type': 'application/json' },
      payload: '{"definition":{"name":"xyz","source":{"constructor":{"prototype":{"polluted":true}}}}}',
    });
    expect(JSON.parse(constructorPoisoned.body)).toMatchObject({ error: 'bad-request', details: [{ field: 'body.definition.source.constructor.prototype' }] });
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { a: deep };
    const tooDeep = await call('POST', '/api/v1/pipelines', { definition: deep });
    expectError(tooDeep, 400, 'bad-request');
    expect(tooDeep.body?.['message']).toContain('nested deeper than 64');
    const malformed = await app.inject({ method: 'POST', url: '/api/v1/pipelines', headers: { 'content-type': 'application/json' }, payload: '{"definition":' });
    expect(malformed.statusCode).toBe(400);
    expect(JSON.parse(malformed.body)).toMatchObject({ error: 'bad-request', message: expect.stringMatching(/^The request body is not valid JSON: .*JSON/) as string });
    const empty = await app.inject({ method: 'POST', url: '/api/v1/pipelines', headers: { 'content-type': 'application/json' }, payload: ' ' });
    expect(JSON.parse(empty.body)).toMatchObject({ error: 'bad-request', message: 'The request body is empty, but its content-type is application/json' });
  });

  it('answers health, readiness and system status', async () => {
    expect(await call('GET', '/health')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await call('GET', '/ready');
    expect(ready).toMatchObject({
      status: 200,
      body: { ready: true, dependencies: [expect.objectContaining({ name: 'journal', state: 'ok' }), expect.objectContaining({ name: 'sources', state: 'ok', required: false })] },
    });
    expect((await call('GET', '/api/v1/system/status')).body).toMatchObject({ pipelines: 1, byStatus: expect.any(Object) as object });
  });

  it('lists, pauses, resumes and rebuilds projections; an unknown one is 404', { timeout: 60_000 }, async () => {
    const listed = (await call('GET', '/api/v1/projections')).body?.['projections'] as { name: string }[];
    expect(listed.map((p) => p.name)).toEqual(['pipeline_status', 'pipeline_metrics_hourly']);
    expect((await call('POST', '/api/v1/projections/pipeline_status/pause')).body).toMatchObject({ name: 'pipeline_status', state: 'paused' });
    expect((await call('POST', '/api/v1/projections/pipeline_status/resume')).body).toMatchObject({ state: 'running' });
    const rebuild = await call('POST', '/api/v1/projections/pipeline_metrics_hourly/rebuild');
    expect(rebuild.status).toBe(202);
    await vi.waitFor(async () => expect((await call('GET', '/api/v1/projections/pipeline_metrics_hourly')).body?.['rebuild']).toMatchObject({ state: 'done' }), { timeout: 45_000, interval: 200 });
    expectError(await call('POST', '/api/v1/projections/nope/pause'), 404, 'not-found');
    expectError(await call('GET', '/api/v1/projections/nope'), 404, 'not-found');
  });

  it('requires the bearer token from off loopback, compared exactly, and never echoes it', async () => {
    const remote = { remoteAddress: '10.1.2.3' };
    const without = await app.inject({ method: 'GET', url: '/api/v1/pipelines', ...remote });
    expect(without.statusCode).toBe(401);
    const wrong = await app.inject({ method: 'GET', url: '/api/v1/pipelines', headers: { authorization: 'Bearer secret-token-12' }, ...remote });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).not.toContain('secret-token');
    const right = await app.inject({ method: 'GET', url: '/api/v1/pipelines', headers: { authorization: 'Bearer secret-token-123' }, ...remote });
    expect(right.statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/health', ...remote })).statusCode).toBe(200);
    expect(logged.join('\n')).not.toContain('secret-token-123');
  });

  it('serves an OpenAPI 3 document naming every route, whose references resolve', async () => {
    const doc = (await call('GET', '/api/v1/openapi.json')).body as { openapi: string; paths: Record<string, Record<string, unknown>>; components?: { schemas?: Record<string, unknown> } };
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    const paths = Object.keys(doc.paths);
    expect(Object.keys(doc.paths['/api/v1/pipelines/{id}'] ?? {})).toEqual(expect.arrayContaining(['get', 'put', 'delete']));
    expect(Object.keys(doc.paths['/api/v1/pipelines/{id}/offsets'] ?? {})).toEqual(expect.arrayContaining(['get', 'delete']));
    for (const path of ['/api/v1/pipelines', '/api/v1/pipelines/{id}', '/api/v1/pipelines/{id}/start', '/api/v1/pipelines/{id}/events', '/api/v1/projections/{name}/rebuild', '/api/v1/feed', '/health', '/ready']) {
      expect(paths).toContain(path);
    }
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1] as string);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(doc.components?.schemas?.[ref], ref).toBeDefined();
    expect(JSON.stringify(doc)).not.toContain('"$ref":"ErrorBody#"');
  });

  it('streams counts and status changes over server-sent events', { timeout: 60_000 }, async () => {
    await call('POST', '/api/v1/pipelines/orders/start');
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address() as { port: number };
    const received: { event: string; data: Record<string, unknown> }[] = [];
    const stream = httpRequest({ host: '127.0.0.1', port: address.port, path: '/api/v1/pipelines/orders/feed' });
    const opened = new Promise<{ status: number | undefined; type: string | undefined }>((resolve) =>
      stream.on('response', (response) => {
        resolve({ status: response.statusCode, type: response.headers['content-type'] });
        let buffer = '';
        response.on('data', (chunk: Buffer) => {
          buffer += chunk.toString();
          const blocks = buffer.split('\n\n');
          buffer = blocks.pop() ?? '';
          for (const block of blocks) {
            const event = /^event: (.+)$/m.exec(block)?.[1];
            const data = /^data: (.+)$/m.exec(block)?.[1];
            if (event !== undefined && data !== undefined) received.push({ event, data: JSON.parse(data) as Record<string, unknown> });
          }
        });
      }),
    );
    stream.end();
    expect(await opened).toEqual({ status: 200, type: 'text/event-stream; charset=utf-8' });
    await vi.waitFor(() => expect(received.filter((r) => r.event === 'counts').length).toBeGreaterThanOrEqual(8), { timeout: 20_000 });
    const counts = received.filter((r) => r.event === 'counts').map((r) => (r.data['pipelines'] as { id: string; recordsProcessed: number }[])[0]);
    expect(counts.every((c) => c?.id === 'orders')).toBe(true);
    expect((counts.at(-1)?.recordsProcessed ?? 0) > (counts[0]?.recordsProcessed ?? 0)).toBe(true);
    await call('POST', '/api/v1/pipelines/orders/pause');
    await vi.waitFor(() => expect(received).toContainEqual({ event: 'status', data: expect.objectContaining({ id: 'orders', from: 'running', to: 'paused' }) as object }), { timeout: 10_000 });
    stream.destroy();
    expectError(await call('GET', '/api/v1/pipelines/nope/feed'), 404, 'not-found');
  });
});
