/**
 * The node's metrics end to end: real pipelines on a real node (embedded
 * PGlite journal in a temporary directory), scraped over HTTP from the
 * metrics server. The counts must equal what the pipelines processed, the
 * errors carry their stage, the status gauge follows pause and resume, a
 * journal failure counts a restart, and the server answers, refuses a taken
 * port by name and frees its port on close.
 */
import {
  DataflowError,
  JournalWriteError,
  type ConnectorFactory,
  type PersistencePlugin,
  type PipelineState,
  type Sink,
} from '@dataflow/core';
import { createProjectionStatusObserver } from '@dataflow/projections';
import { createServer } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { localConnectorFactory } from '../node/connector-factory.js';
import type { DataflowNode } from '../node/dataflow-node.js';
import { MetricsPortInUseError } from './metrics-errors.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import { NullStream, parseExposition, startTempNode, valueOf, type Sample, type TempNode } from './metrics-test-kit.js';
import { createNodeMetrics, type NodeMetrics } from './node-metrics.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Harness {
  readonly temp: TempNode;
  readonly node: DataflowNode;
  readonly metrics: NodeMetrics;
  readonly server: MetricsServer;
  readonly scrape: () => Promise<Sample[]>;
  readonly close: () => Promise<void>;
}

/** A node on its own PGlite directory with its metrics served on a free port. */
async function boot(options: Parameters<typeof startTempNode>[0] = {}): Promise<Harness> {
  const temp = await startTempNode(options);
  const metrics = createNodeMetrics(temp.node);
  const server = await startMetricsServer({ registry: metrics.registry, port: 0, host: '127.0.0.1' }).catch(async (error: unknown) => {
    metrics.close();
    await temp.close();
    throw error;
  });
  return {
    temp,
    node: temp.node,
    metrics,
    server,
    scrape: async () => {
      const response = await fetch(server.url);
      expect(response.status).toBe(200);
      return parseExposition(await response.text());
    },
    close: async () => {
      await server.close();
      metrics.close();
      await temp.close();
    },
  };
}

/** A node of its own for one test (closed after it). */
async function own(options: Parameters<typeof startTempNode>[0] = {}): Promise<Harness> {
  const harness = await boot(options);
  cleanups.push(() => harness.close());
  return harness;
}

/** One node shared by the tests that use distinct pipeline ids and only per-pipeline metrics (starting PGlite costs seconds). */
let sharedHarness: Promise<Harness> | undefined;
const shared = (): Promise<Harness> => (sharedHarness ??= boot());
afterAll(async () => {
  if (sharedHarness !== undefined) await (await sharedHarness).close();
});

const generated = (name: string, overrides: Record<string, unknown> = {}) => ({
  name,
  source: { type: 'generator', count: 95, fields: { id: { kind: 'sequence' } } },
  transforms: [{ type: 'filter', expression: 'id > 0' }],
  sink: { type: 'console' },
  batch: { size: 20, maxWaitMs: 10 },
  ...overrides,
});

async function until(node: DataflowNode, id: string, done: (state: PipelineState) => boolean): Promise<PipelineState> {
  return vi.waitFor(
    async () => {
      const state = await node.getPipeline(id);
      if (state === undefined || !done(state)) throw new Error(`pipeline ${id} is ${state?.status ?? 'unknown'}`);
      return state;
    },
    { timeout: 20_000, interval: 20 },
  );
}

const metricsOf = (state: PipelineState) => {
  if (state.status === 'empty') throw new Error('the pipeline does not exist');
  return state.metrics;
};

class FlakySinkError extends DataflowError<'test/flaky-sink'> {
  constructor() {
    super('test/flaky-sink', 'the sink is briefly unavailable (injected)', { retriable: true });
  }
}

/** The local connectors, except that the first `failures` sink writes (across generations) fail retriably. */
function flakySink(failures: number): ConnectorFactory {
  const local = localConnectorFactory({ stream: new NullStream() });
  let left = failures;
  return {
    ...local,
    createSink(definition): Sink {
      const sink = local.createSink(definition);
      return new Proxy(sink, {
        get(target, key, receiver) {
          const value: unknown = Reflect.get(target, key, receiver);
          if (key !== 'write' || typeof value !== 'function') return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          return (...args: unknown[]) => {
            if (left > 0) {
              left--;
              return Promise.reject(new FlakySinkError());
            }
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    },
  };
}

describe('node metrics', () => {
  it('counts exactly the records, batches and journal writes of a pipeline that ran to the end of its source', { timeout: 60_000 }, async () => {
    const { node, server } = await shared();
    await node.createPipeline(generated('numbers'), { pipelineId: 'numbers' });
    await node.start('numbers');
    const done = metricsOf(await until(node, 'numbers', (s) => s.status === 'stopped'));
    expect(done.recordsProcessed).toBe(95);

    const response = await fetch(server.url);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const samples = parseExposition(await response.text());
    expect(valueOf(samples, 'pipeline_records_processed_total', { pipeline: 'numbers' })).toBe(95);
    // 95 records in batches of 20: 5 batches.
    expect(valueOf(samples, 'pipeline_batch_size_count', { pipeline: 'numbers' })).toBe(done.batches);
    expect(done.batches).toBe(5);
    expect(valueOf(samples, 'pipeline_batch_size_sum', { pipeline: 'numbers' })).toBe(95);
    expect(valueOf(samples, 'pipeline_batch_size_bucket', { pipeline: 'numbers', le: '10' })).toBe(0);
    expect(valueOf(samples, 'pipeline_batch_size_bucket', { pipeline: 'numbers', le: '50' })).toBe(5);
    expect(valueOf(samples, 'pipeline_batch_duration_seconds_count', { pipeline: 'numbers' })).toBe(5);
    expect(valueOf(samples, 'pipeline_status', { pipeline: 'numbers', status: 'stopped' })).toBe(1);
    expect(valueOf(samples, 'pipeline_status', { pipeline: 'numbers', status: 'running' })).toBe(0);
    expect(valueOf(samples, 'pipeline_errors_total', { pipeline: 'numbers' })).toBeUndefined();
    // Each checkpoint, the status changes and the coordinator's registration are journal appends.
    expect(valueOf(samples, 'dataflow_journal_write_duration_seconds_count')).toBeGreaterThanOrEqual(5 + 2);
    expect(valueOf(samples, 'dataflow_actor_restarts_total')).toBe(0);
    // prom-client's process metrics, in the node's own registry.
    expect(valueOf(samples, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(valueOf(samples, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
  });

  it('counts the records a stage dropped under that stage, and their dead letters', { timeout: 60_000 }, async () => {
    const { node, scrape, temp } = await shared();
    await node.createPipeline(
      generated('letters', {
        source: { type: 'generator', count: 30, fields: { id: { kind: 'sequence' }, body: { kind: 'constant', value: 'not json' } } },
        transforms: [
          { type: 'filter', expression: 'id > 10' },
          { type: 'json-parse', field: 'body', onError: 'dead-letter' },
        ],
        deadLetter: { type: 'file', path: join(temp.dir, 'dead-letters.jsonl') },
      }),
      { pipelineId: 'letters' },
    );
    await node.start('letters');
    const done = metricsOf(await until(node, 'letters', (s) => s.status === 'stopped'));
    expect(done.recordsFailed).toBe(20);
    const samples = await scrape();
    expect(valueOf(samples, 'pipeline_records_processed_total', { pipeline: 'letters' })).toBe(30);
    expect(valueOf(samples, 'pipeline_errors_total', { pipeline: 'letters', stage: 'transforms[1]' })).toBe(20);
    expect(samples.filter((s) => s.name === 'pipeline_errors_total')).toHaveLength(1);
    expect(valueOf(samples, 'dataflow_dead_letters_total', { pipeline: 'letters' })).toBe(20);
  });

  it('counts failed batches under the stage that failed them; the retried records are counted once', { timeout: 60_000 }, async () => {
    const { node, scrape } = await own({ connectors: flakySink(2) });
    await node.createPipeline(generated('flaky', { retry: { initialBackoffMs: 10, maxBackoffMs: 20, jitter: 0 } }), { pipelineId: 'flaky' });
    await node.start('flaky');
    const done = metricsOf(await until(node, 'flaky', (s) => s.status === 'stopped'));
    expect(done.recordsProcessed).toBe(95);
    const samples = await scrape();
    expect(valueOf(samples, 'pipeline_errors_total', { pipeline: 'flaky', stage: 'sink' })).toBe(2);
    expect(valueOf(samples, 'pipeline_records_processed_total', { pipeline: 'flaky' })).toBe(95);
  });

  it('flips the status gauge on pause and resume', { timeout: 60_000 }, async () => {
    const { node, scrape } = await shared();
    await node.createPipeline(generated('endless', { source: { type: 'generator', rate: 500, fields: { id: { kind: 'sequence' } } } }), { pipelineId: 'endless' });
    const status = async (): Promise<Record<string, number | undefined>> => {
      const samples = await scrape();
      const of = (s: string) => valueOf(samples, 'pipeline_status', { pipeline: 'endless', status: s });
      return { configured: of('configured'), running: of('running'), paused: of('paused') };
    };
    expect(await status()).toEqual({ configured: 1, running: 0, paused: 0 });
    await node.start('endless');
    expect(await status()).toEqual({ configured: 0, running: 1, paused: 0 });
    await node.pause('endless');
    expect(await status()).toEqual({ configured: 0, running: 0, paused: 1 });
    await node.resume('endless');
    expect(await status()).toEqual({ configured: 0, running: 1, paused: 0 });
    await node.stop('endless');
    expect(await status()).toMatchObject({ running: 0, paused: 0 });
  });

  it('seeds the status of the pipelines a restarted node recovered', { timeout: 60_000 }, async () => {
    const first = await startTempNode();
    let closed = false;
    cleanups.push(() => (closed ? undefined : first.close()));
    await first.node.createPipeline(generated('kept'), { pipelineId: 'kept' });
    await first.node.start('kept');
    await until(first.node, 'kept', (s) => s.status === 'stopped');
    await first.node.shutdown();
    const { startNode } = await import('../node/dataflow-node.js');
    const { silentLogger } = await import('./metrics-test-kit.js');
    const second = await startNode({ store: { type: 'pglite', dataDir: first.dir }, logger: silentLogger, connectors: localConnectorFactory({ stream: new NullStream() }) });
    cleanups.push(async () => {
      await second.shutdown();
      closed = true;
      await first.close();
    });
    const metrics = createNodeMetrics(second, { processMetrics: false });
    const samples = parseExposition(await metrics.registry.metrics());
    expect(valueOf(samples, 'pipeline_status', { pipeline: 'kept', status: 'stopped' })).toBe(1);
    expect(valueOf(samples, 'process_cpu_user_seconds_total')).toBeUndefined();
    metrics.close();
  });

  it('counts the restart of a pipeline whose checkpoint the journal refused', { timeout: 60_000 }, async () => {
    const injected = { failures: 0 };
    const wrap = (plugin: PersistencePlugin): PersistencePlugin => {
      const journal = new Proxy(plugin.journal, {
        get(target, key, receiver) {
          const value: unknown = Reflect.get(target, key, receiver);
          if (typeof value !== 'function') return value;
          const fn = value as (...args: unknown[]) => unknown;
          if (key !== 'append') return fn.bind(target);
          return (...args: unknown[]) => {
            if (args[0] === 'pipeline-restarts' && injected.failures > 0) {
              injected.failures--;
              return Promise.reject(new JournalWriteError('pipeline-restarts', 'connection reset (injected)', { retriable: true }));
            }
            return fn.apply(target, args);
          };
        },
      });
      return new Proxy(plugin, { get: (target, key, receiver) => (key === 'journal' ? journal : (Reflect.get(target, key, receiver) as unknown)) });
    };
    const { node, scrape } = await own({ wrap });
    await node.createPipeline(generated('restarts', { retry: { initialBackoffMs: 10, maxBackoffMs: 20, jitter: 0 } }), { pipelineId: 'restarts' });
    expect(valueOf(await scrape(), 'dataflow_actor_restarts_total')).toBe(0);
    await node.start('restarts');
    injected.failures = 1;
    const done = metricsOf(await until(node, 'restarts', (s) => s.status === 'stopped'));
    expect(injected.failures).toBe(0);
    expect(done.recordsProcessed).toBe(95);
    const samples = await scrape();
    expect(valueOf(samples, 'dataflow_actor_restarts_total')).toBe(1);
    expect(valueOf(samples, 'pipeline_records_processed_total', { pipeline: 'restarts' })).toBe(95);
  });

  it('reports projection lag given by the caller or by a status observer, and refuses values that are no lag', { timeout: 60_000 }, async () => {
    const { metrics, scrape } = await shared();
    metrics.recordProjectionLag('orders', 2.5);
    const observer = createProjectionStatusObserver();
    const off = metrics.observeProjections(observer);
    observer.onStatus({ type: 'progress', id: { name: 'totals', key: 'all' }, offset: { kind: 'sequence', value: 1 }, events: 3, lastEventAt: Date.now() - 4_000 });
    const samples = await scrape();
    expect(valueOf(samples, 'dataflow_projection_lag_seconds', { projection: 'orders' })).toBe(2.5);
    expect(valueOf(samples, 'dataflow_projection_lag_seconds', { projection: 'totals' })).toBeGreaterThanOrEqual(4);
    expect(valueOf(samples, 'dataflow_projection_lag_seconds', { projection: 'totals' })).toBeLessThan(10);
    off();
    expect(() => metrics.recordProjectionLag('orders', -1)).toThrow(expect.objectContaining({ tag: 'metrics/invalid-value', field: 'seconds' }));
    expect(() => metrics.recordProjectionLag('orders', Number.NaN)).toThrow(expect.objectContaining({ field: 'seconds' }));
    expect(() => metrics.recordProjectionLag('', 1)).toThrow(expect.objectContaining({ field: 'projection' }));
  });
});

describe('metrics server', () => {
  it('answers 404 off /metrics, refuses a port in use by name, and frees its port on close', { timeout: 30_000 }, async () => {
    const { metrics, server } = await own();
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${server.port}/metricsx`)).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
    const head = await fetch(server.url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);

    const taken = await startMetricsServer({ registry: metrics.registry, port: server.port, host: '127.0.0.1' }).catch((e: unknown) => e);
    expect(taken).toBeInstanceOf(MetricsPortInUseError);
    expect(taken).toMatchObject({ tag: 'metrics/port-in-use', port: server.port, retriable: true });
    expect((taken as Error).message).toContain(`127.0.0.1:${server.port}`);

    // A keep-alive connection must not hold the port after close.
    const kept = await fetch(server.url, { headers: { connection: 'keep-alive' } });
    await kept.text();
    await server.close();
    await server.close();
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(server.port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => again.close(() => resolve()));
    await expect(startMetricsServer({ registry: metrics.registry, port: 70_000 })).rejects.toMatchObject({ tag: 'metrics/invalid-value', field: 'port' });
  });
  it('fails a scrape visibly with 500 when a collector throws, instead of serving partial metrics', async () => {
    const registry = new Registry();
    new Gauge({
      name: 'broken_gauge',
      help: 'a collector that throws',
      registers: [registry],
      collect() {
        throw new Error('collector down');
      },
    });
    const server = await startMetricsServer({ registry, port: 0, host: '127.0.0.1' });
    cleanups.push(() => server.close());
    const response = await fetch(server.url);
    expect(response.status).toBe(500);
    expect(await response.text()).toContain('collector down');
  });
});
