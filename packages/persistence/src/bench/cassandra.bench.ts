/**
 * Benchmark of the Cassandra journal against the raw driver, in one run on one
 * keyspace (dropped at the end):
 * - write: 1000 actors x 50 events, each actor appending 1-5 events at a time,
 *   versus `executeConcurrent` of the same rows into an identical table (the
 *   default lease mode, and for comparison the conditional mode);
 * - replay: 100 000 events of one persistence id through `journal.replay`
 *   (deserializing) versus a raw paged read of the same rows;
 * - batching: events appended to one id without awaiting each append (the
 *   journal coalesces them) versus awaited one by one.
 *
 *   npx tsx --conditions=@dataflow/source src/bench/cassandra.bench.ts
 *
 * Connection: DATAFLOW_CASSANDRA_CONTACT_POINTS (default 127.0.0.1:19042),
 * DATAFLOW_CASSANDRA_LOCAL_DC (default datacenter1).
 */
import { pathToFileURL } from 'node:url';
import { Client, concurrent, types } from 'cassandra-driver';
import type { NewEvent } from '@dataflow/core';
import { createCassandraPersistence, type CassandraPersistence } from '../cassandra/cassandra-persistence.js';
import { journalSchema } from '../cassandra/cassandra-schema.js';
import { BENCH_PAYLOAD, benchCassandraTarget } from './bench-settings.js';

export interface CassandraBenchOptions {
  readonly contactPoints?: readonly string[];
  readonly localDataCenter?: string;
  readonly actors?: number;
  readonly eventsPerActor?: number;
  readonly replayEvents?: number;
  readonly oneByOneEvents?: number;
  /** Statements in flight, for the journal and for `executeConcurrent` alike. */
  readonly concurrency?: number;
}

export interface CassandraBenchResult {
  readonly writeJournalEventsPerSec: number;
  readonly writeRawRowsPerSec: number;
  readonly writeRatio: number;
  /** The same writes with `singleWriter: 'conditional'`. */
  readonly writeConditionalEventsPerSec: number;
  readonly writeConditionalRatio: number;
  readonly replayJournalEventsPerSec: number;
  readonly replayRawRowsPerSec: number;
  readonly replayRatio: number;
  readonly batchedEventsPerSec: number;
  readonly oneByOneEventsPerSec: number;
  readonly batchedSpeedup: number;
}


/** Runs the three comparisons; prints a table and one JSON line. */
export async function runCassandraBench(options: CassandraBenchOptions = {}): Promise<CassandraBenchResult> {
  const { contactPoints, localDataCenter } = benchCassandraTarget(options);
  const actors = options.actors ?? 1000;
  const eventsPerActor = options.eventsPerActor ?? 50;
  const replayEvents = options.replayEvents ?? 100_000;
  const oneByOne = options.oneByOneEvents ?? 1000;
  const concurrency = options.concurrency ?? 64;
  const keyspace = `bench_cassandra_${Date.now().toString(36)}`;
  const conditionalKeyspace = `${keyspace}_c`;

  const client = new Client({ contactPoints: [...contactPoints], localDataCenter, pooling: { maxRequestsPerConnection: 2048 } });
  await client.connect();
  let persistence: CassandraPersistence | undefined;
  try {
    persistence = await createCassandraPersistence({ client, keyspace, autoCreate: true, maxInFlight: concurrency });
    const messagesDdl = (await journalSchema(keyspace)).find((s) => s.includes(`${keyspace}.messages (`)) ?? '';
    await client.execute(messagesDdl.replace(`${keyspace}.messages (`, `${keyspace}.raw_messages (`));
    const insertRaw =
      `INSERT INTO ${keyspace}.raw_messages (persistence_id, partition_nr, sequence_nr, timestamp, timebucket, writer_uuid, ser_id, ` +
      'ser_manifest, event_manifest, event, tags, tag_pid_sequence_nrs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
    const bytes = Buffer.from(JSON.stringify(BENCH_PAYLOAD));
    const rawRow = (pid: string, seq: number): unknown[] => [pid, 0, seq, types.TimeUuid.now(), 0, 'w', 'json', 'Tick@v1', 'Tick@v1', bytes, [], {}];

    // Warm-up of both paths (JIT, prepared statements, connections).
    await writeActors(persistence, 'warm', 100, 10);
    await concurrent.executeConcurrent(client, insertRaw, rowsFor('warm', 100, 10, rawRow), { concurrencyLevel: concurrency });

    // 1. Writes.
    const total = actors * eventsPerActor;
    // The raw baseline runs before and after the journal (the machine's load drifts); the mean is compared.
    const rawBeforeMs = await timed(() =>
      concurrent.executeConcurrent(client, insertRaw, rowsFor('before', actors, eventsPerActor, rawRow), { concurrencyLevel: concurrency }).then(() => undefined),
    );
    const journalWriteMs = await timed(() => writeActors(persistence as CassandraPersistence, 'actor', actors, eventsPerActor));
    // The same load with a conditional (Paxos) batch per append, for comparison (docs/adr/0002); a keyspace
    // records its single-writer mode, so this one gets its own.
    const conditional = await createCassandraPersistence({
      client,
      keyspace: conditionalKeyspace,
      autoCreate: true,
      singleWriter: 'conditional',
      maxInFlight: concurrency,
    });
    const conditionalWriteMs = await timed(() => writeActors(conditional, 'conditional', actors, eventsPerActor));
    await conditional.close();
    const rawAfterMs = await timed(() =>
      concurrent.executeConcurrent(client, insertRaw, rowsFor('after', actors, eventsPerActor, rawRow), { concurrencyLevel: concurrency }).then(() => undefined),
    );
    const rawWriteMs = (rawBeforeMs + rawAfterMs) / 2;

    // 2. Replay of one long history (stored with the raw driver: setup, not measured).
    const longPid = 'replay-long';
    const longRows = Array.from({ length: replayEvents }, (_, i) => rawRow(longPid, i + 1));
    await concurrent.executeConcurrent(client, insertRaw.replace('raw_messages', 'messages'), longRows, { concurrencyLevel: concurrency });
    await concurrent.executeConcurrent(client, insertRaw, longRows, { concurrencyLevel: concurrency });
    await client.execute(`UPDATE ${keyspace}.messages SET highest_sequence_nr = ? WHERE persistence_id = ? AND partition_nr = 0`, [replayEvents, longPid], { prepare: true });
    let replayed = 0;
    const journalReplayMs = await timed(async () => {
      for await (const event of (persistence as CassandraPersistence).journal.replay(longPid, 1)) replayed += event.sequenceNr > 0 ? 1 : 0;
    });
    let read = 0;
    const rawReplayMs = await timed(async () => {
      let pageState: string | undefined;
      do {
        const page = await client.execute(`SELECT * FROM ${keyspace}.raw_messages WHERE persistence_id = ? AND partition_nr = 0`, [longPid], {
          prepare: true,
          fetchSize: 1000,
          ...(pageState === undefined ? {} : { pageState }),
        });
        read += page.rows.length;
        pageState = page.pageState ?? undefined;
      } while (pageState !== undefined);
    });
    if (replayed !== replayEvents || read !== replayEvents) throw new Error(`replay read ${replayed} / raw read ${read}, expected ${replayEvents}`);

    // 3. Coalesced versus awaited one by one.
    const { journal } = persistence;
    const single = (n: number): NewEvent[] => [{ eventType: 'Tick', payload: { ...BENCH_PAYLOAD, n } }];
    const oneByOneMs = await timed(async () => {
      for (let i = 0; i < oneByOne; i++) await journal.append('one-by-one', single(i), { expectedSequenceNr: i, writerId: 'w' });
    });
    const batchedMs = await timed(async () => {
      await Promise.all(Array.from({ length: oneByOne }, (_, i) => journal.append('batched', single(i), { expectedSequenceNr: i, writerId: 'w' })));
    });

    const perSec = (n: number, ms: number): number => Math.round((n * 1000) / ms);
    const result: CassandraBenchResult = {
      writeJournalEventsPerSec: perSec(total, journalWriteMs),
      writeRawRowsPerSec: perSec(total, rawWriteMs),
      writeRatio: round(rawWriteMs / journalWriteMs),
      writeConditionalEventsPerSec: perSec(total, conditionalWriteMs),
      writeConditionalRatio: round(rawWriteMs / conditionalWriteMs),
      replayJournalEventsPerSec: perSec(replayEvents, journalReplayMs),
      replayRawRowsPerSec: perSec(replayEvents, rawReplayMs),
      replayRatio: round(rawReplayMs / journalReplayMs),
      batchedEventsPerSec: perSec(oneByOne, batchedMs),
      oneByOneEventsPerSec: perSec(oneByOne, oneByOneMs),
      batchedSpeedup: round(oneByOneMs / batchedMs),
    };
    process.stdout.write(`Cassandra journal benchmark (${actors} actors x ${eventsPerActor} events, replay ${replayEvents}, concurrency ${concurrency})\n`);
    console.table([
      { case: 'write (lease)', journal: `${result.writeJournalEventsPerSec} ev/s`, baseline: `${result.writeRawRowsPerSec} rows/s (executeConcurrent)`, ratio: result.writeRatio, goal: '>= 0.6' },
      { case: 'write (conditional)', journal: `${result.writeConditionalEventsPerSec} ev/s`, baseline: `${result.writeRawRowsPerSec} rows/s (executeConcurrent)`, ratio: result.writeConditionalRatio, goal: '-' },
      { case: 'replay', journal: `${result.replayJournalEventsPerSec} ev/s`, baseline: `${result.replayRawRowsPerSec} rows/s (paged read)`, ratio: result.replayRatio, goal: '>= 0.5' },
      { case: 'batching', journal: `${result.batchedEventsPerSec} ev/s (coalesced)`, baseline: `${result.oneByOneEventsPerSec} ev/s (awaited one by one)`, ratio: result.batchedSpeedup, goal: '>= 5' },
    ]);
    process.stdout.write(`${JSON.stringify({ bench: 'cassandra-journal', ...result })}\n`);
    return result;
  } finally {
    await persistence?.close();
    for (const ks of [keyspace, conditionalKeyspace]) {
      await client.execute(`DROP KEYSPACE IF EXISTS ${ks}`).catch((error: unknown) => process.stderr.write(`could not drop ${ks}: ${String(error)}\n`));
    }
    await client.shutdown();
  }
}

/** Appends of 1-5 events (a fixed pattern) per actor, every actor concurrently. */
async function writeActors(persistence: CassandraPersistence, prefix: string, actors: number, eventsPerActor: number): Promise<void> {
  await Promise.all(
    Array.from({ length: actors }, async (_, a) => {
      const pid = `${prefix}-${a}`;
      let written = 0;
      let k = a;
      while (written < eventsPerActor) {
        const size = Math.min(1 + (k++ % 5), eventsPerActor - written);
        const events = Array.from({ length: size }, (_, i) => ({ eventType: 'Tick', payload: { ...BENCH_PAYLOAD, n: written + i + 1 } }));
        await persistence.journal.append(pid, events, { expectedSequenceNr: written, writerId: 'bench' });
        written += size;
      }
    }),
  );
}

function rowsFor(prefix: string, actors: number, eventsPerActor: number, row: (pid: string, seq: number) => unknown[]): unknown[][] {
  const rows: unknown[][] = [];
  for (let a = 0; a < actors; a++) for (let s = 1; s <= eventsPerActor; s++) rows.push(row(`${prefix}-${a}`, s));
  return rows;
}

async function timed(task: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await task();
  return performance.now() - start;
}

const round = (x: number): number => Math.round(x * 100) / 100;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runCassandraBench().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
