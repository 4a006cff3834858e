/**
 * The exactly-once proof of issue 11 item 9, Kafka half: a Kafka → Kafka
 * pipeline with the exactly-once sink (one Kafka transaction per batch holding
 * the output records and the consumer group's offsets) copies 100 000 records
 * while its process is killed with SIGKILL twice: once at a seeded random
 * moment and once exactly after a transaction committed but before the
 * journal checkpoint that would cover it. Restarted each time, the pipeline
 * reconciles the journal checkpoint with the offsets Kafka committed and runs
 * to the end of the input. A read_committed consumer of the output then sees
 * every input record exactly once, for each client adapter.
 */
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaClient } from '../kafka/kafka-client.js';
import { parseKafkaConsumerOptions, parseKafkaProducerOptions } from '../kafka/kafka-options.js';
import type { KafkaAdapterName, KafkaAdmin, KafkaClient, ProducerRecord } from '../kafka/kafka-port.js';
import { crashRunProblems, runKillPlan, seeded, type KillStep } from './harness/crash-harness.js';

const RECORDS = 100_000;
const PARTITIONS = 3;
const BATCH_SIZE = 500;
const SEED = 0x5eed_0911;
const FAST_GROUP = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000, rebalanceTimeoutMs: 15_000, fetchMaxWaitMs: 100 } as const;

const adapters: KafkaAdapterName[] = ['kafkajs', 'platformatic'];

/** Writes the input: record `i` has key `k<i>` and a JSON value carrying `i`. */
async function fillInput(client: KafkaClient, topic: string): Promise<void> {
  const producer = await client.producer(parseKafkaProducerOptions(client.adapter, {}));
  try {
    for (let i = 0; i < RECORDS; i += 2_000) {
      const chunk: ProducerRecord[] = [];
      for (let j = i; j < Math.min(RECORDS, i + 2_000); j++) chunk.push({ topic, key: Buffer.from(`k${j}`), value: Buffer.from(JSON.stringify({ id: j, body: `record-${j}` })) });
      await producer.send(chunk);
    }
  } finally {
    await producer.close();
  }
}

/** Reads the whole output with read_committed isolation: the ids of the values, in the order read. */
async function readCommittedIds(client: KafkaClient, topic: string, group: string): Promise<{ ids: number[]; bad: string[] }> {
  const consumer = client.consumer(parseKafkaConsumerOptions({ groupId: group, isolation: 'read_committed', ...FAST_GROUP }));
  const ids: number[] = [];
  const bad: string[] = [];
  try {
    await consumer.subscribe([topic]);
    let idleSince = Date.now();
    // Read until nothing arrived for 5 s after at least the expected count (or 60 s of nothing at all).
    while (Date.now() - idleSince < (ids.length >= RECORDS ? 5_000 : 60_000)) {
      const records = await consumer.poll({ maxRecords: 5_000, maxWaitMs: 500 });
      if (records.length > 0) idleSince = Date.now();
      for (const r of records) {
        const text = r.value?.toString('utf8') ?? '';
        try {
          const parsed = JSON.parse(text) as { id?: unknown; body?: unknown };
          if (typeof parsed.id === 'number' && parsed.body === `record-${parsed.id}` && r.key?.toString('utf8') === `k${parsed.id}`) ids.push(parsed.id);
          else bad.push(text.slice(0, 200));
        } catch {
          bad.push(text.slice(0, 200));
        }
      }
    }
  } finally {
    await consumer.close();
  }
  return { ids, bad };
}

describe.each(adapters)('Kafka -> Kafka exactly-once crash test (%s)', (adapter) => {
  const ns = `${testNamespace(import.meta.url)}_${adapter}`;
  const input = `${ns}.input`;
  const output = `${ns}.output`;
  let client: KafkaClient;
  let admin: KafkaAdmin;
  let pool: pg.Pool;

  beforeAll(async () => {
    const services = serviceSettings();
    client = createKafkaClient({ client: adapter, brokers: [...services.kafkaBrokers], clientId: ns });
    admin = await client.admin();
    await admin.createTopics([
      { topic: input, partitions: PARTITIONS },
      { topic: output, partitions: PARTITIONS },
    ]);
    await fillInput(client, input);
    pool = new pg.Pool({ connectionString: services.postgresUrl, max: 1 });
  }, 120_000);

  afterAll(async () => {
    await admin?.deleteTopics([input, output]);
    await admin?.close();
    await pool?.query(`DROP SCHEMA IF EXISTS "${ns}" CASCADE`);
    await pool?.end();
  }, 60_000);

  it('delivers each of 100 000 records exactly once to read_committed readers through SIGKILLs at a random moment and between a committed transaction and its checkpoint', { timeout: 600_000 }, async () => {
    const services = serviceSettings();
    const groupId = `${ns}-pipeline`;
    const definition = {
      name: 'kafka-eos-crash-test',
      source: { type: 'kafka', client: adapter, brokers: [...services.kafkaBrokers], topics: [input], groupId, format: 'json', ...FAST_GROUP },
      transforms: [],
      sink: { type: 'kafka', client: adapter, brokers: [...services.kafkaBrokers], topic: output, key: 'key', value: 'value', exactlyOnce: true },
      batch: { size: BATCH_SIZE, maxWaitMs: 100 },
      retry: { maxRetries: 0 },
    };
    const random = seeded(SEED);
    const plan: KillStep[] = [
      { kind: 'random', atRecords: Math.round(RECORDS * (0.15 + 0.2 * random())), delayMs: Math.floor(random() * 25) },
      { kind: 'after-write', writes: 3 + Math.floor(random() * 10) },
    ];
    const { runs, kills } = await runKillPlan({ postgresUrl: services.postgresUrl, schema: ns, pipelineId: `eos-${adapter}`, definition, stopAtKafkaOffsets: RECORDS }, plan, () => Promise.resolve(undefined));
    console.log(`kafka eos crash test (${adapter}, seed ${SEED}): ${JSON.stringify(kills.map(({ kind, processedAtKill, progressed }) => ({ kind, processedAtKill, progressed })))}`);
    // Each kill landed mid-run; each restart resumed from its predecessor's checkpoint; no batch failed.
    expect(crashRunProblems(runs, kills, RECORDS)).toEqual([]);
    // The group's committed offsets are at the end of the input: the last transaction committed them.
    const committed = await admin.fetchCommittedOffsets(groupId, [input]);
    expect(committed.reduce((sum, p) => sum + Number(p.offset), 0)).toBe(RECORDS);

    const { ids, bad } = await readCommittedIds(client, output, `${ns}-verify`);
    expect(bad.slice(0, 3)).toEqual([]);
    const seen = new Set<number>();
    let duplicates = 0;
    for (const id of ids) {
      if (seen.has(id)) duplicates++;
      seen.add(id);
    }
    let missing = 0;
    for (let i = 0; i < RECORDS; i++) if (!seen.has(i)) missing++;
    expect({ read: ids.length, duplicates, missing }).toEqual({ read: RECORDS, duplicates: 0, missing: 0 });
  });
});
