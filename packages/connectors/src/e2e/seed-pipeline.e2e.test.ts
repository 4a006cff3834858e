/**
 * The seed's metrics job, end to end, from the example definitions shipped in
 * `examples/prometheus-kafka-cassandra/` (issue 11 item 8): two real exporters
 * (prom-client registries served over HTTP, with labels, a counter, gauges
 * holding NaN and ±Inf, a histogram and a summary) are scraped every half
 * second into the Kafka topics `prometheus_metrics_<job>`; a second pipeline
 * reads those topics, parses each page with the `prometheus` transform and
 * writes the samples to Cassandra. Both run as pipeline actors on the real
 * Postgres journal. Afterwards every series of every scrape (each page in
 * Kafka) is a row in Cassandra with its labels, value and timestamp.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  askWithStatus,
  createActorSystem,
  parseExposition,
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
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Client } from 'cassandra-driver';
import pg from 'pg';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeadLetterTarget, createSink, createSource } from '../factory/create-connector.js';
import { createKafkaClient } from '../kafka/kafka-client.js';
import { parseKafkaConsumerOptions } from '../kafka/kafka-options.js';
import type { ConsumedRecord, KafkaAdmin, KafkaClient } from '../kafka/kafka-port.js';

const examples = new URL('../../examples/prometheus-kafka-cassandra/', import.meta.url);
const ROUNDS = 3;

function exporter(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  const requests = new Counter({ name: 'http_requests_total', help: 'Requests.', labelNames: ['method', 'code'], registers: [registry] });
  const temperature = new Gauge({ name: 'room_temperature_celsius', help: 'Temperature.', labelNames: ['room'], registers: [registry] });
  const latency = new Histogram({ name: 'request_latency_seconds', help: 'Latency.', labelNames: ['route'], buckets: [0.05, 0.1, 0.5, 1, 5], registers: [registry] });
  const sizes = new Summary({ name: 'response_size_bytes', help: 'Sizes.', percentiles: [0.5, 0.9, 0.99], registers: [registry] });
  for (const [method, code, n] of [
    ['GET', '200', 120],
    ['GET', '404', 3],
    ['POST', '200', 17],
    ['POST', '500', 1],
  ] as const) {
    requests.inc({ method, code }, n);
  }
  temperature.set({ room: 'lab' }, Number.NaN);
  temperature.set({ room: 'furnace' }, Number.POSITIVE_INFINITY);
  temperature.set({ room: 'vacuum' }, Number.NEGATIVE_INFINITY);
  temperature.set({ room: 'office' }, 21.25);
  for (const route of ['/a', '/b']) for (const v of [0.01, 0.07, 0.3, 2]) latency.observe({ route }, v);
  for (const v of [10, 200, 3000]) sizes.observe(v);
  return registry;
}

async function serve(registry: Registry, servers: Server[]): Promise<string> {
  const server = createServer((_req, res) => {
    void registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
}

async function example(name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(new URL(name, examples), 'utf8')) as Record<string, unknown>;
}

/** Runs a pipeline actor from a definition; resolves its state whenever asked. */
function runPipeline(system: ActorSystem, persistence: EntityPersistence, pipelineId: string) {
  let latest: PipelineState | undefined;
  const pipeline = system.spawn(
    pipelineActor({
      pipelineId,
      persistence,
      connectors: { createSource: (d) => createSource(d), createSink: (d) => createSink(d), createDeadLetterTarget: (d) => createDeadLetterTarget(d) },
      onStateChange: (state) => (latest = state),
    }),
    `pipeline-${pipelineId}`,
  );
  const call = (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => askWithStatus<PipelineCommand, PipelineResult>(pipeline, build, { timeoutMs: 60_000 });
  return {
    start: async (definition: Record<string, unknown>) => {
      await call((replyTo) => ({ type: 'create', definition, replyTo }));
      await call((replyTo) => ({ type: 'start', replyTo }));
    },
    stop: () => call((replyTo) => ({ type: 'stop', reason: 'test done', replyTo })),
    state: () => latest,
  };
}

async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const checkpointTotal = (state: PipelineState | undefined): number => {
  const positions = (state?.status === 'empty' ? undefined : (state?.checkpoint?.sourceOffset as { positions?: [string, number, string][] } | undefined))?.positions ?? [];
  return positions.reduce((sum, p) => sum + Number(p[2]), 0);
};

const rowKey = (metric: string, job: string, instance: string, labels: Readonly<Record<string, string>>, timestamp: number): string =>
  JSON.stringify([metric, job, instance, Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)), timestamp]);

describe('the seed pipeline: Prometheus exporters -> Kafka prometheus_metrics_<job> -> prometheus parse -> Cassandra', () => {
  const ns = testNamespace(import.meta.url);
  const prefix = `${ns}_`;
  const services = serviceSettings();
  const servers: Server[] = [];
  let kafka: KafkaClient;
  let admin: KafkaAdmin;
  let cassandra: Client;
  let pool: pg.Pool;
  let persistence: Awaited<ReturnType<typeof createPostgresPersistence>>;
  const topics = [`${prefix}prometheus_metrics_app`, `${prefix}prometheus_metrics_node`, `${ns}.dlq`];

  beforeAll(async () => {
    kafka = createKafkaClient({ client: 'kafkajs', brokers: [...services.kafkaBrokers], clientId: ns });
    admin = await kafka.admin();
    // The pattern subscription sees the topics that exist when the pipeline starts.
    await admin.createTopics(topics.map((topic) => ({ topic, partitions: 1 })));
    cassandra = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
    await cassandra.connect();
    await cassandra.execute(`CREATE KEYSPACE IF NOT EXISTS ${ns} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    pool = new pg.Pool({ connectionString: services.postgresUrl, max: 4 });
    persistence = await createPostgresPersistence({ pool, ownsPool: false, schema: ns, ensureSchema: true });
  }, 120_000);

  afterAll(async () => {
    for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
    await admin?.deleteTopics(topics);
    await admin?.close();
    await cassandra?.execute(`DROP KEYSPACE IF EXISTS ${ns}`);
    await cassandra?.shutdown();
    await persistence?.close();
    await pool?.query(`DROP SCHEMA IF EXISTS "${ns}" CASCADE`);
    await pool?.end();
  }, 60_000);

  it('stores every series of every scrape with its labels, NaN / ±Inf values and timestamps', { timeout: 180_000 }, async () => {
    const appUrl = await serve(exporter('app'), servers);
    const nodeUrl = await serve(exporter('node'), servers);
    const scrape = await example('scrape-to-kafka.json');
    const toCassandra = await example('kafka-to-cassandra.json');
    const brokers = [...services.kafkaBrokers];
    const scrapeDefinition = {
      ...scrape,
      source: { ...(scrape['source'] as object), intervalMs: 500, targets: [{ url: appUrl, job: 'app' }, { url: nodeUrl, job: 'node' }] },
      sink: { ...(scrape['sink'] as object), brokers, topic: `${prefix}prometheus_metrics_{job}` },
    };
    const transform = (toCassandra['transforms'] as Record<string, unknown>[])[0];
    const storeDefinition = {
      ...toCassandra,
      source: { ...(toCassandra['source'] as object), brokers, topicPattern: `^${prefix}prometheus_metrics_.+`, fetchMaxWaitMs: 100, heartbeatIntervalMs: 1000, sessionTimeoutMs: 10_000 },
      transforms: [{ ...transform, jobFromTopic: `${prefix}prometheus_metrics_{job}` }],
      sink: { ...(toCassandra['sink'] as object), contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter, keyspace: ns },
      deadLetter: { ...(toCassandra['deadLetter'] as object), brokers, topic: `${ns}.dlq` },
    };

    const system = createActorSystem({ name: 'seed-pipeline' });
    try {
      const scraper = runPipeline(system, persistence, 'prometheus-to-kafka');
      const store = runPipeline(system, persistence, 'kafka-to-cassandra');
      await store.start(storeDefinition);
      await scraper.start(scrapeDefinition);
      await until(`${ROUNDS} scrape rounds`, () => {
        const state = scraper.state();
        return state !== undefined && state.status !== 'empty' && state.metrics.recordsProcessed >= ROUNDS * 2;
      });
      await scraper.stop();

      // Every page in Kafka is one scrape: what Cassandra must hold.
      const pages: ConsumedRecord[] = [];
      const reader = kafka.consumer(parseKafkaConsumerOptions({ groupId: `${ns}-verify`, fetchMaxWaitMs: 100, heartbeatIntervalMs: 1000, sessionTimeoutMs: 10_000 }));
      const total = async () => (await Promise.all(topics.slice(0, 2).map((t) => admin.fetchTopicOffsets(t)))).flat().reduce((sum, p) => sum + Number(p.end), 0);
      const pageCount = await total();
      try {
        await reader.subscribe(topics.slice(0, 2));
        await until('all pages read back', async () => {
          pages.push(...(await reader.poll({ maxRecords: 1000, maxWaitMs: 200 })));
          return pages.length >= pageCount;
        });
      } finally {
        await reader.close();
      }
      expect(pageCount).toBeGreaterThanOrEqual(ROUNDS * 2);
      await until('the Cassandra pipeline to checkpoint every page', () => checkpointTotal(store.state()) >= pageCount);
      await store.stop();
      expect(store.state()?.status).toBe('stopped');

      const expected = new Map<string, number>();
      for (const page of pages) {
        const job = page.topic.slice(`${prefix}prometheus_metrics_`.length);
        const instance = page.key?.toString('utf8') ?? '';
        const scrapedAt = Number(page.headers.get('scraped_at')?.toString('utf8'));
        expect(Number.isFinite(scrapedAt)).toBe(true);
        const parsed = parseExposition(page.value?.toString('utf8') ?? '', { job, instance, scrapeTimestampMs: scrapedAt });
        expect(parsed.errors).toEqual([]);
        for (const s of parsed.samples) expected.set(rowKey(s.metric_name, s.job, s.instance, s.labels, s.timestamp), s.value);
      }
      const seriesPerPage = expected.size / pages.length;
      expect(seriesPerPage).toBeGreaterThan(25);

      const rows = new Map<string, number>();
      let pageState: string | undefined;
      do {
        const result = await cassandra.execute(`SELECT metric_name, job, instance, labels, timestamp, value FROM ${ns}.prometheus_series`, [], {
          prepare: true,
          fetchSize: 5000,
          ...(pageState === undefined ? {} : { pageState }),
        });
        for (const row of result.rows) {
          rows.set(
            rowKey(row['metric_name'] as string, row['job'] as string, row['instance'] as string, (row['labels'] as Record<string, string> | null) ?? {}, (row['timestamp'] as Date).getTime()),
            row['value'] as number,
          );
        }
        pageState = result.pageState ?? undefined;
      } while (pageState !== undefined);

      const missing = [...expected.keys()].filter((key) => !rows.has(key));
      const wrong = [...expected].filter(([key, value]) => rows.has(key) && !Object.is(rows.get(key), value));
      expect({ missing: missing.slice(0, 3), wrong: wrong.slice(0, 3), rows: rows.size }).toEqual({ missing: [], wrong: [], rows: expected.size });
      const values = [...rows.values()];
      expect(values.some((v) => Number.isNaN(v))).toBe(true);
      expect(values).toContain(Number.POSITIVE_INFINITY);
      expect(values).toContain(Number.NEGATIVE_INFINITY);
      expect([...rows.keys()].some((k) => k.includes('"le","+Inf"'))).toBe(true);
    } finally {
      await system.terminate();
    }
  });
});
