/**
 * A source that stops answering (as a Kafka source does while its brokers
 * are down: the client reconnects by itself, the pipeline keeps running and
 * polls nothing) shows: the node warns once with the cause, the pipeline's
 * status names the source as unreachable since then, `/ready` lists it
 * (degraded, not required: the node stays ready), and when the source
 * answers again the problem clears and the log says how long it lasted.
 * The node runs on the embedded store; the source is the real generator
 * with a `lag()` the test can make fail the way a Kafka source's does when
 * its brokers are down (apps/node/docs-api.md, "A source that does not
 * answer", tells what a real outage looks like).
 */
import type { Source, SourceLag } from '@dataflow/core';
import type { FastifyInstance } from 'fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createAdminApi } from '../api/admin-api.js';
import { localConnectorFactory } from './connector-factory.js';
import { startNode, type DataflowNode } from './dataflow-node.js';
import type { NodeLogger } from './node-logger.js';

const logged: { level: string; message: string }[] = [];
const logger: NodeLogger = {
  debug: (message) => logged.push({ level: 'debug', message }),
  info: (message) => logged.push({ level: 'info', message }),
  warn: (message) => logged.push({ level: 'warn', message }),
  error: (message) => logged.push({ level: 'error', message }),
};

/** What the sources' `lag()` does now: answer, or fail as a Kafka admin client does when no broker answers. */
let brokers: 'up' | 'down' = 'up';

let dir: string;
let node: DataflowNode;
let app: FastifyInstance;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-sources-'));
  const local = localConnectorFactory({ stream: new Writable({ write: (_chunk, _encoding, done) => done() }) });
  node = await startNode({
    store: { type: 'pglite', dataDir: dir },
    logger,
    lagIntervalMs: 100,
    connectors: {
      ...local,
      createSource: (definition): Source => {
        const source = local.createSource(definition);
        const lag = (): Promise<readonly SourceLag[]> => {
          if (brokers === 'up') return Promise.resolve([{ topic: 'events', partition: 0, lag: 0 }]);
          const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:29092'), { code: 'ECONNREFUSED' });
          return Promise.reject(new Error('kafka: reading the lag of consumer group dataflow-events failed', { cause: refused }));
        };
        return Object.assign(Object.create(source) as Source, { lag });
      },
    },
  });
  app = await createAdminApi({ node, logger });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await node?.shutdown();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

const get = async (url: string) => {
  const response = await app.inject({ method: 'GET', url });
  return { status: response.statusCode, body: JSON.parse(response.body) as Record<string, unknown> };
};

describe('a source that does not answer', () => {
  it('is named by the status, /ready and one warning with its cause while it lasts, and clears when the source answers', { timeout: 60_000 }, async () => {
    await node.createPipeline({ name: 'events', source: { type: 'generator', rate: 200, fields: { id: { kind: 'sequence' } } }, sink: { type: 'console' }, batch: { size: 10, maxWaitMs: 20 } }, { pipelineId: 'events' });
    await node.start('events');
    await vi.waitFor(() => expect(node.sources.of('events')).toBeUndefined(), { timeout: 5_000 });
    expect((await get('/api/v1/pipelines/events/status')).body).toMatchObject({ status: 'running', source: null });
    expect(((await get('/ready')).body['dependencies'] as unknown[]).find((d) => (d as { name: string }).name === 'sources')).toMatchObject({ state: 'ok', required: false });

    brokers = 'down';
    const downAt = Date.now();
    // Several failed samples in a row (one every 100 ms): one warning, the rest at debug.
    await vi.waitFor(() => expect(node.sources.of('events')?.failures ?? 0).toBeGreaterThanOrEqual(4), { timeout: 10_000 });
    const status = (await get('/api/v1/pipelines/events/status')).body;
    expect(status).toMatchObject({
      status: 'running',
      source: { state: 'unreachable', task: 'events', type: 'generator', cause: expect.stringContaining('connect ECONNREFUSED 127.0.0.1:29092') as string },
    });
    const since = Date.parse((status['source'] as { since: string }).since);
    expect(since).toBeGreaterThanOrEqual(downAt - 5);
    const ready = await get('/ready');
    expect(ready.status).toBe(200);
    expect(ready.body['dependencies']).toContainEqual(
      expect.objectContaining({ name: 'sources', required: false, state: 'degraded', detail: expect.stringMatching(/^pipeline events: its generator source does not answer since .*ECONNREFUSED/) as string }),
    );
    const warnings = logged.filter((l) => l.level === 'warn' && l.message.includes('source does not answer'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toMatch(/pipeline events: its generator source does not answer \(kafka: reading the lag .* failed: connect ECONNREFUSED 127\.0\.0\.1:29092\)/);

    brokers = 'up';
    await vi.waitFor(() => expect(node.sources.of('events')).toBeUndefined(), { timeout: 5_000 });
    expect((await get('/api/v1/pipelines/events/status')).body).toMatchObject({ status: 'running', source: null });
    expect(logged).toContainEqual({ level: 'info', message: expect.stringMatching(/^pipeline events: its generator source answers again \(it did not for [0-9.]+ s\)$/) as string });

    // A stopped pipeline has no source to reach: a problem it had goes with it.
    brokers = 'down';
    await vi.waitFor(() => expect(node.sources.of('events')).toBeDefined(), { timeout: 5_000 });
    await node.stop('events');
    expect(node.sources.problems()).toEqual([]);
    brokers = 'up';
  });
});
