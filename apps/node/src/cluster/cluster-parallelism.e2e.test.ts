/**
 * `parallelism` in a cluster (ADR 0013): three real node processes (the
 * built `dataflow start`) on the Postgres journal and Redis, one Kafka
 * pipeline with `parallelism: 6` over 6 partitions created through one
 * node's API. Each task is placed by the shard of its own id, so the tasks
 * run on several nodes, each on exactly one; lifecycle commands sent to any
 * node reach every task; the status shows the six tasks; every record lands
 * once in the upserting sink, also after the node running some of the tasks
 * is killed with SIGKILL and they resume on the others; shrunk to 3 while
 * stopped, the other tasks are deleted on their nodes and stay gone.
 */
import { createKafkaClient, parseKafkaProducerOptions, type KafkaAdmin, type KafkaClient } from '@dataflow/connectors';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { builtCli, hostedBy, nodeJoined, startNodeProcess, writeClusterConfig, type NodeProcess } from './testing/node-processes.js';

const settings = serviceSettings();
const ns = testNamespace(import.meta.url);
const run = `cp${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
const journalSchema = `${run}_journal`;
const sinkSchema = `${run}_sink`;
const topic = `${ns}.${run}`;
const PARALLELISM = 6;
const TASKS = ['fanout', ...Array.from({ length: PARALLELISM - 1 }, (_, i) => `fanout.${i + 1}`)];

let dir: string;
let db: pg.Pool;
let kafka: KafkaClient;
let admin: KafkaAdmin;
const nodes: NodeRun[] = [];
type NodeRun = NodeProcess;

beforeAll(async () => {
  if (!existsSync(builtCli)) throw new Error(`${builtCli} is missing: the test target depends on build (npx nx build @dataflow/node)`);
  dir = await mkdtemp(join(tmpdir(), 'dataflow-cluster-parallel-'));
  db = new pg.Pool({ connectionString: settings.postgresUrl, max: 4 });
  await db.query(`CREATE SCHEMA ${sinkSchema}`);
  await db.query(`CREATE TABLE ${sinkSchema}.rows (id bigint PRIMARY KEY, part int NOT NULL)`);
  kafka = createKafkaClient({ client: 'kafkajs', brokers: [...settings.kafkaBrokers], clientId: ns });
  admin = await kafka.admin();
  await admin.createTopics([{ topic, partitions: PARALLELISM }]);
}, 60_000);

afterAll(async () => {
  for (const node of nodes) if (node.child.exitCode === null) node.child.kill('SIGKILL');
  await Promise.all(nodes.map((n) => n.exited));
  await admin?.deleteTopics([topic]).catch(() => undefined);
  await admin?.close();
  await db?.query(`DROP SCHEMA IF EXISTS ${sinkSchema} CASCADE`);
  await db?.query(`DROP SCHEMA IF EXISTS ${journalSchema} CASCADE`);
  await db?.end();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

const config = (): Promise<string> =>
  writeClusterConfig(dir, 'cluster', { postgresUrl: settings.postgresUrl, journalSchema, redisUrl: settings.redisUrl, run, leaseTtlMs: 4000, tickMs: 500 });

function startNode(id: string, file: string): NodeRun {
  const node = startNodeProcess(id, file, dir);
  nodes.push(node);
  return node;
}

async function joined(node: NodeRun): Promise<void> {
  await nodeJoined(node);
}

/** The error and warning lines of every node (for assertion messages). */
const errorLines = (): string[] => nodes.flatMap((n) => n.lines.filter((l) => /error|warn/i.test(l)).map((l) => `${n.id}: ${l}`));

async function api<T>(node: NodeRun, method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${node.url}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  const text = await response.text();
  return { status: response.status, body: (text === '' ? undefined : JSON.parse(text)) as T };
}

/** Which node hosts each task (a task hosted twice has two entries). */
const placement = (live: readonly NodeRun[]): Promise<Map<string, string[]>> => hostedBy(live);

async function produce(from: number, count: number): Promise<void> {
  const producer = await kafka.producer(parseKafkaProducerOptions('kafkajs', {}));
  try {
    await producer.send(Array.from({ length: count }, (_, i) => ({ topic, key: Buffer.from(`k${from + i}`), value: Buffer.from(JSON.stringify({ id: from + i })) })));
  } finally {
    await producer.close();
  }
}

const rows = async () => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${sinkSchema}.rows`)).rows[0]?.n ?? -1);

type PipelineView = { status: string; parallelism?: number; metrics: { recordsProcessed: number }; tasks?: { id: string; status: string }[] };

describe('a pipeline with parallelism 6 in a cluster of three nodes', () => {
  it('runs its tasks on several nodes, each on one, fans commands out from any node, and loses nothing through a SIGKILL', { timeout: 240_000 }, async () => {
    const file = await config();
    const [a, b, c] = ['node-a', 'node-b', 'node-c'].map((id) => startNode(id, file)) as [NodeRun, NodeRun, NodeRun];
    for (const node of [a, b, c]) await joined(node);
    await vi.waitFor(async () => expect((await api<{ members: unknown[] }>(a, 'GET', '/api/v1/cluster')).body.members).toHaveLength(3), { timeout: 20_000 });

    const definition = {
      name: 'fanout',
      parallelism: PARALLELISM,
      source: { type: 'kafka', brokers: [...settings.kafkaBrokers], topics: [topic], format: 'json', sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, fetchMaxWaitMs: 100 },
      sink: { type: 'postgres', connectionString: settings.postgresUrl, schema: sinkSchema, table: 'rows', columns: { id: 'value.id', part: 'partition' }, upsert: { key: ['id'] } },
      batch: { size: 100, maxWaitMs: 100 },
    };
    const created = await vi.waitFor(
      async () => {
        const answer = await api<PipelineView>(a, 'POST', '/api/v1/pipelines', { id: 'fanout', definition });
        expect(answer.status, JSON.stringify(answer.body)).not.toBe(503);
        return answer;
      },
      { timeout: 60_000, interval: 200 },
    );
    // 200: an earlier try was applied though its answer was a 503 (the coordinator moved meanwhile); the create is safe to retry.
    expect([200, 201], `${JSON.stringify(created.body)} ${errorLines().join('\n')}`).toContain(created.status);

    // Each task on exactly one node; the six on more than one node.
    await vi.waitFor(
      async () => {
        const byTask = await placement([a, b, c]);
        expect([...byTask.keys()].sort()).toEqual([...TASKS].sort());
        expect([...byTask.values()].every((owners) => owners.length === 1)).toBe(true);
      },
      { timeout: 30_000, interval: 250 },
    );
    const before = await placement([a, b, c]);
    const owners = new Set([...before.values()].flat());
    expect(owners.size, JSON.stringify([...before])).toBeGreaterThan(1);

    // Started through a node, whichever: every task runs; any node shows the six.
    const started = await api<PipelineView>(c, 'POST', '/api/v1/pipelines/fanout/start');
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    await vi.waitFor(
      async () => {
        const status = await api<PipelineView>(b, 'GET', '/api/v1/pipelines/fanout/status');
        expect(status.body).toMatchObject({ status: 'running' });
        expect(status.body.tasks?.map((t) => [t.id, t.status])).toEqual(TASKS.map((id) => [id, 'running']));
      },
      { timeout: 20_000, interval: 250 },
    );

    await produce(0, 3_000);
    await vi.waitFor(async () => expect(await rows()).toBe(3_000), { timeout: 60_000, interval: 250 });
    await vi.waitFor(async () => expect((await api<PipelineView>(a, 'GET', '/api/v1/pipelines/fanout')).body.metrics.recordsProcessed).toBeGreaterThanOrEqual(3_000), {
      timeout: 30_000,
      interval: 250,
    });

    // SIGKILL a node running tasks but not task 0's node: its tasks resume on the others, the records after the kill arrive.
    const owner0 = before.get('fanout')?.[0];
    const victim = [a, b, c].find((n) => n.id !== owner0 && [...before.values()].some((o) => o[0] === n.id)) ?? [a, b, c].find((n) => n.id !== owner0);
    if (victim === undefined) throw new Error('no node to kill');
    const survivors = [a, b, c].filter((n) => n !== victim);
    victim.child.kill('SIGKILL');
    await victim.exited;
    await produce(3_000, 2_000);
    await vi.waitFor(
      async () => {
        const byTask = await placement(survivors);
        expect([...byTask.keys()].sort()).toEqual([...TASKS].sort());
      },
      { timeout: 60_000, interval: 250 },
    );
    await vi.waitFor(async () => expect(await rows()).toBe(5_000), { timeout: 90_000, interval: 250 });
    const ids = await db.query<{ n: string; min: string; max: string }>(`SELECT count(DISTINCT id) AS n, min(id) AS min, max(id) AS max FROM ${sinkSchema}.rows`);
    expect(ids.rows[0]).toEqual({ n: '5000', min: '0', max: '4999' });

    // Stop through a survivor reaches every task.
    const stopped = await api<PipelineView>(survivors[0] ?? a, 'POST', '/api/v1/pipelines/fanout/stop');
    expect(stopped.status, JSON.stringify(stopped.body)).toBe(200);
    expect(stopped.body.tasks?.map((t) => t.status)).toEqual(TASKS.map(() => 'stopped'));
    // 6 -> 3 while stopped, through a survivor: tasks 3..5 are deleted on their nodes and not adopted again; 0..2 stay.
    const shrunk = await api<PipelineView>(survivors[1] ?? a, 'PUT', '/api/v1/pipelines/fanout', { definition: { ...definition, parallelism: 3 } });
    expect(shrunk.status, `${JSON.stringify(shrunk.body)} ${errorLines().join('\n')}`).toBe(200);
    expect(shrunk.body.tasks?.map((t) => t.id)).toEqual(TASKS.slice(0, 3));
    await new Promise((resolve) => setTimeout(resolve, 2_000)); // a few placement rounds
    expect([...(await placement(survivors)).keys()].sort()).toEqual(TASKS.slice(0, 3).sort());
    expect((await api<PipelineView>(survivors[0] ?? a, 'GET', '/api/v1/pipelines/fanout.4')).status).toBe(404);
    console.log(`cluster parallelism: tasks placed ${JSON.stringify([...before])}; killed ${victim.id}`);

    for (const node of survivors) node.child.kill('SIGTERM');
    for (const node of survivors) expect(await node.exited).toBe(0);
    // Tasks 1..5 are not in the coordinator's registry: no node sent it their statuses (it would refuse them).
    expect(errorLines().filter((l) => /fanout\.\d/.test(l) && /coordinator/.test(l))).toEqual([]);
  });
});
