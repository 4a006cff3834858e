/**
 * `parallelism: 3` on a real Kafka topic of 6 partitions (ADR 0013): three
 * pipeline entities (task ids `p`, `p.1`, `p.2`) whose Kafka sources join one
 * consumer group, `dataflow-<pipelineId>` of the pipeline. Every record
 * reaches the (idempotent, upserting) Postgres sink, each task's checkpoint
 * holds a set of partitions disjoint from the others', the union is all six,
 * and the broker shows one group of three members.
 */
import { createActorSystem, type ActorSystem, type ConnectorFactory } from '@dataflow/core';
import { createPostgresPersistence, type PostgresPersistence } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaCheckpoint, spawnPipelineTasks } from '../e2e/harness/parallel-tasks.js';
import { createDeadLetterTarget, createSink, createSource } from '../factory/create-connector.js';
import { createKafkaClient } from './kafka-client.js';
import { parseKafkaProducerOptions } from './kafka-options.js';
import type { KafkaAdmin, KafkaClient, ProducerRecord } from './kafka-port.js';

const RECORDS = 3_000;
const PARTITIONS = 6;
const PARALLELISM = 3;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}${last === undefined ? '' : ` (last error: ${last instanceof Error ? last.message : JSON.stringify(last)})`}`);
}

describe('a Kafka pipeline with parallelism 3', () => {
  const ns = testNamespace(import.meta.url);
  const topic = `${ns}.orders`;
  const pipelineId = 'orders';
  const settings = serviceSettings();
  let client: KafkaClient;
  let admin: KafkaAdmin;
  let kafkajs: Kafka;
  let pool: pg.Pool;
  let persistence: PostgresPersistence;
  let system: ActorSystem;

  beforeAll(async () => {
    client = createKafkaClient({ client: 'kafkajs', brokers: [...settings.kafkaBrokers], clientId: ns });
    admin = await client.admin();
    await admin.createTopics([{ topic, partitions: PARTITIONS }]);
    kafkajs = new Kafka({ clientId: `${ns}-admin`, brokers: [...settings.kafkaBrokers], logLevel: logLevel.NOTHING });
    pool = new pg.Pool({ connectionString: settings.postgresUrl, max: 6 });
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(ns)}`);
    await pool.query(`CREATE TABLE ${pg.escapeIdentifier(ns)}.orders (id bigint PRIMARY KEY, part int NOT NULL, task_offset bigint NOT NULL)`);
    persistence = await createPostgresPersistence({ pool, ownsPool: false, schema: ns, ensureSchema: true });
    system = createActorSystem({ name: 'kafka-parallel-tasks' });
  }, 120_000);

  afterAll(async () => {
    await system?.terminate();
    await persistence?.close();
    await admin?.deleteTopics([topic]).catch(() => undefined);
    await admin?.close();
    await pool?.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(ns)} CASCADE`);
    await pool?.end();
  }, 60_000);

  it('splits the partitions among three tasks of one consumer group, each checkpointing only its own, and delivers every record', { timeout: 180_000 }, async () => {
    const definition = {
      name: 'orders-parallel',
      parallelism: PARALLELISM,
      source: { type: 'kafka', brokers: [...settings.kafkaBrokers], topics: [topic], format: 'json', sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000, fetchMaxWaitMs: 100 },
      transforms: [],
      sink: {
        type: 'postgres',
        connectionString: settings.postgresUrl,
        schema: ns,
        table: 'orders',
        columns: { id: 'value.id', part: 'partition', task_offset: 'offset' },
        upsert: { key: ['id'] },
      },
      batch: { size: 100, maxWaitMs: 100 },
    };
    const connectors: ConnectorFactory = { createSource: (d) => createSource(d), createSink: (d) => createSink(d), createDeadLetterTarget: (d) => createDeadLetterTarget(d) };
    const tasks = spawnPipelineTasks(system, { pipelineId, parallelism: PARALLELISM, persistence, connectors });
    await tasks.all((replyTo) => ({ type: 'create', definition, replyTo }));
    await tasks.all((replyTo) => ({ type: 'start', replyTo }));

    // One group named after the pipeline, three members, each with partitions: then the records are produced.
    const groupId = `dataflow-${pipelineId}`;
    const kafkaAdmin = kafkajs.admin();
    await kafkaAdmin.connect();
    try {
      const group = await waitFor('a stable group of three members', async () => {
        const described = (await kafkaAdmin.describeGroups([groupId])).groups[0];
        return described?.state === 'Stable' && described.members.length === PARALLELISM ? described : undefined;
      });
      expect(group.members).toHaveLength(PARALLELISM);
      // No task formed a group of its own.
      const groups = (await kafkaAdmin.listGroups()).groups.map((g) => g.groupId);
      expect(groups.filter((g) => g.startsWith(`dataflow-${pipelineId}.`))).toEqual([]);
    } finally {
      await kafkaAdmin.disconnect();
    }

    const producer = await client.producer(parseKafkaProducerOptions('kafkajs', {}));
    try {
      const records: ProducerRecord[] = [];
      for (let i = 0; i < RECORDS; i++) records.push({ topic, key: Buffer.from(`k${i}`), value: Buffer.from(JSON.stringify({ id: i })) });
      for (let i = 0; i < RECORDS; i += 500) await producer.send(records.slice(i, i + 500));
    } finally {
      await producer.close();
    }

    // Done when the checkpoints of the three tasks reach the end of every partition.
    await waitFor(`checkpoints covering ${RECORDS} records`, () => {
      let total = 0;
      for (const id of tasks.taskIds) for (const next of kafkaCheckpoint(tasks.latest.get(id)).positions.values()) total += next;
      return total === RECORDS ? true : undefined;
    }, 120_000);

    const rows = await pool.query<{ n: string; distinct_ids: string }>(`SELECT count(*) AS n, count(DISTINCT id) AS distinct_ids FROM ${pg.escapeIdentifier(ns)}.orders`);
    expect(rows.rows[0]).toEqual({ n: String(RECORDS), distinct_ids: String(RECORDS) });

    const checkpoints = tasks.taskIds.map((id) => kafkaCheckpoint(tasks.latest.get(id)));
    const owned = checkpoints.map((c) => [...c.positions.keys()].sort());
    // Each task checkpointed partitions of its own...
    for (const [i, partitions] of owned.entries()) expect(partitions.length, `task ${tasks.taskIds[i]} checkpoints ${JSON.stringify(partitions)}`).toBeGreaterThan(0);
    // ...disjoint from the others', all six together.
    const all = owned.flat();
    expect(new Set(all).size).toBe(all.length);
    expect([...new Set(all)].sort()).toEqual(Array.from({ length: PARTITIONS }, (_, p) => `${topic}-${p}`).sort());
    for (const c of checkpoints) expect(c.groupId).toBe(groupId);
    // Each task's record count is its share; together every record once.
    const processed = tasks.taskIds.map((id) => {
      const state = tasks.latest.get(id);
      return state === undefined || state.status === 'empty' ? 0 : state.metrics.recordsProcessed;
    });
    expect(processed.reduce((a, b) => a + b, 0)).toBe(RECORDS);
    await tasks.all((replyTo) => ({ type: 'stop', reason: 'test over', replyTo }));
  });
});
