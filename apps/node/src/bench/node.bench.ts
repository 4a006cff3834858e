/**
 * What observability costs a node (issue 13 item 5), in one run: the same
 * pipeline (generator → filter + map → console sink into a stream that drops
 * its lines, checkpoints in the embedded PGlite journal) on two nodes of
 * this process, each with its own PGlite directory:
 *
 * - off: a logger that drops everything, no metrics;
 * - on: the node's metrics (`createNodeMetrics`, process metrics included)
 *   served by `startMetricsServer` and scraped over HTTP every second, and
 *   JSON logs through winston (`createWinstonLogger`, level info, the
 *   default) into a stream that drops its lines.
 *
 * Rounds alternate which node runs first; the overhead is 1 - the median of
 * the rounds' throughput ratios (on / off). A warm-up run on each node comes
 * first so that both measure JIT-compiled code. Goal: overhead <= 5 %.
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
import { NullStream, silentLogger, startTempNode, type TempNode } from '../metrics/metrics-test-kit.js';
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

/** Runs the comparison; prints a table and one JSON line. */
export async function runNodeBench(options: NodeBenchOptions = {}): Promise<NodeBenchResult> {
  const records = options.records ?? 200_000;
  const batchSize = options.batchSize ?? 500;
  const rounds = options.rounds ?? 8;
  const warmupRecords = options.warmupRecords ?? 50_000;
  const scrapeEveryMs = options.scrapeEveryMs ?? 1_000;

  const logs = new DropStream();
  const logger = createWinstonLogger({ level: 'info', stream: logs });
  const nodes: TempNode[] = [];
  try {
    const off = await startTempNode({ logger: silentLogger, connectors: localConnectorFactory({ stream: new NullStream() }) });
    nodes.push(off);
    const on = await startTempNode({ logger, connectors: localConnectorFactory({ stream: new NullStream() }) });
    nodes.push(on);
    const metrics = createNodeMetrics(on.node);
    const server = await startMetricsServer({ registry: metrics.registry, port: 0, host: '127.0.0.1' });
    let scrapes = 0;
    const scraper = setInterval(() => {
      fetch(server.url)
        .then(async (response) => {
          await response.text();
          if (response.status !== 200) throw new Error(`scrape answered ${response.status}`);
          scrapes++;
        })
        .catch((error: unknown) => process.stderr.write(`scrape failed: ${String(error)}\n`));
    }, scrapeEveryMs);
    try {
      await runPipeline(off.node, 'warmup-off', warmupRecords, batchSize);
      await runPipeline(on.node, 'warmup-on', warmupRecords, batchSize);
      const offMs: number[] = [];
      const onMs: number[] = [];
      const ratios: number[] = [];
      for (let round = 0; round < rounds; round++) {
        let offRun: number;
        let onRun: number;
        if (round % 2 === 0) {
          offRun = await runPipeline(off.node, `off-${round}`, records, batchSize);
          onRun = await runPipeline(on.node, `on-${round}`, records, batchSize);
        } else {
          onRun = await runPipeline(on.node, `on-${round}`, records, batchSize);
          offRun = await runPipeline(off.node, `off-${round}`, records, batchSize);
        }
        offMs.push(offRun);
        onMs.push(onRun);
        // Throughput on / off = time off / time on.
        ratios.push(offRun / onRun);
      }
      const ratio = Math.round(median(ratios) * 1000) / 1000;
      const result: NodeBenchResult = {
        bench: 'node.observability-overhead',
        records,
        batchSize,
        offRecordsPerSec: Math.round(records / (median(offMs) / 1000)),
        onRecordsPerSec: Math.round(records / (median(onMs) / 1000)),
        ratio,
        ratios: ratios.map((r) => Math.round(r * 1000) / 1000),
        overheadPercent: Math.round((1 - ratio) * 1000) / 10,
        goalPercent: 5,
        scrapes,
      };
      process.stdout.write(
        `Node bench: ${records} records per run, batch ${batchSize}, ${rounds} rounds on PGlite; on = metrics scraped every ${scrapeEveryMs} ms + JSON logs (info)\n`,
      );
      console.table({
        'off: no metrics, no logs': { 'records/s': result.offRecordsPerSec, 'median ms': Math.round(median(offMs)) },
        'on: metrics + JSON logging': { 'records/s': result.onRecordsPerSec, 'median ms': Math.round(median(onMs)), 'ratio on/off': result.ratio },
        'overhead (1 - median ratio)': { '%': result.overheadPercent, 'goal %': result.goalPercent, scrapes },
        'ratio spread over the rounds': { min: Math.min(...result.ratios), max: Math.max(...result.ratios) },
      });
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return result;
    } finally {
      clearInterval(scraper);
      await server.close();
      metrics.close();
    }
  } finally {
    for (const temp of nodes.reverse()) await temp.close();
    await logger.close();
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
