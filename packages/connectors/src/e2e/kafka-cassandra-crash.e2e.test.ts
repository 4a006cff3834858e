/**
 * The exactly-once proof of issue 11 item 9, Cassandra half: a Kafka →
 * Cassandra pipeline (Kafka source, offsets committed after each durable
 * checkpoint; a map transform; the Cassandra sink with rows keyed by the
 * record) in a child process killed with SIGKILL twice (at a seeded random
 * moment, and exactly between a sink write and the checkpoint that would
 * cover it), restarted each time and run to the end of the topic, ends with
 * exactly the expected rows: one per input record, with its values, no other.
 * The batches re-driven after a crash rewrite the same rows.
 */
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Client } from 'cassandra-driver';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaClient } from '../kafka/kafka-client.js';
import { parseKafkaProducerOptions } from '../kafka/kafka-options.js';
import type { KafkaAdmin, KafkaClient, ProducerRecord } from '../kafka/kafka-port.js';
import { crashRunProblems, recoveredOf, runKillPlan, seeded, type KillStep } from './harness/crash-harness.js';

const RECORDS = 20_000;
const BATCH_SIZE = 200;
const SEED = 0x5eed_c455;

const inputRecord = (i: number) => ({ id: i, metric: `metric_${i % 12}`, ts: 1_700_000_000_000 + i, v: i / 4 });

describe('Kafka -> Cassandra crash test', () => {
  const ns = testNamespace(import.meta.url);
  const topic = `${ns}.input`;
  let kafka: KafkaClient;
  let admin: KafkaAdmin;
  let cassandra: Client;
  let pool: pg.Pool;

  beforeAll(async () => {
    const services = serviceSettings();
    kafka = createKafkaClient({ client: 'kafkajs', brokers: [...services.kafkaBrokers], clientId: ns });
    admin = await kafka.admin();
    await admin.createTopics([{ topic, partitions: 3 }]);
    const producer = await kafka.producer(parseKafkaProducerOptions('kafkajs', {}));
    try {
      for (let i = 0; i < RECORDS; i += 2_000) {
        const chunk: ProducerRecord[] = [];
        for (let j = i; j < Math.min(RECORDS, i + 2_000); j++) chunk.push({ topic, key: Buffer.from(String(j)), value: Buffer.from(JSON.stringify(inputRecord(j))) });
        await producer.send(chunk);
      }
    } finally {
      await producer.close();
    }
    cassandra = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
    await cassandra.connect();
    await cassandra.execute(`CREATE KEYSPACE IF NOT EXISTS ${ns} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    pool = new pg.Pool({ connectionString: services.postgresUrl, max: 1 });
  }, 120_000);

  afterAll(async () => {
    await admin?.deleteTopics([topic]);
    await admin?.close();
    await cassandra?.execute(`DROP KEYSPACE IF EXISTS ${ns}`);
    await cassandra?.shutdown();
    await pool?.query(`DROP SCHEMA IF EXISTS "${ns}" CASCADE`);
    await pool?.end();
  }, 60_000);

  it('ends with exactly the expected rows through SIGKILLs at a random moment and between a sink write and its checkpoint', { timeout: 600_000 }, async () => {
    const services = serviceSettings();
    const definition = {
      name: 'kafka-cassandra-crash-test',
      source: {
        type: 'kafka',
        brokers: [...services.kafkaBrokers],
        topics: [topic],
        format: 'json',
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 1_000,
        fetchMaxWaitMs: 100,
      },
      transforms: [
        {
          type: 'map',
          set: [
            { to: 'id', from: 'value.id' },
            { to: 'metric', from: 'value.metric' },
            { to: 'ts', from: 'value.ts' },
            { to: 'v', from: 'value.v' },
          ],
        },
      ],
      sink: {
        type: 'cassandra',
        contactPoints: [...services.cassandraContactPoints],
        localDataCenter: services.cassandraLocalDataCenter,
        keyspace: ns,
        table: 'samples',
        columns: { metric: 'metric', id: 'id', ts: 'ts', v: 'v', kafka_offset: 'offset' },
        createTable: {
          columns: { metric: 'text', id: 'bigint', ts: 'timestamp', v: 'double', kafka_offset: 'text' },
          partitionKey: ['metric'],
          clusteringKey: [{ column: 'id', order: 'ASC' }],
        },
        maxBatchRows: 20,
      },
      batch: { size: BATCH_SIZE, maxWaitMs: 100 },
      retry: { maxRetries: 0 },
    };
    const random = seeded(SEED);
    const plan: KillStep[] = [
      { kind: 'random', atRecords: Math.round(RECORDS * (0.15 + 0.2 * random())), delayMs: Math.floor(random() * 25) },
      { kind: 'after-write', writes: 3 + Math.floor(random() * 10) },
    ];
    const countRows = async (): Promise<number> => Number((await cassandra.execute(`SELECT count(*) AS n FROM ${ns}.samples`, [], { readTimeout: 60_000 })).first()?.['n'] ?? -1);
    const { runs, kills } = await runKillPlan({ postgresUrl: services.postgresUrl, schema: ns, pipelineId: 'kafka-cassandra', definition, stopAtRecords: RECORDS }, plan, countRows);
    console.log(`kafka -> cassandra crash test (seed ${SEED}): ${JSON.stringify(kills)}`);
    expect(runs.at(-1)?.messages.at(-1)).toMatchObject({ type: 'done', records: RECORDS });
    // Each kill landed mid-run; each restart resumed from its predecessor's checkpoint; no batch failed.
    expect(crashRunProblems(runs, kills, RECORDS)).toEqual([]);
    // The kill after a sink write left rows the checkpoint does not cover: the restart re-drove them.
    const afterWrite = kills.findIndex((kill) => kill.kind === 'after-write');
    const next = runs[afterWrite + 1];
    expect(kills[afterWrite]?.measured).toBeGreaterThan(next === undefined ? Number.POSITIVE_INFINITY : (recoveredOf(next)?.records ?? Number.POSITIVE_INFINITY));

    const rows = new Map<number, { metric: string; ts: number; v: number }>();
    let count = 0;
    let pageState: string | undefined;
    do {
      const page = await cassandra.execute(`SELECT metric, id, ts, v FROM ${ns}.samples`, [], { prepare: true, fetchSize: 5000, ...(pageState === undefined ? {} : { pageState }) });
      for (const row of page.rows) {
        count++;
        rows.set(Number(row['id']), { metric: row['metric'] as string, ts: (row['ts'] as Date).getTime(), v: row['v'] as number });
      }
      pageState = page.pageState ?? undefined;
    } while (pageState !== undefined);
    expect(count).toBe(RECORDS);
    const mismatches: number[] = [];
    for (let i = 0; i < RECORDS; i++) {
      const expected = inputRecord(i);
      const row = rows.get(i);
      if (row === undefined || row.metric !== expected.metric || row.ts !== expected.ts || row.v !== expected.v) mismatches.push(i);
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
  });
});
