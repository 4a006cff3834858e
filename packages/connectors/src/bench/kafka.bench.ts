/**
 * Kafka → Kafka benchmark (issue 11 item 10): a pipeline copying a topic
 * through the Kafka source and sink, with checkpoints in the Postgres
 * journal, against a raw consume + produce + commit loop of the same client
 * library, in one run, for both adapters.
 *
 * Input: `records` records of `recordBytes` (1 KB) in a topic of 3
 * partitions, written once. Every measured side reads it from the start in a
 * fresh consumer group and writes a fresh output topic; the output's record
 * count is checked.
 *
 * - pipeline: Kafka source (format `string`) → Kafka sink (key and value
 *   fields), batches of `batchSize`, one checkpoint per batch in the Postgres
 *   journal, offsets committed after the checkpoint; also the exactly-once
 *   variant (one Kafka transaction per batch with the consumer offsets);
 * - raw: the client port by hand: poll up to `batchSize`, send the batch to
 *   the output topic (acks = all, idempotent), commit the offsets; no journal.
 *
 *   npx tsx --conditions=@dataflow/source src/bench/kafka.bench.ts
 *
 * Targets: DATAFLOW_KAFKA_BROKERS (default 127.0.0.1:19092), DATAFLOW_POSTGRES_URL.
 * Options (environment): BENCH_KAFKA_RECORDS (default 60 000), BENCH_KAFKA_ROUNDS (3),
 * BENCH_KAFKA_ADAPTERS (kafkajs,platformatic), BENCH_KAFKA_MODES (at-least-once,exactly-once).
 */
import { pathToFileURL } from 'node:url';
import {
  askWithStatus,
  createActorSystem,
  pipelineActor,
  type ActorRef,
  type EntityPersistence,
  type PipelineCommand,
  type PipelineReply,
  type PipelineResult,
  type PipelineState,
} from '@dataflow/core';
import { createPostgresPersistence } from '@dataflow/persistence';
import pg from 'pg';
import { createDeadLetterTarget, createSink, createSource } from '../factory/create-connector.js';
import { createKafkaClient } from '../kafka/kafka-client.js';
import { parseKafkaConsumerOptions, parseKafkaProducerOptions } from '../kafka/kafka-options.js';
import type { KafkaAdapterName, KafkaClient, ProducerRecord, TopicPartitionOffset } from '../kafka/kafka-port.js';
import { partitionKey } from '../kafka/kafka-port.js';
import { alternatingPairs, median, round2 } from './bench-stats.js';

export type KafkaBenchMode = 'at-least-once' | 'exactly-once';

export interface KafkaBenchOptions {
  readonly brokers?: readonly string[];
  readonly postgresUrl?: string;
  readonly records?: number;
  readonly recordBytes?: number;
  readonly partitions?: number;
  readonly batchSize?: number;
  readonly rounds?: number;
  readonly adapters?: readonly KafkaAdapterName[];
  readonly modes?: readonly KafkaBenchMode[];
}

export interface KafkaBenchRow {
  readonly adapter: KafkaAdapterName;
  readonly mode: KafkaBenchMode;
  readonly pipelineRecordsPerSec: number;
  readonly rawRecordsPerSec: number;
  /** Pipeline throughput as a fraction of the raw loop's: median over the pairs. */
  readonly ratio: number;
  readonly ratios: readonly number[];
}

export interface KafkaBenchResult {
  readonly records: number;
  readonly recordBytes: number;
  readonly partitions: number;
  readonly batchSize: number;
  readonly rows: readonly KafkaBenchRow[];
}

const FAST_GROUP = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000, rebalanceTimeoutMs: 15_000, fetchMaxWaitMs: 100 } as const;

function listSetting(name: string): string[] | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value.split(',').map((s) => s.trim());
}

/** Runs the comparison; prints a table and one JSON line. */
export async function runKafkaBench(options: KafkaBenchOptions = {}): Promise<KafkaBenchResult> {
  const brokers = options.brokers ?? (process.env['DATAFLOW_KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');
  const postgresUrl = options.postgresUrl ?? process.env['DATAFLOW_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const records = options.records ?? Number(process.env['BENCH_KAFKA_RECORDS'] ?? 60_000);
  const recordBytes = options.recordBytes ?? 1024;
  const partitions = options.partitions ?? 3;
  const batchSize = options.batchSize ?? 500;
  const rounds = options.rounds ?? Number(process.env['BENCH_KAFKA_ROUNDS'] ?? 3);
  const adapters = options.adapters ?? ((listSetting('BENCH_KAFKA_ADAPTERS') as KafkaAdapterName[] | undefined) ?? ['kafkajs', 'platformatic']);
  const modes = options.modes ?? ((listSetting('BENCH_KAFKA_MODES') as KafkaBenchMode[] | undefined) ?? ['at-least-once', 'exactly-once']);
  const name = `bench_kafka_${Date.now().toString(36)}`;
  const input = `${name}.input`;

  const pool = new pg.Pool({ connectionString: postgresUrl, max: 4 });
  const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema: name, ensureSchema: true });
  const setupClient = createKafkaClient({ client: 'platformatic', brokers: [...brokers], clientId: name });
  const admin = await setupClient.admin();
  const topics: string[] = [input];
  try {
    await admin.createTopics([{ topic: input, partitions }]);
    await fill(setupClient, input, records, recordBytes);
    const rows: KafkaBenchRow[] = [];
    let run = 0;
    for (const adapter of adapters) {
      const client = createKafkaClient({ client: adapter, brokers: [...brokers], clientId: `${name}-${adapter}` });
      const output = async (): Promise<string> => {
        const topic = `${name}.out-${run++}`;
        topics.push(topic);
        await admin.createTopics([{ topic, partitions }]);
        return topic;
      };
      for (const mode of modes) {
        const pipelineSide = async (): Promise<number> => {
          const topic = await output();
          const ms = await runPipeline(persistence, { adapter, brokers, input, output: topic, group: `${name}-p${run}`, records, batchSize, mode, pipelineId: `${adapter}-${mode}-${run}` });
          await expectCount(admin, topic, records);
          return ms;
        };
        const rawSide = async (): Promise<number> => {
          const topic = await output();
          const ms = await runRaw(client, { input, output: topic, group: `${name}-r${run}`, records, batchSize, mode, transactionalId: `${name}-raw-${run}` });
          await expectCount(admin, topic, records);
          return ms;
        };
        // Warm-up of both sides (JIT, connections, group coordinator), not measured.
        await pipelineSide();
        await rawSide();
        const pairs = await alternatingPairs(rounds, pipelineSide, rawSide);
        rows.push({
          adapter,
          mode,
          pipelineRecordsPerSec: Math.round(records / (median(pairs.measuredMs) / 1000)),
          rawRecordsPerSec: Math.round(records / (median(pairs.baselineMs) / 1000)),
          ratio: round2(median(pairs.ratios)),
          ratios: pairs.ratios,
        });
      }
    }
    const result: KafkaBenchResult = { records, recordBytes, partitions, batchSize, rows };
    process.stdout.write(`Kafka → Kafka bench: ${records} records of ${recordBytes} B, ${partitions} partitions, batch ${batchSize}, ${rounds} alternating pairs per row\n`);
    console.table(
      Object.fromEntries(
        rows.map((r) => [
          `${r.adapter} ${r.mode}`,
          { 'pipeline rec/s': r.pipelineRecordsPerSec, 'raw loop rec/s': r.rawRecordsPerSec, ratio: r.ratio, pairs: r.ratios.join(' ') },
        ]),
      ),
    );
    process.stdout.write(`${JSON.stringify({ bench: 'connectors.kafka-kafka', ...result })}\n`);
    return result;
  } finally {
    try {
      await admin.deleteTopics(topics);
      await pool.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
    } finally {
      await admin.close();
      await persistence.close();
      await pool.end();
    }
  }
}

/** Writes `records` records of `bytes` bytes (JSON-free text, key `k<i>`) to `topic`. */
export async function fill(client: KafkaClient, topic: string, records: number, bytes: number): Promise<void> {
  const producer = await client.producer(parseKafkaProducerOptions(client.adapter, {}));
  try {
    const body = 'x'.repeat(bytes - 12);
    for (let i = 0; i < records; i += 1000) {
      const chunk: ProducerRecord[] = [];
      for (let j = i; j < Math.min(records, i + 1000); j++) chunk.push({ topic, key: Buffer.from(`k${j}`), value: Buffer.from(`${String(j).padStart(10, '0')}:${body}`) });
      await producer.send(chunk);
    }
  } finally {
    await producer.close();
  }
}

async function expectCount(admin: Awaited<ReturnType<KafkaClient['admin']>>, topic: string, records: number): Promise<void> {
  const offsets = await admin.fetchTopicOffsets(topic);
  // Transactional output holds one commit marker per transaction and partition: count at least `records`.
  const total = offsets.reduce((sum, p) => sum + Number(p.end - p.earliest), 0);
  if (total < records) throw new Error(`${topic} holds ${total} offsets, expected at least ${records} records`);
}

interface RawSettings {
  readonly input: string;
  readonly output: string;
  readonly group: string;
  readonly records: number;
  readonly batchSize: number;
  readonly mode: KafkaBenchMode;
  readonly transactionalId: string;
}

/** The copy by hand with the client port: poll, send, commit (in one transaction for exactly-once). */
export async function runRaw(client: KafkaClient, s: RawSettings): Promise<number> {
  const exactlyOnce = s.mode === 'exactly-once';
  const producer = await client.producer(parseKafkaProducerOptions(client.adapter, exactlyOnce ? { transactionalId: s.transactionalId } : {}));
  const consumer = client.consumer(parseKafkaConsumerOptions({ groupId: s.group, ...FAST_GROUP, maxBufferedRecords: s.batchSize * 4 }));
  const start = performance.now();
  try {
    await consumer.subscribe([s.input]);
    const next = new Map<string, TopicPartitionOffset>();
    let copied = 0;
    while (copied < s.records) {
      const polled = await consumer.poll({ maxRecords: s.batchSize, maxWaitMs: 100 });
      if (polled.length === 0) continue;
      const out: ProducerRecord[] = polled.map((r) => ({ topic: s.output, key: r.key, value: r.value }));
      for (const r of polled) next.set(partitionKey(r.topic, r.partition), { topic: r.topic, partition: r.partition, offset: r.offset + 1n });
      if (exactlyOnce) {
        const tx = await producer.beginTransaction();
        await tx.send(out);
        await tx.sendOffsets(s.group, [...next.values()]);
        await tx.commit();
      } else {
        await producer.send(out);
        await consumer.commit([...next.values()]);
      }
      copied += polled.length;
    }
    return performance.now() - start;
  } finally {
    await consumer.close();
    await producer.close();
  }
}

interface PipelineSettings {
  readonly adapter: KafkaAdapterName;
  readonly brokers: readonly string[];
  readonly input: string;
  readonly output: string;
  readonly group: string;
  readonly records: number;
  readonly batchSize: number;
  readonly mode: KafkaBenchMode;
  readonly pipelineId: string;
}

/** The pipeline from `start` until it has checkpointed `records` records; ms between the two. */
async function runPipeline(persistence: EntityPersistence, s: PipelineSettings): Promise<number> {
  const system = createActorSystem({ name: `bench-${s.pipelineId}` });
  try {
    let reached: (state: PipelineState) => void = () => undefined;
    const done = new Promise<PipelineState>((resolve) => (reached = resolve));
    const pipeline = system.spawn(
      pipelineActor({
        pipelineId: s.pipelineId,
        persistence,
        connectors: {
          createSource: (definition) => createSource(definition),
          createSink: (definition) => createSink(definition),
          createDeadLetterTarget: (definition) => createDeadLetterTarget(definition),
        },
        onStateChange: (state) => {
          if (state.status === 'failed' || (state.status !== 'empty' && state.metrics.recordsProcessed >= s.records)) reached(state);
        },
      }),
      `pipeline-${s.pipelineId}`,
    );
    const call = (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => askWithStatus<PipelineCommand, PipelineResult>(pipeline, build, { timeoutMs: 60_000 });
    const definition = {
      name: `bench-${s.pipelineId}`,
      source: { type: 'kafka', client: s.adapter, brokers: [...s.brokers], topics: [s.input], groupId: s.group, format: 'string', ...FAST_GROUP },
      transforms: [],
      sink: { type: 'kafka', client: s.adapter, brokers: [...s.brokers], topic: s.output, key: 'key', value: 'value', exactlyOnce: s.mode === 'exactly-once' },
      batch: { size: s.batchSize, maxWaitMs: 100 },
    };
    await call((replyTo) => ({ type: 'create', definition, replyTo }));
    const start = performance.now();
    await call((replyTo) => ({ type: 'start', replyTo }));
    const state = await done;
    const ms = performance.now() - start;
    if (state.status === 'failed') throw new Error(`the bench pipeline failed: ${JSON.stringify(state.error)}`);
    await call((replyTo) => ({ type: 'stop', reason: 'bench done', replyTo }));
    return ms;
  } finally {
    await system.terminate();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runKafkaBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
