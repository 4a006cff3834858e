/**
 * `parallelism` through the admin API of a single node on the embedded store
 * and real Kafka (ADR 0013): a pipeline of 2 tasks over a topic of 4
 * partitions shows one pipeline whose status combines its tasks', whose
 * counts are summed, with a `tasks` array; lifecycle commands reach every
 * task; a restarted node runs every task again; parallelism changes while
 * stopped (a new task joins the group, a removed task's partitions move to
 * the others, nothing lost or read twice); delete removes every task; a
 * non-Kafka source with parallelism 2 is refused at the field.
 */
import { allConnectorsRegistry, createKafkaClient, parseKafkaProducerOptions, type KafkaAdmin, type KafkaClient } from '@dataflow/connectors';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import type { FastifyInstance } from 'fastify';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { localConnectorFactory } from '../node/connector-factory.js';
import { startNode, type DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { createAdminApi } from './admin-api.js';

const logged: string[] = [];
const logger: NodeLogger = { debug: () => undefined, info: () => undefined, warn: (m) => logged.push(m), error: (m) => logged.push(m) };
const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
const settings = serviceSettings();
const ns = testNamespace(import.meta.url);
const topic = `${ns}.events`;

let dir: string;
let node: DataflowNode;
let app: FastifyInstance;
let kafka: KafkaClient;
let admin: KafkaAdmin;

async function open(): Promise<void> {
  node = await startNode({
    store: { type: 'pglite', dataDir: dir },
    logger,
    connectors: localConnectorFactory({ stream: discard }),
    connectorRegistry: allConnectorsRegistry,
    statusReportIntervalMs: 100,
    lagIntervalMs: 100,
  });
  app = await createAdminApi({ node, logger, bodyLimit: 64 * 1024, feedIntervalMs: 200 });
}

async function close(): Promise<void> {
  await app?.close();
  await node?.shutdown();
}

/**
 * Waits until the group has settled on `tasks` members: each task's last lag
 * sample names partitions, none twice, all four together (records produced
 * before would be read across a rebalance, and may be read twice).
 */
async function settled(tasks: readonly string[]): Promise<void> {
  const assigned = new Map<string, number[]>();
  const off = node.events.on('pipeline.source.lag', (e) => assigned.set(e.pipelineId, e.partitions.map((p) => p.partition)));
  try {
    await vi.waitFor(
      () => {
        const all = tasks.flatMap((t) => assigned.get(t) ?? []);
        expect(tasks.every((t) => (assigned.get(t)?.length ?? 0) > 0)).toBe(true);
        expect(all.sort()).toEqual([0, 1, 2, 3]);
      },
      { timeout: 60_000, interval: 100 },
    );
  } finally {
    off();
  }
}

async function produce(from: number, count: number): Promise<void> {
  const producer = await kafka.producer(parseKafkaProducerOptions('kafkajs', {}));
  try {
    await producer.send(Array.from({ length: count }, (_, i) => ({ topic, key: Buffer.from(`k${from + i}`), value: Buffer.from(JSON.stringify({ id: from + i })) })));
  } finally {
    await producer.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-parallel-'));
  kafka = createKafkaClient({ client: 'kafkajs', brokers: [...settings.kafkaBrokers], clientId: ns });
  admin = await kafka.admin();
  await admin.createTopics([{ topic, partitions: 4 }]);
  await open();
}, 120_000);

afterAll(async () => {
  await close();
  await admin?.deleteTopics([topic]).catch(() => undefined);
  await admin?.close();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) => {
  const response = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: response.statusCode, body: response.body === '' ? undefined : (JSON.parse(response.body) as Record<string, unknown>) };
};

const definition = (parallelism: number) => ({
  name: 'events-parallel',
  parallelism,
  source: { type: 'kafka', brokers: [...settings.kafkaBrokers], topics: [topic], format: 'json', sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, fetchMaxWaitMs: 100 },
  sink: { type: 'console' },
  batch: { size: 50, maxWaitMs: 50 },
});

type TaskView = { id: string; status: string; checkpoint: { sourceOffset?: { groupId: string; positions: [string, number, string][] } } | null; metrics: { recordsProcessed: number } };

const tasksOf = async (): Promise<TaskView[]> => ((await call('GET', '/api/v1/pipelines/events')).body?.['tasks'] ?? []) as TaskView[];

describe('parallelism through the admin API', () => {
  it('refuses parallelism above 1 for a source that cannot split its input, at the field', async () => {
    const refused = await call('POST', '/api/v1/pipelines', {
      id: 'numbers',
      definition: { name: 'numbers', parallelism: 2, source: { type: 'generator', count: 10 }, sink: { type: 'console' } },
    });
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('parallelism 2 is not possible: a generator source cannot split its input among tasks');
    expect((await call('POST', '/api/v1/pipelines', { id: 'numbers', definition: { ...definition(65), name: 'numbers' } })).status).toBe(400);
  });

  it('runs a Kafka pipeline as 2 tasks shown as one pipeline, across a node restart, parallelism changes 2 -> 3 -> 2 and a delete', { timeout: 180_000 }, async () => {
    const created = await call('POST', '/api/v1/pipelines', { id: 'events', definition: definition(2), start: true });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'events', status: 'running', parallelism: 2, tasks: [{ id: 'events', status: 'running' }, { id: 'events.1', status: 'running' }] });
    // The registry lists one pipeline, with its parallelism.
    expect((await call('GET', '/api/v1/pipelines')).body?.['pipelines']).toEqual([expect.objectContaining({ id: 'events', parallelism: 2 })]);

    await settled(['events', 'events.1']);
    await produce(0, 400);
    await vi.waitFor(async () => expect((await call('GET', '/api/v1/pipelines/events/metrics')).body?.['recordsProcessed']).toBe(400), { timeout: 60_000, interval: 200 });
    const tasks = await tasksOf();
    // Both tasks read, each its own partitions of one group.
    expect(tasks.map((t) => t.metrics.recordsProcessed).every((n) => n > 0)).toBe(true);
    const partitions = tasks.map((t) => (t.checkpoint?.sourceOffset?.positions ?? []).map((p) => p[1]));
    expect(partitions.flat().sort()).toEqual([0, 1, 2, 3]);
    expect(tasks.map((t) => t.checkpoint?.sourceOffset?.groupId)).toEqual(['dataflow-events', 'dataflow-events']);
    expect((await call('GET', '/api/v1/pipelines/events/status')).body).toMatchObject({ status: 'running', tasks: [{ status: 'running' }, { status: 'running' }] });

    // A node restart resumes both tasks.
    await close();
    await open();
    expect((await call('GET', '/api/v1/pipelines/events')).body).toMatchObject({ status: 'running', metrics: { recordsProcessed: 400 }, tasks: [{ status: 'running' }, { status: 'running' }] });

    // Stop reaches every task; the update is refused while it runs, taken while stopped.
    expect((await call('PUT', '/api/v1/pipelines/events', { definition: definition(3) })).status).toBe(409);
    expect((await call('POST', '/api/v1/pipelines/events/stop')).body).toMatchObject({ status: 'stopped', tasks: [{ status: 'stopped' }, { status: 'stopped' }] });
    const updated = await call('PUT', '/api/v1/pipelines/events', { definition: definition(3) });
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ parallelism: 3, tasks: [{ id: 'events', status: 'stopped' }, { id: 'events.1', status: 'stopped' }, { id: 'events.2', status: 'configured' }] });
    expect((await call('POST', '/api/v1/pipelines/events/start')).body).toMatchObject({ status: 'running', tasks: [{ status: 'running' }, { status: 'running' }, { status: 'running' }] });
    await settled(['events', 'events.1', 'events.2']);
    await produce(400, 300);
    // Nothing read twice: the stop committed what the checkpoints hold, so the new split starts there.
    await vi.waitFor(async () => expect((await call('GET', '/api/v1/pipelines/events/metrics')).body?.['recordsProcessed']).toBe(700), { timeout: 60_000, interval: 200 });

    // 3 -> 2 while stopped: the third task is deleted, its partitions move to the others at the committed offsets.
    await call('POST', '/api/v1/pipelines/events/stop');
    const shrunk = await call('PUT', '/api/v1/pipelines/events', { definition: definition(2) });
    expect(shrunk.body).toMatchObject({ parallelism: 2, tasks: [{ id: 'events' }, { id: 'events.1' }] });
    expect((await call('GET', '/api/v1/pipelines/events.2')).status).toBe(404);
    expect((await call('GET', '/api/v1/pipelines')).body?.['pipelines']).toEqual([expect.objectContaining({ id: 'events', parallelism: 2 })]);
    expect((await call('POST', '/api/v1/pipelines/events/start')).body).toMatchObject({ status: 'running', tasks: [{ status: 'running' }, { status: 'running' }] });
    await settled(['events', 'events.1']);
    // The summed counts are of the remaining tasks (the deleted task's records left with it); the new records arrive once.
    const processedBefore = (await tasksOf()).reduce((n, t) => n + t.metrics.recordsProcessed, 0);
    await produce(700, 100);
    await vi.waitFor(
      async () => {
        const positions = (await tasksOf()).flatMap((t) => t.checkpoint?.sourceOffset?.positions ?? []);
        expect(positions.map((p) => p[1]).sort()).toEqual([0, 1, 2, 3]);
        expect(positions.reduce((n, p) => n + Number(p[2]), 0)).toBe(800);
      },
      { timeout: 60_000, interval: 200 },
    );
    expect((await tasksOf()).reduce((n, t) => n + t.metrics.recordsProcessed, 0)).toBe(processedBefore + 100);

    // Delete reaches every task.
    expect((await call('DELETE', '/api/v1/pipelines/events')).status).toBe(409);
    await call('POST', '/api/v1/pipelines/events/stop');
    // One task running again (by its own id): the pipeline shows running, and is not deleted in part.
    expect((await call('POST', '/api/v1/pipelines/events.1/start')).body).toMatchObject({ id: 'events.1', status: 'running' });
    expect((await call('GET', '/api/v1/pipelines/events/status')).body).toMatchObject({ status: 'running', tasks: [{ status: 'stopped' }, { status: 'running' }] });
    const refused = await call('DELETE', '/api/v1/pipelines/events');
    expect(refused.status).toBe(409);
    expect(refused.body?.['message']).toContain('its task events.1 is running');
    expect((await call('GET', '/api/v1/pipelines/events')).body).toMatchObject({ parallelism: 2 });
    await call('POST', '/api/v1/pipelines/events/stop');
    expect((await call('DELETE', '/api/v1/pipelines/events')).status).toBe(204);
    expect((await call('GET', '/api/v1/pipelines/events')).status).toBe(404);
    expect((await call('GET', '/api/v1/pipelines/events.1')).status).toBe(404);
    expect(node.hostedPipelines()).toEqual([]);
    expect(logged.filter((line) => /events/.test(line))).toEqual([]);
  });
});
