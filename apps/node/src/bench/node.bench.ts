/**
 * What observability costs a node (issue 13 item 5), in one run: the same
 * pipeline (generator → filter + map → console sink into a stream that drops
 * its lines, checkpoints in the embedded PGlite journal) run again and again
 * on one node, with observability switched per run:
 *
 * - off: the node's logger drops everything, no metrics listen;
 * - on: the node's metrics (`createNodeMetrics`) subscribed to its events,
 *   served with prom-client's process metrics by `startMetricsServer` and
 *   scraped over HTTP every second, and JSON logs through winston
 *   (`createWinstonLogger`, level info, the default) into a stream that
 *   drops its lines.
 *
 * One node for both keeps two journals' differences out of the ratio.
 * Rounds alternate which variant runs first; the overhead is 1 - the median of
 * the rounds' throughput ratios (on / off). A warm-up run of each variant comes
 * first so that both measure JIT-compiled code. Goal: overhead <= 5 %.
 * Beside it, the "on" work measured alone (the listeners per batch through
 * core's emitter, one scrape) and the overhead it implies at the measured
 * throughput: a figure the load of other processes hardly moves.
 *
 *   npx nx bench node     (or: cd apps/node && npm run bench)
 *
 * The rounds' ratios spread by tens of percent when other processes load the
 * machine (2 cores): read the median, and the spread printed beside it.
 *
 * Options by environment: BENCH_RECORDS (default 200 000 per run),
 * BENCH_BATCH_SIZE (500), BENCH_ROUNDS (8).
 */
import { pathToFileURL } from 'node:url';
import { Writable } from 'node:stream';
import type { DataflowNode } from '../node/dataflow-node.js';
import { localConnectorFactory } from '../node/connector-factory.js';
import { createWinstonLogger } from '../logging/winston-logger.js';
import { startMetricsServer } from '../metrics/metrics-server.js';
import { NullStream, silentLogger, startTempNode } from '../metrics/metrics-test-kit.js';
import type { LogFields, NodeLogger } from '../node/node-logger.js';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { createInstrumentation, type InstrumentationEvent } from '@dataflow/core';
import { createNodeMetrics } from '../metrics/node-metrics.js';

/** Options of {@link runNodeBench}. */
export interface NodeBenchOptions {
  /** Records per measured run (default 200 000). */
  readonly records?: number;
  readonly batchSize?: number;
  /** Measured pairs, alternating which node runs first (default 8). */
  readonly rounds?: number;
  /** Records of the warm-up run on each node (default 50 000). */
  readonly warmupRecords?: number;
  /** How often the metrics endpoint is scraped while the "on" node runs, ms (default 1 000). */
  readonly scrapeEveryMs?: number;
}

/** The result, also printed as one JSON line. */
export interface NodeBenchResult {
  readonly bench: 'node.observability-overhead';
  readonly records: number;
  readonly batchSize: number;
  readonly offRecordsPerSec: number;
  readonly onRecordsPerSec: number;
  /** Throughput on / off, median over the rounds. */
  readonly ratio: number;
  readonly ratios: readonly number[];
  /** 1 - ratio, in percent. */
  readonly overheadPercent: number;
  readonly goalPercent: 5;
  readonly scrapes: number;
  /** What the metric listeners and the node's per-batch log call cost per batch (a completed batch and its journal append), µs: measured alone, without the noise of the runs. */
  readonly listenerMicrosPerBatch: number;
  /** What one scrape costs (collecting the metrics and rendering the text), ms. */
  readonly scrapeMs: number;
  /** The overhead those two costs imply at the "off" throughput, with a scrape per second, in percent. */
  readonly impliedOverheadPercent: number;
}

/** The node's logger: drops everything while observability is off, writes JSON lines while it is on. */
class SwitchLogger implements NodeLogger {
  target: NodeLogger = silentLogger;
  debug(message: string, fields?: LogFields): void {
    this.target.debug(message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.target.info(message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.target.warn(message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.target.error(message, fields);
  }
}

/** A stream that drops what it gets (the JSON log lines). */
class DropStream extends Writable {
  bytes = 0;
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.bytes += chunk.length;
    done();
  }
}

function definition(name: string, records: number, batchSize: number) {
  return {
    name,
    source: {
      type: 'generator',
      count: records,
      seed: 7,
      fields: {
        id: { kind: 'sequence' },
        status: { kind: 'pick', values: ['live', 'live', 'live', 'test'] },
        value: { kind: 'int', min: 0, max: 999 },
      },
    },
    transforms: [
      { type: 'filter', expression: 'status != "test"' },
      { type: 'map', rename: [{ from: 'value', to: 'amount' }], set: [{ to: 'pipeline', value: 'bench' }], drop: ['status'] },
    ],
    sink: { type: 'console' },
    batch: { size: batchSize, maxWaitMs: 100 },
  };
}

/** Runs one pipeline to the end of its source; resolves with its duration, ms. */
async function runPipeline(node: DataflowNode, id: string, records: number, batchSize: number): Promise<number> {
  await node.createPipeline(definition(id, records, batchSize), { pipelineId: id });
  // Start every run with the garbage of the previous one collected (when node runs with --expose-gc, as `npm run bench` does).
  (globalThis as { gc?: () => void }).gc?.();
  let off: (() => void) | undefined;
  const stopped = new Promise<void>((resolve, reject) => {
    off = node.events.on('pipeline.status.changed', (e) => {
      if (e.pipelineId !== id) return;
      if (e.to === 'stopped') resolve();
      else if (e.to === 'failed') reject(new Error(`bench pipeline ${id} failed`));
    });
  });
  const start = performance.now();
  await node.start(id);
  await stopped.finally(() => off?.());
  const ms = performance.now() - start;
  const state = await node.getPipeline(id);
  const processed = state === undefined || state.status === 'empty' ? 0 : state.metrics.recordsProcessed;
  if (processed !== records) throw new Error(`bench pipeline ${id} processed ${processed} records, expected ${records}`);
  return ms;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

/**
 * The cost of the "on" work measured alone: the metric listeners and the
 * node's debug log call for one completed batch and its journal append,
 * through core's emitter; and one scrape of the registry.
 */
async function measureAlone(json: NodeLogger, processRegistry: Registry): Promise<{ listenerMicrosPerBatch: number; scrapeMs: number }> {
  const events = createInstrumentation<InstrumentationEvent>();
  const metrics = createNodeMetrics({ events, recovered: [] }, { processMetrics: false });
  // The node's own per-batch line (debug, dropped at level info), as `dataflow-node.ts` logs it.
  events.on('pipeline.batch.completed', (e) =>
    json.debug(`pipeline ${e.pipelineId}: batch ${e.batchId} done`, { pipeline_id: e.pipelineId, records: e.records, failed: e.failed, duration_ms: e.durationMs }),
  );
  const batches = 50_000;
  const emit = (i: number): void => {
    events.emit({ type: 'event-sourced.journal.written', persistenceId: 'pipeline-bench', events: 1, ok: true, durationMs: 2 });
    events.emit({
      type: 'pipeline.batch.completed',
      pipelineId: 'bench',
      batchId: `bench:${i}`,
      records: 500,
      succeeded: 500,
      failed: 0,
      failedByStage: {},
      deadLettered: 0,
      durationMs: 4,
    });
  };
  for (let i = 0; i < 5_000; i++) emit(i);
  const start = performance.now();
  for (let i = 0; i < batches; i++) emit(i);
  const listenerMicrosPerBatch = ((performance.now() - start) * 1000) / batches;
  const registry = Registry.merge([processRegistry, metrics.registry]);
  await registry.metrics();
  const scrapes = 50;
  const scrapeStart = performance.now();
  for (let i = 0; i < scrapes; i++) await registry.metrics();
  const scrapeMs = (performance.now() - scrapeStart) / scrapes;
  metrics.close();
  return { listenerMicrosPerBatch, scrapeMs };
}

/** Runs the comparison; prints a table and one JSON line. */
export async function runNodeBench(options: NodeBenchOptions = {}): Promise<NodeBenchResult> {
  const records = options.records ?? 200_000;
  const batchSize = options.batchSize ?? 500;
  const rounds = options.rounds ?? 8;
  const warmupRecords = options.warmupRecords ?? 50_000;
  const scrapeEveryMs = options.scrapeEveryMs ?? 1_000;

  const logs = new DropStream();
  const json = createWinstonLogger({ level: 'info', stream: logs });
  const logger = new SwitchLogger();
  // prom-client's process collectors (a GC observer, an event loop delay monitor) cannot be removed once
  // made: they are made once, run in both variants, and only their collection at scrapes is "on" work.
  const processRegistry = new Registry();
  collectDefaultMetrics({ register: processRegistry });
  let scrapes = 0;

  /** Observability on for one run: metrics subscribed, served and scraped, JSON logs. Returns what turns it off. */
  const observe = async (node: DataflowNode): Promise<() => Promise<void>> => {
    logger.target = json;
    const metrics = createNodeMetrics(node, { processMetrics: false });
    const server = await startMetricsServer({ registry: Registry.merge([processRegistry, metrics.registry]), port: 0, host: '127.0.0.1' });
    const scraper = setInterval(() => {
      fetch(server.url)
        .then(async (response) => {
          await response.text();
          if (response.status !== 200) throw new Error(`scrape answered ${response.status}`);
          scrapes++;
        })
        .catch((error: unknown) => process.stderr.write(`scrape failed: ${String(error)}\n`));
    }, scrapeEveryMs);
    return async () => {
      clearInterval(scraper);
      await server.close();
      metrics.close();
      logger.target = silentLogger;
    };
  };
  const run = async (node: DataflowNode, id: string, count: number, on: boolean): Promise<number> => {
    const off = on ? await observe(node) : undefined;
    try {
      return await runPipeline(node, id, count, batchSize);
    } finally {
      await off?.();
    }
  };

  const temp = await startTempNode({ logger, connectors: localConnectorFactory({ stream: new NullStream() }) });
  try {
    await run(temp.node, 'warmup-off', warmupRecords, false);
    await run(temp.node, 'warmup-on', warmupRecords, true);
    const offMs: number[] = [];
    const onMs: number[] = [];
    const ratios: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const offFirst = round % 2 === 0;
      const first = await run(temp.node, `${offFirst ? 'off' : 'on'}-${round}`, records, !offFirst);
      const second = await run(temp.node, `${offFirst ? 'on' : 'off'}-${round}`, records, offFirst);
      const [offRun, onRun] = offFirst ? [first, second] : [second, first];
      offMs.push(offRun);
      onMs.push(onRun);
      // Throughput on / off = time off / time on.
      ratios.push(offRun / onRun);
    }
    const ratio = Math.round(median(ratios) * 1000) / 1000;
    const alone = await measureAlone(json, processRegistry);
    const offRecordsPerSec = records / (median(offMs) / 1000);
    // Per second of "off" work: its batches' listener time plus one scrape per second.
    const implied = ((offRecordsPerSec / batchSize) * alone.listenerMicrosPerBatch) / 1e6 + alone.scrapeMs / 1000;
    const result: NodeBenchResult = {
      bench: 'node.observability-overhead',
      records,
      batchSize,
      offRecordsPerSec: Math.round(offRecordsPerSec),
      onRecordsPerSec: Math.round(records / (median(onMs) / 1000)),
      ratio,
      ratios: ratios.map((r) => Math.round(r * 1000) / 1000),
      overheadPercent: Math.round((1 - ratio) * 1000) / 10,
      goalPercent: 5,
      scrapes,
      listenerMicrosPerBatch: Math.round(alone.listenerMicrosPerBatch * 100) / 100,
      scrapeMs: Math.round(alone.scrapeMs * 100) / 100,
      impliedOverheadPercent: Math.round(implied * 1000) / 10,
    };
    process.stdout.write(
      `Node bench: ${records} records per run, batch ${batchSize}, ${rounds} rounds on one PGlite node; on = metrics scraped every ${scrapeEveryMs} ms + JSON logs (info)\n`,
    );
    console.table({
      'off: no metrics, no logs': { 'records/s': result.offRecordsPerSec, 'median ms': Math.round(median(offMs)) },
      'on: metrics + JSON logging': { 'records/s': result.onRecordsPerSec, 'median ms': Math.round(median(onMs)), 'ratio on/off': result.ratio },
      'overhead (1 - median ratio)': { '%': result.overheadPercent, 'goal %': result.goalPercent, scrapes },
      'ratio spread over the rounds': { min: Math.min(...result.ratios), max: Math.max(...result.ratios) },
      'measured alone: listeners per batch, one scrape': { 'µs/batch': result.listenerMicrosPerBatch, 'ms/scrape': result.scrapeMs, 'implied %': result.impliedOverheadPercent },
    });
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return result;
  } finally {
    await temp.close();
    await json.close();
  }
}

const numberFromEnv = (name: string): number | undefined => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return value;
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const records = numberFromEnv('BENCH_RECORDS');
  const batchSize = numberFromEnv('BENCH_BATCH_SIZE');
  const rounds = numberFromEnv('BENCH_ROUNDS');
  runNodeBench({
    ...(records === undefined ? {} : { records }),
    ...(batchSize === undefined ? {} : { batchSize }),
    ...(rounds === undefined ? {} : { rounds }),
  }).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
