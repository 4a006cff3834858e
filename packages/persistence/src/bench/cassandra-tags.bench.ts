/**
 * Benchmark of the Cassandra `eventsByTag`, in one run on one keyspace
 * (dropped at the end):
 * - current query: 50 000 tagged events of 1000 ids through
 *   `eventsByTag(tag, NoOffset)` (deserializing, gap-checking, offsets)
 *   versus two raw paged reads of the same `tag_views` partition with the
 *   raw driver: one page at a time, and one page read ahead as the query
 *   does (the fair baseline for the query's own overlap), alternated
 *   (median of the triples). The Node CPU per event of each (process CPU
 *   over the read, medians) tells how much of the time is this process's;
 *   the rest is waiting for Cassandra, which shares the machine;
 * - live reader: a live `eventsByTag` while 20 writers append concurrently,
 *   one event per append; every event must arrive exactly once (missed and
 *   duplicated are counted), and the delivery latency (from the append's
 *   acknowledgement to the reader getting the event) is reported as p50/p99.
 *   The latency follows `eventualConsistencyDelayMs` (default 250 ms) plus
 *   up to one `pollIntervalMs` (100 ms here, default 500 ms).
 *
 *   npx tsx --conditions=@dataflow/source src/bench/cassandra-tags.bench.ts
 *
 * Connection: DATAFLOW_CASSANDRA_CONTACT_POINTS (default 127.0.0.1:19042),
 * DATAFLOW_CASSANDRA_LOCAL_DC (default datacenter1).
 */
import { pathToFileURL } from 'node:url';
import { Client, type types } from 'cassandra-driver';
import { isConcurrencyConflict, isDataflowError, NoOffset, type NewEvent } from '@dataflow/core';
import { createCassandraPersistence, type CassandraPersistence } from '../cassandra/cassandra-persistence.js';
import { resolveSettings } from '../cassandra/cassandra-settings.js';
import { BENCH_PAYLOAD, benchCassandraTarget } from './bench-settings.js';

export interface CassandraTagBenchOptions {
  readonly contactPoints?: readonly string[];
  readonly localDataCenter?: string;
  readonly ids?: number;
  readonly eventsPerId?: number;
  /** Measured triples of (query, raw read, raw read one page ahead). */
  readonly pairs?: number;
  readonly liveWriters?: number;
  readonly liveAppendsPerWriter?: number;
  readonly pollIntervalMs?: number;
}

export interface CassandraTagBenchResult {
  readonly currentQueryEventsPerSec: number;
  readonly rawReadRowsPerSec: number;
  /** Current query time over raw read time (median of the pairs), as query rate / raw rate. */
  readonly currentQueryRatio: number;
  /** The raw read with the next page requested before the current one is counted (as the query reads). */
  readonly rawReadAheadRowsPerSec: number;
  /** Query rate / rate of the raw read one page ahead (median of the pairs). */
  readonly currentQueryRatioReadAhead: number;
  /** Node CPU (user + system) of this process per event during the query, and per event of the raw read (medians). */
  readonly currentQueryCpuUsPerEvent: number;
  readonly rawReadCpuUsPerEvent: number;
  readonly liveEvents: number;
  readonly liveMissed: number;
  readonly liveDuplicated: number;
  readonly liveLatencyP50Ms: number;
  readonly liveLatencyP99Ms: number;
  /** Tag rows of the live case written again because their write took longer than `eventualConsistencyDelayMs`. */
  readonly liveRestampedRows: number;
  readonly eventualConsistencyDelayMs: number;
  readonly pollIntervalMs: number;
}


/** Runs both cases; prints a table and one JSON line. */
export async function runCassandraTagBench(options: CassandraTagBenchOptions = {}): Promise<CassandraTagBenchResult> {
  const { contactPoints, localDataCenter } = benchCassandraTarget(options);
  const ids = options.ids ?? 1000;
  const eventsPerId = options.eventsPerId ?? 50;
  const pairs = options.pairs ?? 3;
  const pollIntervalMs = options.pollIntervalMs ?? 100;
  const keyspace = `bench_tags_${Date.now().toString(36)}`;

  const client = new Client({ contactPoints: [...contactPoints], localDataCenter, pooling: { maxRequestsPerConnection: 2048 } });
  await client.connect();
  let persistence: CassandraPersistence | undefined;
  try {
    let restamped = 0;
    persistence = await createCassandraPersistence({
      client,
      keyspace,
      autoCreate: true,
      pollIntervalMs,
      onEvent: (event) => {
        if (event.type === 'tag-write.restamped') restamped += event.rows;
      },
    });
    const { eventualConsistencyDelayMs } = resolveSettings({ keyspace });

    // 1. Current query over ids x eventsPerId events (written through the journal: setup, not measured).
    const tag = 'bench-tag';
    await writeTagged(persistence, tag, ids, eventsPerId);
    const total = ids * eventsPerId;
    const queryMs: number[] = [];
    const rawMs: number[] = [];
    const aheadMs: number[] = [];
    const ratios: number[] = [];
    const aheadRatios: number[] = [];
    const queryCpu: number[] = [];
    const rawCpu: number[] = [];
    await currentQuery(persistence, tag, total); // warm-up: JIT, prepared statements
    await rawRead(client, keyspace, tag, total, false);
    for (let p = 0; p < pairs; p++) {
      const q = await timed(() => currentQuery(persistence as CassandraPersistence, tag, total));
      const r = await timed(() => rawRead(client, keyspace, tag, total, false));
      const a = await timed(() => rawRead(client, keyspace, tag, total, true));
      queryMs.push(q.ms);
      rawMs.push(r.ms);
      aheadMs.push(a.ms);
      ratios.push(r.ms / q.ms);
      aheadRatios.push(a.ms / q.ms);
      queryCpu.push(q.cpuUs / total);
      rawCpu.push(r.cpuUs / total);
    }

    // 2. A live reader under concurrent writers.
    restamped = 0;
    const live = await liveReader(persistence, options.liveWriters ?? 20, options.liveAppendsPerWriter ?? 150);
    const liveRestamped = restamped;

    const perSec = (n: number, ms: number): number => Math.round((n * 1000) / ms);
    const result: CassandraTagBenchResult = {
      currentQueryEventsPerSec: perSec(total, median(queryMs)),
      rawReadRowsPerSec: perSec(total, median(rawMs)),
      currentQueryRatio: round(median(ratios)),
      rawReadAheadRowsPerSec: perSec(total, median(aheadMs)),
      currentQueryRatioReadAhead: round(median(aheadRatios)),
      currentQueryCpuUsPerEvent: round(median(queryCpu)),
      rawReadCpuUsPerEvent: round(median(rawCpu)),
      ...live,
      liveRestampedRows: liveRestamped,
      eventualConsistencyDelayMs,
      pollIntervalMs,
    };
    process.stdout.write(`Cassandra eventsByTag benchmark (${ids} ids x ${eventsPerId} events, ${pairs} pairs; live: ${options.liveWriters ?? 20} writers)\n`);
    console.table([
      {
        case: 'current query',
        result: `${result.currentQueryEventsPerSec} ev/s`,
        baseline: `${result.rawReadRowsPerSec} rows/s (raw paged read)`,
        ratio: result.currentQueryRatio,
        goal: '>= 65 000 ev/s',
      },
      {
        case: 'current query vs read-ahead',
        result: `${result.currentQueryCpuUsPerEvent} us CPU/ev (raw ${result.rawReadCpuUsPerEvent})`,
        baseline: `${result.rawReadAheadRowsPerSec} rows/s (raw, one page ahead)`,
        ratio: result.currentQueryRatioReadAhead,
        goal: '-',
      },
      {
        case: 'live reader',
        result: `${result.liveEvents} events, ${result.liveMissed} missed, ${result.liveDuplicated} duplicated`,
        baseline: `p50 ${result.liveLatencyP50Ms} ms, p99 ${result.liveLatencyP99Ms} ms (${result.liveRestampedRows} rows re-stamped)`,
        ratio: '-',
        goal: '0 missed, 0 duplicated, p99 < 500 ms',
      },
    ]);
    process.stdout.write(`${JSON.stringify({ bench: 'cassandra-tags', ...result })}\n`);
    return result;
  } finally {
    await persistence?.close();
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch((error: unknown) => process.stderr.write(`could not drop ${keyspace}: ${String(error)}\n`));
    await client.shutdown();
  }
}

/** `eventsPerId` tagged events for each of `ids` ids, in appends of 10, 100 ids at a time. */
async function writeTagged(persistence: CassandraPersistence, tag: string, ids: number, eventsPerId: number): Promise<void> {
  for (let from = 0; from < ids; from += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, ids - from) }, async (_, i) => {
        const pid = `id-${from + i}`;
        for (let written = 0; written < eventsPerId; written += 10) {
          const size = Math.min(10, eventsPerId - written);
          const events: NewEvent[] = Array.from({ length: size }, (_, k) => ({ eventType: 'Tick', payload: { ...BENCH_PAYLOAD, n: written + k + 1 }, tags: [tag] }));
          await appendRetrying(persistence, pid, events, written, 'bench');
        }
      }),
    );
  }
}

/**
 * An append retried while it fails with a retriable error (a lease that ran
 * out while queued on a loaded machine); an append found stored after an
 * unknown outcome counts as done.
 */
async function appendRetrying(persistence: CassandraPersistence, pid: string, events: readonly NewEvent[], expected: number, writerId: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await persistence.journal.append(pid, events, { expectedSequenceNr: expected, writerId });
      return;
    } catch (error) {
      if (attempt >= 10 || !isDataflowError(error) || !error.retriable) {
        if (isConcurrencyConflict(error) && (await persistence.journal.highestSequenceNr(pid)) === expected + events.length) return;
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

async function currentQuery(persistence: CassandraPersistence, tag: string, expected: number): Promise<void> {
  let n = 0;
  for await (const envelope of persistence.queries.eventsByTag(tag, NoOffset)) n += envelope.sequenceNr > 0 ? 1 : 0;
  if (n !== expected) throw new Error(`the current query delivered ${n} events, expected ${expected}`);
}

/**
 * A paged read of every row of the tag's buckets with the raw driver (no
 * deserialization, no checks); `readAhead`: the next page is requested before
 * the current one is counted, as the query reads.
 */
async function rawRead(client: Client, keyspace: string, tag: string, expected: number, readAhead: boolean): Promise<void> {
  const buckets = await client.execute(`SELECT timebucket FROM ${keyspace}.tag_buckets WHERE tag_name = ?`, [tag], { prepare: true });
  let n = 0;
  for (const bucket of buckets.rows) {
    const page = (pageState: string | undefined): Promise<types.ResultSet> =>
      client.execute(`SELECT * FROM ${keyspace}.tag_views WHERE tag_name = ? AND timebucket = ?`, [tag, bucket['timebucket']], {
        prepare: true,
        fetchSize: 1000,
        ...(pageState === undefined ? {} : { pageState }),
      });
    let next: Promise<types.ResultSet> | undefined = page(undefined);
    while (next !== undefined) {
      const current: types.ResultSet = await next;
      const pageState = current.pageState ?? undefined;
      next = pageState !== undefined && readAhead ? page(pageState) : undefined;
      n += current.rows.length;
      if (pageState !== undefined && !readAhead) next = page(pageState);
    }
  }
  // Re-stamped rows (a tag write that landed late is written again) are read too, as the query reads them.
  if (n < expected) throw new Error(`the raw read found ${n} rows, expected at least ${expected}`);
}

async function liveReader(
  persistence: CassandraPersistence,
  writers: number,
  appendsPerWriter: number,
): Promise<Pick<CassandraTagBenchResult, 'liveEvents' | 'liveMissed' | 'liveDuplicated' | 'liveLatencyP50Ms' | 'liveLatencyP99Ms'>> {
  const tag = 'bench-live';
  const expected = writers * appendsPerWriter;
  const acknowledged = new Map<string, number>();
  const delivered = new Map<string, number>();
  let duplicated = 0;
  const controller = new AbortController();
  const reading = (async () => {
    for await (const e of persistence.queries.eventsByTag(tag, NoOffset, { live: true, signal: controller.signal })) {
      const key = `${e.persistenceId}:${e.sequenceNr}`;
      if (delivered.has(key)) duplicated++;
      else delivered.set(key, performance.now());
      if (delivered.size >= expected) controller.abort();
    }
  })();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const pid = `live-${w}`;
      for (let n = 1; n <= appendsPerWriter; n++) {
        await appendRetrying(persistence, pid, [{ eventType: 'Tick', payload: { ...BENCH_PAYLOAD, n }, tags: [tag] }], n - 1, `w${w}`);
        acknowledged.set(`${pid}:${n}`, performance.now());
      }
    }),
  );
  // Whatever has not arrived 10 s after the last append counts as missed.
  const deadline = setTimeout(() => controller.abort(), 10_000);
  await reading;
  clearTimeout(deadline);
  const latencies: number[] = [];
  for (const [key, ackAt] of acknowledged) {
    const at = delivered.get(key);
    if (at !== undefined) latencies.push(Math.max(0, at - ackAt));
  }
  latencies.sort((a, b) => a - b);
  return {
    liveEvents: delivered.size,
    liveMissed: [...acknowledged.keys()].filter((key) => !delivered.has(key)).length,
    liveDuplicated: duplicated,
    liveLatencyP50Ms: Math.round(percentile(latencies, 0.5)),
    liveLatencyP99Ms: Math.round(percentile(latencies, 0.99)),
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

function median(xs: readonly number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 0.5);
}

/** Wall time and this process's CPU (user + system, microseconds) of a task. */
async function timed(task: () => Promise<void>): Promise<{ ms: number; cpuUs: number }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await task();
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { ms, cpuUs: used.user + used.system };
}

const round = (x: number): number => Math.round(x * 100) / 100;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runCassandraTagBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
