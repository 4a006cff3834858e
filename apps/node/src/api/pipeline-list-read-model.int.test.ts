/**
 * The pipelines list from the read models, on a real Postgres journal and
 * real Kafka: node A runs a parallel pipeline (3 tasks over a topic of 4
 * partitions), the coordinator and both slice ranges of the read models;
 * its list shows a pipeline just created at once (from the registry, while
 * the view has not applied it), then the pipeline's counts summed over its
 * tasks from `pipeline_status` (the registry has task 0's alone), with the
 * view's lag, and `GET /{id}` adds the view's row. Node B shares the
 * journal in cluster mode, runs no range, and cannot reach a coordinator
 * (none holds it): its list is answered from the read model alone, with
 * the same counts, saying the registry was unavailable, instead of a 503.
 */
import { allConnectorsRegistry, createKafkaClient, parseKafkaProducerOptions, type KafkaAdmin, type KafkaClient } from '@dataflow/connectors';
import { sliceRanges, type ProjectionStatusEvent } from '@dataflow/projections';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import type { FastifyInstance } from 'fastify';
import { Writable } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnRemoteCoordinator } from '../cluster/remote-coordinator.js';
import { localConnectorFactory } from '../node/connector-factory.js';
import { startNode, type DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { startNodeProjections, type SlicedNodeProjections } from '../projections/node-projections.js';
import { createAdminApi } from './admin-api.js';

const logged: string[] = [];
const logger: NodeLogger = { debug: () => undefined, info: () => undefined, warn: (m) => logged.push(m), error: (m) => logged.push(m) };
const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
const settings = serviceSettings();
const schema = testNamespace(import.meta.url);
const topic = `${schema}.orders`;
const ranges = sliceRanges(2);

let kafka: KafkaClient;
let admin: KafkaAdmin;
let nodeA: DataflowNode;
let projectionsA: SlicedNodeProjections;
let appA: FastifyInstance;
let nodeB: DataflowNode;
let projectionsB: SlicedNodeProjections;
let appB: FastifyInstance;
const projectionEvents: ProjectionStatusEvent[] = [];

beforeAll(async () => {
  kafka = createKafkaClient({ client: 'kafkajs', brokers: [...settings.kafkaBrokers], clientId: schema });
  admin = await kafka.admin();
  await admin.createTopics([{ topic, partitions: 4 }]);
  const store = { type: 'postgres', url: settings.postgresUrl, schema, migrate: 'auto' } as const;
  nodeA = await startNode({
    store,
    nodeId: 'node-a',
    logger,
    connectors: localConnectorFactory({ stream: discard }),
    connectorRegistry: allConnectorsRegistry,
    statusReportIntervalMs: 100,
    lagIntervalMs: 100,
  });
  const a = await startNodeProjections({ persistence: nodeA.persistence, logger, migrate: 'auto', sliceRanges: ranges });
  if (a === undefined) throw new Error('projections must run on Postgres');
  projectionsA = a;
  projectionsA.events.on('*', (event) => projectionEvents.push(event));
  for (const range of ranges) await projectionsA.startRange(range);
  appA = await createAdminApi({ node: nodeA, projections: projectionsA, logger });

  // A node of the same cluster while no node holds the coordinator: it hosts nothing and runs no projection range.
  nodeB = await startNode({
    store,
    nodeId: 'node-b',
    logger,
    connectors: localConnectorFactory({ stream: discard }),
    connectorRegistry: allConnectorsRegistry,
    cluster: { hosts: () => false, remoteCoordinator: (system) => spawnRemoteCoordinator(system, { holderUrl: () => undefined }) },
  });
  const b = await startNodeProjections({ persistence: nodeB.persistence, logger, migrate: 'check', sliceRanges: ranges });
  if (b === undefined) throw new Error('projections must run on Postgres');
  projectionsB = b;
  appB = await createAdminApi({ node: nodeB, projections: projectionsB, logger });
}, 120_000);

afterAll(async () => {
  await appB?.close();
  await projectionsB?.close();
  await nodeB?.shutdown();
  await appA?.close();
  await projectionsA?.close();
  await nodeA?.shutdown();
  await admin?.deleteTopics([topic]).catch(() => undefined);
  await admin?.close();
  const pool = new pg.Pool({ connectionString: settings.postgresUrl, max: 1 });
  await pool.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  await pool.end();
}, 60_000);

const call = async (app: FastifyInstance, method: 'GET' | 'POST', url: string, payload?: unknown) => {
  const response = await app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: response.statusCode, body: response.body === '' ? undefined : (JSON.parse(response.body) as Record<string, unknown>) };
};

type ListItem = { id: string; status: string; totalRecords: number; failedRecords: number; totalBatches?: number; countsFrom: string; parallelism?: number };
type ListAnswer = { pipelines: ListItem[]; registry: { available: boolean; error?: string }; readModel: { available: boolean; lag: { kind: string; events?: number }; eventsApplied: number } };
const list = async (app: FastifyInstance, query = ''): Promise<ListAnswer> => {
  const answer = await call(app, 'GET', `/api/v1/pipelines${query}`);
  expect(answer.status).toBe(200);
  return answer.body as unknown as ListAnswer;
};

type TaskView = { id: string; metrics: { recordsProcessed: number; batches: number } };

/** Waits until the group has settled on the three tasks: each names partitions in its lag samples, none twice, all four together. */
async function settled(tasks: readonly string[]): Promise<void> {
  const assigned = new Map<string, number[]>();
  const off = nodeA.events.on('pipeline.source.lag', (e) => assigned.set(e.pipelineId, e.partitions.map((p) => p.partition)));
  try {
    await vi.waitFor(
      () => {
        expect(tasks.every((t) => (assigned.get(t)?.length ?? 0) > 0)).toBe(true);
        expect(tasks.flatMap((t) => assigned.get(t) ?? []).sort()).toEqual([0, 1, 2, 3]);
      },
      { timeout: 60_000, interval: 100 },
    );
  } finally {
    off();
  }
}

describe('the pipelines list from the read models', () => {
  it('lists a pipeline just created at once from the registry, while the view has not applied it', { timeout: 60_000 }, async () => {
    await projectionsA.pause('pipeline_status');
    await vi.waitFor(() => expect(projectionEvents.filter((e) => e.type === 'stopped' && e.reason === 'paused' && e.id.name === 'pipeline_status')).toHaveLength(ranges.length), { timeout: 20_000 });
    const created = await call(appA, 'POST', '/api/v1/pipelines', {
      id: 'orders',
      definition: {
        name: 'orders',
        parallelism: 3,
        source: { type: 'kafka', brokers: [...settings.kafkaBrokers], topics: [topic], format: 'json', sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, fetchMaxWaitMs: 100 },
        sink: { type: 'console' },
        batch: { size: 20, maxWaitMs: 50 },
      },
    });
    expect(created.status).toBe(201);
    const answer = await list(appA);
    expect(answer.pipelines).toEqual([expect.objectContaining({ id: 'orders', status: 'configured', parallelism: 3, totalRecords: 0, countsFrom: 'registry' })]);
    expect(answer.registry).toEqual({ available: true });
    // The view is behind by at least the tasks' PipelineCreated events.
    expect(answer.readModel).toMatchObject({ available: true, lag: { kind: 'known', events: expect.any(Number) as number } });
    expect(answer.readModel.lag.events).toBeGreaterThanOrEqual(3);
    expect((await list(appA, '?status=configured')).pipelines.map((p) => p.id)).toEqual(['orders']);
    expect((await list(appA, '?status=running')).pipelines).toEqual([]);
    expect((await call(appA, 'GET', '/api/v1/pipelines/orders')).body).toMatchObject({ id: 'orders', status: 'configured', readModel: null });
    await projectionsA.resume('pipeline_status');
  });

  it("lists a parallel pipeline's counts summed over its tasks from the read model, and GET /{id} adds the view's row", { timeout: 120_000 }, async () => {
    expect((await call(appA, 'POST', '/api/v1/pipelines/orders/start')).body).toMatchObject({ status: 'running' });
    await settled(['orders', 'orders.1', 'orders.2']);
    const producer = await kafka.producer(parseKafkaProducerOptions('kafkajs', {}));
    try {
      await producer.send(Array.from({ length: 300 }, (_, i) => ({ topic, key: Buffer.from(`k${i}`), value: Buffer.from(JSON.stringify({ id: i })) })));
    } finally {
      await producer.close();
    }
    let tasks: TaskView[] = [];
    await vi.waitFor(
      async () => {
        tasks = ((await call(appA, 'GET', '/api/v1/pipelines/orders')).body?.['tasks'] ?? []) as TaskView[];
        expect(tasks.reduce((sum, t) => sum + t.metrics.recordsProcessed, 0)).toBe(300);
      },
      { timeout: 60_000, interval: 200 },
    );
    // More than task 0 took part: the registry's count (task 0's) is not the pipeline's.
    expect(tasks.filter((t) => t.metrics.recordsProcessed > 0).length).toBeGreaterThan(1);
    const batches = tasks.reduce((sum, t) => sum + t.metrics.batches, 0);
    const taskZero = tasks.find((t) => t.id === 'orders')?.metrics.recordsProcessed;
    expect(taskZero).toBeLessThan(300);
    expect((await nodeA.listPipelines()).find((p) => p.pipelineId === 'orders')?.totalRecords).toBeLessThanOrEqual(taskZero ?? 0);

    await vi.waitFor(
      async () => {
        const answer = await list(appA);
        expect(answer.pipelines).toEqual([expect.objectContaining({ id: 'orders', status: 'running', parallelism: 3, totalRecords: 300, failedRecords: 0, totalBatches: batches, countsFrom: 'read-model' })]);
        expect(answer.readModel).toMatchObject({ available: true, lag: { kind: 'known', events: 0 } });
      },
      { timeout: 30_000, interval: 200 },
    );
    expect((await list(appA, '?status=running')).pipelines.map((p) => p.id)).toEqual(['orders']);
    expect((await list(appA, '?status=stopped')).pipelines).toEqual([]);
    expect((await call(appA, 'GET', '/api/v1/pipelines/orders')).body).toMatchObject({
      id: 'orders',
      status: 'running',
      metrics: { recordsProcessed: 300 },
      readModel: { status: 'running', totalRecords: 300, totalBatches: batches, totalFailures: 0, updatedAt: expect.any(String) as string },
    });
    // A task's own id shows the task alone, without the pipeline's row.
    expect((await call(appA, 'GET', '/api/v1/pipelines/orders.1')).body).not.toHaveProperty('readModel');
  });

  it('answers from the read model alone on a node that cannot reach the coordinator, instead of a 503', { timeout: 60_000 }, async () => {
    // Without read models this node's list would be a 503: the coordinator cannot be reached.
    await expect(nodeB.listPipelines()).rejects.toMatchObject({ tag: 'node/unavailable', retriable: true });
    const answer = await list(appB);
    expect(answer.registry).toEqual({ available: false, error: expect.stringContaining('coordinator') as string });
    expect(answer.pipelines).toEqual([
      expect.objectContaining({ id: 'orders', pipelineId: 'orders', name: 'orders', status: 'running', sourceType: 'kafka', sinkType: 'console', totalRecords: 300, failedRecords: 0, countsFrom: 'read-model' }),
    ]);
    expect(answer.readModel).toMatchObject({ available: true, lag: { kind: 'known', events: 0 } });
    expect((await list(appB, '?status=running')).pipelines.map((p) => p.id)).toEqual(['orders']);
    expect((await list(appB, '?status=paused')).pipelines).toEqual([]);
    // What the list's first test showed from the registry, the fallback shows from the view: the same counts as node A.
    const fromA = (await list(appA)).pipelines[0];
    expect(answer.pipelines[0]).toMatchObject({ totalRecords: fromA?.totalRecords, totalBatches: fromA?.totalBatches });
  });
});
