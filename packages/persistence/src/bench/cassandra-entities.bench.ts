/**
 * Write throughput of the Cassandra journal through event-sourced entities
 * (not raw appends): N entities of core's `eventSourced` runtime, each
 * persisting E events one command at a time (send a command, await its reply,
 * send the next), all entities at once; the workload Pekko's Cassandra plugin
 * was measured on in issue 10 (1000 x 50: 2 009 events/s, p99 1.9x p50).
 * The same-run baseline is `executeConcurrent` of the same rows into an
 * identical table; the latency of each command (send to reply) gives p50/p99.
 *
 *   npx tsx --conditions=@dataflow/source src/bench/cassandra-entities.bench.ts
 *
 * Connection: DATAFLOW_CASSANDRA_CONTACT_POINTS (default 127.0.0.1:19042),
 * DATAFLOW_CASSANDRA_LOCAL_DC (default datacenter1).
 */
import { inspect } from 'node:util';
import { pathToFileURL } from 'node:url';
import { Client, concurrent, types } from 'cassandra-driver';
import { createActorSystem, eventSourced, persist, spawnEventSourced, type ReplyTo } from '@dataflow/core';
import { createCassandraPersistence, type CassandraPersistence } from '../cassandra/cassandra-persistence.js';
import { journalSchema } from '../cassandra/cassandra-schema.js';
import type { SingleWriterMode } from '../cassandra/cassandra-settings.js';
import { BENCH_PAYLOAD, benchCassandraTarget } from './bench-settings.js';

/** Pekko's Cassandra plugin on the same workload and machine (issue 10, item 10). */
const PEKKO_EVENTS_PER_SEC = 2009;

export interface EntityBenchOptions {
  readonly contactPoints?: readonly string[];
  readonly localDataCenter?: string;
  readonly entities?: number;
  readonly eventsPerEntity?: number;
  /** Statements in flight, for the journal and for `executeConcurrent` alike. */
  readonly concurrency?: number;
  readonly modes?: readonly SingleWriterMode[];
}

export interface EntityBenchModeResult {
  readonly mode: SingleWriterMode;
  readonly eventsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** p99 / p50. */
  readonly tailRatio: number;
  /** Median latency of each entity's first command (recovery, and in lease mode taking the lease). */
  readonly firstCommandP50Ms: number;
  /** p99 of every command but each entity's first. */
  readonly p99WithoutFirstMs: number;
  /** eventsPerSec / the raw baseline's rows per second. */
  readonly ratioToRaw: number;
  /** eventsPerSec / Pekko's 2 009 events/s (goal >= 3). */
  readonly ratioToPekko: number;
  /** Commands answered with an error (and sent again). */
  readonly failedCommands: number;
}

export interface EntityBenchResult {
  readonly entities: number;
  readonly eventsPerEntity: number;
  readonly rawRowsPerSec: number;
  readonly modes: readonly EntityBenchModeResult[];
}


interface Add {
  readonly replyTo: ReplyTo<number>;
}

const ticker = eventSourced<Add, { type: 'Tick'; n: number }, number>({
  persistenceId: (id) => id,
  emptyState: 0,
  onCommand: (state, command) => persist({ type: 'Tick' as const, n: state + 1 }).thenReply(command.replyTo, (s: number) => s),
  onEvent: (state) => state + 1,
});

/** Runs the entity workload per mode against the raw baseline; prints a table and one JSON line. */
export async function runEntityWriteBench(options: EntityBenchOptions = {}): Promise<EntityBenchResult> {
  const { contactPoints, localDataCenter } = benchCassandraTarget(options);
  const entities = options.entities ?? 1000;
  const eventsPerEntity = options.eventsPerEntity ?? 50;
  const concurrency = options.concurrency ?? 64;
  const modes = options.modes ?? ['lease', 'conditional'];
  const stamp = Date.now().toString(36);
  const keyspaces = modes.map((mode) => `bench_entities_${mode}_${stamp}`);

  const client = new Client({ contactPoints: [...contactPoints], localDataCenter, pooling: { maxRequestsPerConnection: 2048 } });
  await client.connect();
  try {
    const results: EntityBenchModeResult[] = [];
    let rawMs = 0;
    for (const [i, mode] of modes.entries()) {
      const keyspace = keyspaces[i] ?? '';
      const persistence = await createCassandraPersistence({ client, keyspace, autoCreate: true, singleWriter: mode, maxInFlight: concurrency });
      try {
        if (i === 0) rawMs = await rawBaseline(client, keyspace, entities, eventsPerEntity, concurrency);
        await runEntities(persistence, 'warm', 100, 5);
        const { ms, latencies, first, events, failed, firstFailure } = await runEntities(persistence, 'entity', entities, eventsPerEntity);
        if (failed > 0) process.stderr.write(`${mode}: ${failed} commands failed and were sent again; the first: ${inspect(firstFailure, { depth: 3 })}\n`);
        const eventsPerSec = Math.round((events * 1000) / ms);
        const sorted = latencies.sort((a, b) => a - b);
        const p50Ms = round(percentile(sorted, 0.5));
        const p99Ms = round(percentile(sorted, 0.99));
        const rawRowsPerSec = (entities * eventsPerEntity * 1000) / rawMs;
        results.push({
          mode,
          eventsPerSec,
          p50Ms,
          p99Ms,
          tailRatio: round(p99Ms / p50Ms),
          firstCommandP50Ms: round(percentile(first.sort((a, b) => a - b), 0.5)),
          p99WithoutFirstMs: round(percentile(withoutFirst(sorted, first), 0.99)),
          ratioToRaw: round(eventsPerSec / rawRowsPerSec),
          ratioToPekko: round(eventsPerSec / PEKKO_EVENTS_PER_SEC),
          failedCommands: failed,
        });
      } finally {
        await persistence.close();
      }
    }
    const result: EntityBenchResult = { entities, eventsPerEntity, rawRowsPerSec: Math.round((entities * eventsPerEntity * 1000) / rawMs), modes: results };
    process.stdout.write(`Cassandra journal through event-sourced entities (${entities} entities x ${eventsPerEntity} events, one command at a time, concurrency ${concurrency})\n`);
    console.table(
      results.map((r) => ({
        mode: r.mode,
        'events/s': r.eventsPerSec,
        'p50 ms': r.p50Ms,
        'p99 ms': r.p99Ms,
        'p99/p50': r.tailRatio,
        'first cmd p50': r.firstCommandP50Ms,
        'p99 w/o first': r.p99WithoutFirstMs,
        'vs raw': `${r.ratioToRaw} of ${result.rawRowsPerSec} rows/s`,
        'vs Pekko 2009': `${r.ratioToPekko}x`,
        failed: r.failedCommands,
        goal: r.mode === 'lease' ? '>= 3x Pekko' : '-',
      })),
    );
    process.stdout.write(`${JSON.stringify({ bench: 'cassandra-entities', ...result })}\n`);
    return result;
  } finally {
    for (const keyspace of keyspaces) {
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).catch((error: unknown) => process.stderr.write(`could not drop ${keyspace}: ${String(error)}\n`));
    }
    await client.shutdown();
  }
}

/** Every entity sends its commands one at a time (awaiting each reply); all entities at once. */
async function runEntities(
  persistence: CassandraPersistence,
  prefix: string,
  entities: number,
  eventsPerEntity: number,
): Promise<{ ms: number; latencies: number[]; first: number[]; events: number; failed: number; firstFailure: unknown }> {
  const system = createActorSystem({ name: `bench-${prefix}` });
  const latencies: number[] = [];
  const first: number[] = [];
  let events = 0;
  let failed = 0;
  let firstFailure: unknown;
  const start = performance.now();
  try {
    await Promise.all(
      Array.from({ length: entities }, async (_, e) => {
        const ref = spawnEventSourced(system, ticker, `${prefix}-${e}`, { persistence });
        let total = 0;
        while (total < eventsPerEntity) {
          const sent = performance.now();
          const reply = await new Promise<unknown>((resolve) => ref.tell({ replyTo: { tell: resolve } }));
          const took = performance.now() - sent;
          latencies.push(took);
          if (total === 0) first.push(took);
          if (typeof reply === 'number') {
            total = reply;
            continue;
          }
          // A failed command (an error reply): counted, and sent again as a client would.
          failed++;
          firstFailure ??= reply;
          if (failed > entities * eventsPerEntity) throw new Error(`every command fails: ${inspect(reply, { depth: 4 })}`);
        }
        events += total;
      }),
    );
    return { ms: performance.now() - start, latencies, first, events, failed, firstFailure };
  } finally {
    await system.terminate();
  }
}

/** `executeConcurrent` of the same number of rows into a copy of `messages` (the same-run baseline). */
async function rawBaseline(client: Client, keyspace: string, entities: number, eventsPerEntity: number, concurrency: number): Promise<number> {
  const messagesDdl = (await journalSchema(keyspace)).find((s) => s.includes(`${keyspace}.messages (`)) ?? '';
  await client.execute(messagesDdl.replace(`${keyspace}.messages (`, `${keyspace}.raw_messages (`));
  const insert =
    `INSERT INTO ${keyspace}.raw_messages (persistence_id, partition_nr, sequence_nr, timestamp, timebucket, writer_uuid, ser_id, ` +
    'ser_manifest, event_manifest, event, tags, tag_pid_sequence_nrs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
  const bytes = Buffer.from(JSON.stringify(BENCH_PAYLOAD));
  const rows: unknown[][] = [];
  for (let e = 0; e < entities; e++) {
    for (let s = 1; s <= eventsPerEntity; s++) rows.push([`raw-${e}`, 0, s, types.TimeUuid.now(), 0, 'w', 'json', 'Tick@v1', 'Tick@v1', bytes, [], {}]);
  }
  await concurrent.executeConcurrent(client, insert, rows.slice(0, 1000), { concurrencyLevel: concurrency });
  const start = performance.now();
  await concurrent.executeConcurrent(client, insert, rows, { concurrencyLevel: concurrency });
  return performance.now() - start;
}

/** `sorted` without the values of `first` (each removed once). */
function withoutFirst(sorted: readonly number[], first: readonly number[]): number[] {
  const drop = new Map<number, number>();
  for (const x of first) drop.set(x, (drop.get(x) ?? 0) + 1);
  return sorted.filter((x) => {
    const n = drop.get(x) ?? 0;
    if (n === 0) return true;
    drop.set(x, n - 1);
    return false;
  });
}

function percentile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

const round = (x: number): number => Math.round(x * 100) / 100;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runEntityWriteBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
