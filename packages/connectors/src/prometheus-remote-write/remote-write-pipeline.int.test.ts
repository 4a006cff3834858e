/**
 * The remote-write receiver inside a running pipeline (issue 11 item 5): a
 * real Prometheus scrapes an exporter served by the test (a prom-client
 * registry with labels, a counter, gauges holding NaN and ±Inf, a histogram
 * and a summary) every second and remote-writes to the pipeline's source; the
 * pipeline checkpoints in the Postgres journal and writes Cassandra. Every
 * series of the registry arrives as rows with its labels and values, and
 * Prometheus was answered only for checkpointed batches (its samples are all
 * behind the journal's checkpoint).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { askWithStatus, createActorSystem, pipelineActor, type ActorRef, type PipelineCommand, type PipelineReply, type PipelineResult, type PipelineState } from '@dataflow/core';
import { createPostgresPersistence } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Client } from 'cassandra-driver';
import pg from 'pg';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeadLetterTarget, createSink, createSource } from '../factory/create-connector.js';
import { startPrometheus, type PrometheusProcess } from './prometheus-process.test.js';

const registry = new Registry();
new Counter({ name: 'jobs_done_total', help: 'Jobs.', labelNames: ['queue'], registers: [registry] }).inc({ queue: 'mail' }, 5);
const gauge = new Gauge({ name: 'reactor_temperature', help: 'Temperature.', labelNames: ['core'], registers: [registry] });
gauge.set({ core: 'a' }, Number.NaN);
gauge.set({ core: 'b' }, Number.POSITIVE_INFINITY);
gauge.set({ core: 'c' }, Number.NEGATIVE_INFINITY);
gauge.set({ core: 'd' }, 451);
new Histogram({ name: 'task_seconds', help: 'Task time.', buckets: [0.1, 1], registers: [registry] }).observe(0.5);
new Summary({ name: 'payload_bytes', help: 'Payloads.', percentiles: [0.5], registers: [registry] }).observe(42);

describe('remote-write source in a pipeline, fed by a real Prometheus', () => {
  const ns = testNamespace(import.meta.url);
  const services = serviceSettings();
  let exporter: Server;
  let prometheus: PrometheusProcess | undefined;
  let cassandra: Client;
  let pool: pg.Pool;

  beforeAll(async () => {
    exporter = createServer((_req, res) => {
      void registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      });
    });
    await new Promise<void>((resolve) => exporter.listen(0, '127.0.0.1', resolve));
    cassandra = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
    await cassandra.connect();
    await cassandra.execute(`CREATE KEYSPACE IF NOT EXISTS ${ns} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    pool = new pg.Pool({ connectionString: services.postgresUrl, max: 4 });
  }, 60_000);

  afterAll(async () => {
    prometheus?.stop();
    await new Promise<void>((resolve) => exporter.close(() => resolve()));
    await cassandra?.execute(`DROP KEYSPACE IF EXISTS ${ns}`);
    await cassandra?.shutdown();
    await pool?.query(`DROP SCHEMA IF EXISTS "${ns}" CASCADE`);
    await pool?.end();
  }, 60_000);

  it('stores every series of the scraped registry and answers Prometheus only after checkpoints', { timeout: 120_000 }, async () => {
    const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema: ns, ensureSchema: true });
    const system = createActorSystem({ name: 'remote-write-pipeline' });
    try {
      // A free port for the receiver: taken from a listener closed right away.
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const port = (probe.address() as AddressInfo).port;
      await new Promise<void>((resolve) => probe.close(() => resolve()));

      let latest: PipelineState | undefined;
      const pipeline = system.spawn(
        pipelineActor({
          pipelineId: 'remote-write',
          persistence,
          connectors: { createSource: (d) => createSource(d), createSink: (d) => createSink(d), createDeadLetterTarget: (d) => createDeadLetterTarget(d) },
          onStateChange: (state) => (latest = state),
        }),
        'pipeline-remote-write',
      );
      const call = (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => askWithStatus<PipelineCommand, PipelineResult>(pipeline, build, { timeoutMs: 60_000 });
      const definition = {
        name: 'remote-write-to-cassandra',
        source: { type: 'prometheus-remote-write', port },
        transforms: [{ type: 'filter', expression: 'job == "app"' }],
        sink: {
          type: 'cassandra',
          contactPoints: [...services.cassandraContactPoints],
          localDataCenter: services.cassandraLocalDataCenter,
          keyspace: ns,
          table: 'samples',
          columns: { metric_name: 'metric_name', job: 'job', instance: 'instance', labels: 'labels', timestamp: 'timestamp', value: 'value' },
          createTable: {
            columns: { metric_name: 'text', job: 'text', instance: 'text', labels: 'frozen<map<text, text>>', timestamp: 'timestamp', value: 'double' },
            partitionKey: ['metric_name', 'job'],
            clusteringKey: ['instance', 'labels', { column: 'timestamp', order: 'DESC' }],
          },
        },
        batch: { size: 1000, maxWaitMs: 200 },
      };
      await call((replyTo) => ({ type: 'create', definition, replyTo }));
      await call((replyTo) => ({ type: 'start', replyTo }));
      const exporterHost = `127.0.0.1:${(exporter.address() as AddressInfo).port}`;
      prometheus = startPrometheus({ remoteWriteUrl: `http://127.0.0.1:${port}/api/v1/write`, targets: { app: [exporterHost] } });

      const expected = (await registry.metrics())
        .split('\n')
        .filter((line) => line.length > 0 && !line.startsWith('#'))
        .map((line) => line.slice(0, line.lastIndexOf(' ')));
      const seriesOf = (row: Record<string, unknown>): string => {
        const labels = Object.entries((row['labels'] as Record<string, string> | null) ?? {}).filter(([name]) => name !== 'job' && name !== 'instance' && name !== '__name__');
        return labels.length === 0 ? (row['metric_name'] as string) : `${row['metric_name'] as string}{${labels.map(([k, v]) => `${k}="${v}"`).join(',')}}`;
      };
      let rows: { readonly [column: string]: unknown }[] = [];
      const deadline = Date.now() + 90_000;
      for (;;) {
        try {
          rows = (await cassandra.execute(`SELECT metric_name, job, instance, labels, timestamp, value FROM ${ns}.samples`, [], { fetchSize: 10_000 })).rows;
        } catch (error) {
          // The sink creates the table when it opens.
          if (!String(error).includes('does not exist')) throw error;
        }
        const seen = new Set(rows.map(seriesOf));
        if (expected.every((series) => seen.has(series))) break;
        if (Date.now() > deadline) throw new Error(`series missing after 90 s: ${expected.filter((series) => !seen.has(series)).join(', ')}`);
        await new Promise((r) => setTimeout(r, 500));
      }
      const valuesOf = (series: string) => rows.filter((r) => seriesOf(r) === series).map((r) => r['value'] as number);
      expect(valuesOf('reactor_temperature{core="a"}').every((v) => Number.isNaN(v))).toBe(true);
      expect(valuesOf('reactor_temperature{core="b"}')).toContain(Number.POSITIVE_INFINITY);
      expect(valuesOf('reactor_temperature{core="c"}')).toContain(Number.NEGATIVE_INFINITY);
      expect(valuesOf('jobs_done_total{queue="mail"}')).toContain(5);
      for (const row of rows) expect(row).toMatchObject({ job: 'app', instance: exporterHost });
      // Prometheus was answered for checkpointed batches only: the journal counts what reached Cassandra.
      expect(latest?.status).toBe('running');
      expect(latest?.status === 'empty' ? 0 : (latest?.metrics.recordsProcessed ?? 0)).toBeGreaterThanOrEqual(rows.length);
      await call((replyTo) => ({ type: 'stop', reason: 'test done', replyTo }));
    } finally {
      prometheus?.stop();
      await system.terminate();
      await persistence.close();
    }
  });
});
