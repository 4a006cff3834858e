/**
 * Benchmarks of the seed's pipeline (issue 11 item 10), in one run:
 *
 * 1. Kafka → Cassandra throughput: a pipeline (Kafka source, a map transform,
 *    the Cassandra sink, checkpoints in the Postgres journal) against raw
 *    driver inserts of the same rows (one prepared INSERT per row, as many in
 *    flight as the sink allows), in alternating pairs.
 * 2. Scrape-to-row latency: the two example pipelines of
 *    `examples/prometheus-kafka-cassandra/` as shipped (batch waits, consumer
 *    settings), scraping every 500 ms instead of 5 s (scrape → Kafka →
 *    prometheus parse → Cassandra) against a prom-client exporter; for each
 *    scrape, the time from the scrape to all of its rows being readable in
 *    Cassandra (polled every 20 ms), p50 / p99.
 *
 *   npx tsx --conditions=@dataflow/source src/bench/kafka-cassandra.bench.ts
 *
 * Targets: DATAFLOW_KAFKA_BROKERS (default 127.0.0.1:19092),
 * DATAFLOW_CASSANDRA_CONTACT_POINTS (127.0.0.1:19042), DATAFLOW_POSTGRES_URL.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import {
  askWithStatus,
  createActorSystem,
  pipelineActor,
  type ActorRef,
  type ActorSystem,
  type EntityPersistence,
  type PipelineCommand,
  type PipelineReply,
  type PipelineResult,
  type PipelineState,
} from '@dataflow/core';
import { createPostgresPersistence } from '@dataflow/persistence';
import { Client, types } from 'cassandra-driver';
import pg from 'pg';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createDeadLetterTarget, createSink, createSource } from '../factory/create-connector.js';
import { createKafkaClient } from '../kafka/kafka-client.js';
import { parseKafkaProducerOptions } from '../kafka/kafka-options.js';
import type { KafkaAdmin, KafkaClient, ProducerRecord } from '../kafka/kafka-port.js';
import { alternatingPairs, median, percentile, round2 } from './bench-stats.js';

const CONCURRENCY = 32;
const row = (i: number) => ({ metric_name: `metric_${i % 40}`, job: ['node', 'api', 'db'][i % 3] as string, series: `{cpu="${i % 8}"}`, timestamp: 1_700_000_000_000 + i, value: (i * 7.25) % 1000 });

const tableDdl = (keyspace: string, table: string): string =>
  `CREATE TABLE IF NOT EXISTS ${keyspace}.${table} (metric_name text, job text, series text, timestamp timestamp, value double,
   PRIMARY KEY ((metric_name, job), series, timestamp))`;

function pipelineRunner(system: ActorSystem, persistence: EntityPersistence, pipelineId: string) {
  let latest: PipelineState | undefined;
  const listeners: ((state: PipelineState) => void)[] = [];
  const pipeline = system.spawn(
    pipelineActor({
      pipelineId,
      persistence,
      connectors: { createSource: (d) => createSource(d), createSink: (d) => createSink(d), createDeadLetterTarget: (d) => createDeadLetterTarget(d) },
      onStateChange: (state) => {
        latest = state;
        for (const l of listeners) l(state);
      },
    }),
    `pipeline-${pipelineId}`,
  );
  const call = (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => askWithStatus<PipelineCommand, PipelineResult>(pipeline, build, { timeoutMs: 60_000 });
  return {
    start: async (definition: Record<string, unknown>) => {
      await call((replyTo) => ({ type: 'create', definition, replyTo }));
      await call((replyTo) => ({ type: 'start', replyTo }));
    },
    stop: () => call((replyTo) => ({ type: 'stop', reason: 'bench done', replyTo })),
    state: () => latest,
    until: (predicate: (state: PipelineState) => boolean) =>
      new Promise<PipelineState>((resolve) => {
        if (latest !== undefined && predicate(latest)) return resolve(latest);
        listeners.push((state) => {
          if (predicate(state)) resolve(state);
        });
      }),
  };
}

async function countRows(client: Client, keyspace: string, table: string): Promise<number> {
  return Number((await client.execute(`SELECT count(*) AS n FROM ${keyspace}.${table}`, [], { readTimeout: 60_000 })).first()?.['n'] ?? -1);
}

/** Kafka → Cassandra pipeline vs raw inserts; returns the per-side medians and the ratio. */
async function throughput(ctx: Ctx, records: number, rounds: number) {
  const topic = `${ctx.name}.rows`;
  await ctx.admin.createTopics([{ topic, partitions: 3 }]);
  ctx.topics.push(topic);
  const producer = await ctx.kafka.producer(parseKafkaProducerOptions(ctx.kafka.adapter, {}));
  for (let i = 0; i < records; i += 2000) {
    const chunk: ProducerRecord[] = [];
    for (let j = i; j < Math.min(records, i + 2000); j++) chunk.push({ topic, key: Buffer.from(String(j)), value: Buffer.from(JSON.stringify(row(j))) });
    await producer.send(chunk);
  }
  await producer.close();
  await ctx.cassandra.execute(tableDdl(ctx.name, 'pipeline_rows'));
  await ctx.cassandra.execute(tableDdl(ctx.name, 'raw_rows'));
  const rows = Array.from({ length: records }, (_, i) => row(i));
  let run = 0;
  const pipelineSide = async (): Promise<number> => {
    await ctx.cassandra.execute(`TRUNCATE ${ctx.name}.pipeline_rows`);
    const system = createActorSystem({ name: `bench-kc-${run}` });
    try {
      const p = pipelineRunner(system, ctx.persistence, `kafka-cassandra-${run++}`);
      const start = performance.now();
      await p.start({
        name: 'bench-kafka-cassandra',
        source: { type: 'kafka', client: ctx.kafka.adapter, brokers: ctx.brokers, topics: [topic], groupId: `${ctx.name}-g${run}`, format: 'json', fetchMaxWaitMs: 100 },
        transforms: [{ type: 'map', set: ['metric_name', 'job', 'series', 'timestamp', 'value'].map((f) => ({ to: f, from: `value.${f}` })), keepUnmapped: false }],
        sink: {
          type: 'cassandra',
          contactPoints: ctx.contactPoints,
          localDataCenter: ctx.localDataCenter,
          keyspace: ctx.name,
          table: 'pipeline_rows',
          columns: { metric_name: 'metric_name', job: 'job', series: 'series', timestamp: 'timestamp', value: 'value' },
          maxConcurrency: CONCURRENCY,
        },
        batch: { size: 500, maxWaitMs: 100 },
      });
      const state = await p.until((s) => s.status === 'failed' || (s.status !== 'empty' && s.metrics.recordsProcessed >= records));
      const ms = performance.now() - start;
      if (state.status === 'failed') throw new Error(`the bench pipeline failed: ${JSON.stringify(state.error)}`);
      await p.stop();
      const n = await countRows(ctx.cassandra, ctx.name, 'pipeline_rows');
      if (n !== records) throw new Error(`pipeline wrote ${n} rows, expected ${records}`);
      return ms;
    } finally {
      await system.terminate();
    }
  };
  const rawSide = async (): Promise<number> => {
    await ctx.cassandra.execute(`TRUNCATE ${ctx.name}.raw_rows`);
    const insert = `INSERT INTO ${ctx.name}.raw_rows (metric_name, job, series, timestamp, value) VALUES (?, ?, ?, ?, ?)`;
    const start = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < rows.length) {
        const r = rows[next++] as ReturnType<typeof row>;
        await ctx.cassandra.execute(insert, [r.metric_name, r.job, r.series, new Date(r.timestamp), r.value], { prepare: true, isIdempotent: true, consistency: types.consistencies.localQuorum });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const ms = performance.now() - start;
    const n = await countRows(ctx.cassandra, ctx.name, 'raw_rows');
    if (n !== records) throw new Error(`raw inserts wrote ${n} rows, expected ${records}`);
    return ms;
  };
  await pipelineSide();
  await rawSide();
  const pairs = await alternatingPairs(rounds, pipelineSide, rawSide);
  return {
    pipelineRowsPerSec: Math.round(records / (median(pairs.measuredMs) / 1000)),
    rawRowsPerSec: Math.round(records / (median(pairs.baselineMs) / 1000)),
    ratio: round2(median(pairs.ratios)),
    ratios: pairs.ratios,
  };
}

/** The example pipelines against a prom-client exporter; per scrape, ms from the scrape to all its rows readable. */
async function scrapeToRow(ctx: Ctx, scrapes: number) {
  const registry = new Registry();
  new Counter({ name: 'requests_total', help: 'r', labelNames: ['code'], registers: [registry] }).inc({ code: '200' }, 3);
  new Gauge({ name: 'temperature', help: 't', labelNames: ['room'], registers: [registry] }).set({ room: 'a' }, 1);
  new Histogram({ name: 'latency_seconds', help: 'l', buckets: [0.1, 1], registers: [registry] }).observe(0.3);
  const server = createServer((_req, res) => void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const seriesPerScrape = (await registry.metrics()).split('\n').filter((l) => l.length > 0 && !l.startsWith('#')).length;
  const prefix = `${ctx.name}_`;
  const topic = `${prefix}prometheus_metrics_bench`;
  await ctx.admin.createTopics([{ topic, partitions: 1 }]);
  ctx.topics.push(topic);
  const examples = new URL('../../examples/prometheus-kafka-cassandra/', import.meta.url);
  const scrape = JSON.parse(await readFile(new URL('scrape-to-kafka.json', examples), 'utf8')) as Record<string, unknown>;
  const store = JSON.parse(await readFile(new URL('kafka-to-cassandra.json', examples), 'utf8')) as Record<string, unknown>;
  const system = createActorSystem({ name: 'bench-scrape-to-row' });
  try {
    const storePipeline = pipelineRunner(system, ctx.persistence, 'latency-store');
    const scrapePipeline = pipelineRunner(system, ctx.persistence, 'latency-scrape');
    await storePipeline.start({
      ...store,
      source: { ...(store['source'] as object), brokers: ctx.brokers, topicPattern: `^${prefix}prometheus_metrics_.+` },
      transforms: [{ ...(store['transforms'] as object[])[0], jobFromTopic: `${prefix}prometheus_metrics_{job}` }],
      sink: { ...(store['sink'] as object), contactPoints: ctx.contactPoints, localDataCenter: ctx.localDataCenter, keyspace: ctx.name },
      deadLetter: { ...(store['deadLetter'] as object), brokers: ctx.brokers, topic: `${ctx.name}.dlq` },
    });
    const address = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
    await scrapePipeline.start({
      ...scrape,
      source: { ...(scrape['source'] as object), intervalMs: 500, targets: [{ url: address, job: 'bench' }] },
      sink: { ...(scrape['sink'] as object), brokers: ctx.brokers, topic: `${prefix}prometheus_metrics_{job}` },
    });
    // Poll the table: the first moment each scrape timestamp has all its series.
    const complete = new Map<number, number>();
    const deadline = Date.now() + scrapes * 500 + 30_000;
    let table = false;
    while (complete.size < scrapes && Date.now() < deadline) {
      try {
        const result = await ctx.cassandra.execute(`SELECT timestamp FROM ${ctx.name}.prometheus_series WHERE metric_name = 'temperature' AND job = 'bench'`, [], { prepare: true });
        table = true;
        const counts = new Map<number, number>();
        for (const name of ['requests_total', 'temperature', 'latency_seconds_bucket', 'latency_seconds_sum', 'latency_seconds_count']) {
          const rs = name === 'temperature' ? result : await ctx.cassandra.execute(`SELECT timestamp FROM ${ctx.name}.prometheus_series WHERE metric_name = ? AND job = 'bench'`, [name], { prepare: true });
          for (const r of rs.rows) {
            const ts = (r['timestamp'] as Date).getTime();
            counts.set(ts, (counts.get(ts) ?? 0) + 1);
          }
        }
        const now = Date.now();
        for (const [ts, n] of counts) if (n >= seriesPerScrape && !complete.has(ts)) complete.set(ts, now - ts);
      } catch (error) {
        if (table || !String(error).includes('does not exist')) throw error;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await scrapePipeline.stop();
    await storePipeline.stop();
    // The first scrape also waited for the group join; leave it out.
    const latencies = [...complete.entries()].sort(([a], [b]) => a - b).slice(1).map(([, ms]) => ms);
    if (latencies.length < scrapes - 1) throw new Error(`only ${latencies.length + 1} of ${scrapes} scrapes arrived complete`);
    return { scrapes: latencies.length, seriesPerScrape, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: Math.max(...latencies) };
  } finally {
    await system.terminate();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

interface Ctx {
  readonly name: string;
  readonly brokers: string[];
  readonly contactPoints: string[];
  readonly localDataCenter: string;
  readonly kafka: KafkaClient;
  readonly admin: KafkaAdmin;
  readonly cassandra: Client;
  readonly persistence: EntityPersistence;
  readonly topics: string[];
}

/** Runs both benchmarks; prints a table and one JSON line. */
export async function runKafkaCassandraBench(options: { records?: number; rounds?: number; scrapes?: number } = {}) {
  const records = options.records ?? Number(process.env['BENCH_KC_RECORDS'] ?? 40_000);
  const rounds = options.rounds ?? 3;
  const scrapes = options.scrapes ?? 40;
  const name = `bench_kc_${Date.now().toString(36)}`;
  const brokers = (process.env['DATAFLOW_KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');
  const contactPoints = (process.env['DATAFLOW_CASSANDRA_CONTACT_POINTS'] ?? '127.0.0.1:19042').split(',');
  const localDataCenter = process.env['DATAFLOW_CASSANDRA_LOCAL_DC'] ?? 'datacenter1';
  const kafka = createKafkaClient({ client: 'kafkajs', brokers, clientId: name });
  const admin = await kafka.admin();
  const cassandra = new Client({ contactPoints, localDataCenter, pooling: { maxRequestsPerConnection: 2048 } });
  await cassandra.connect();
  await cassandra.execute(`CREATE KEYSPACE ${name} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  const pool = new pg.Pool({ connectionString: process.env['DATAFLOW_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres', max: 4 });
  const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema: name, ensureSchema: true });
  const ctx: Ctx = { name, brokers, contactPoints, localDataCenter, kafka, admin, cassandra, persistence, topics: [] };
  try {
    const tp = await throughput(ctx, records, rounds);
    const latency = await scrapeToRow(ctx, scrapes);
    process.stdout.write(`Kafka → Cassandra: ${records} rows per side, batch 500, ${CONCURRENCY} statements in flight, ${rounds} alternating pairs; scrape-to-row over ${latency.scrapes} scrapes of ${latency.seriesPerScrape} series\n`);
    console.table({
      'pipeline: Kafka source → map → Cassandra sink, Postgres journal': { 'rows/s': tp.pipelineRowsPerSec, ratio: tp.ratio, pairs: tp.ratios.join(' ') },
      'raw driver: one prepared INSERT per row': { 'rows/s': tp.rawRowsPerSec },
      'scrape → Kafka → parse → Cassandra row readable (ms)': { p50: latency.p50Ms, p99: latency.p99Ms, max: latency.maxMs },
    });
    const result = { bench: 'connectors.kafka-cassandra', records, ...tp, scrapeToRow: latency };
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result;
  } finally {
    try {
      await admin.deleteTopics(ctx.topics);
      await cassandra.execute(`DROP KEYSPACE IF EXISTS ${name}`);
      await pool.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
    } finally {
      await admin.close();
      await cassandra.shutdown();
      await persistence.close();
      await pool.end();
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runKafkaCassandraBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
