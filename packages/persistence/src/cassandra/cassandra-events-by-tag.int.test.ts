import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoOffset, type EventEnvelope } from '@dataflow/core';
import { uniqueName } from '@dataflow/test-env';
import { cassandraFixture, type CassandraFixture } from './cassandra-fixture.test.js';
import { createCassandraPersistence } from './cassandra-persistence.js';
import { CassandraSession } from './cassandra-session.js';
import { resolveSettings } from './cassandra-settings.js';
import { TagViewWriter, type PendingTagRow } from './tag-view-writer.js';

const WRITERS = 20;
const APPENDS = 15;

/** Reads `stream` until `count` events arrived (or it fails), then aborts it. */
async function take(stream: AsyncIterable<EventEnvelope>, count: number, controller: AbortController): Promise<EventEnvelope[]> {
  const got: EventEnvelope[] = [];
  try {
    for await (const e of stream) {
      got.push(e);
      if (got.length >= count) break;
    }
  } finally {
    controller.abort();
  }
  return got;
}

function expectExactlyOnceInOrder(got: readonly EventEnvelope[], expected: ReadonlyMap<string, number[]>): void {
  const byPid = new Map<string, number[]>();
  for (const e of got) byPid.set(e.persistenceId, [...(byPid.get(e.persistenceId) ?? []), e.sequenceNr]);
  expect(new Set(byPid.keys())).toEqual(new Set(expected.keys()));
  for (const [pid, seqs] of expected) expect(byPid.get(pid)).toEqual(seqs);
}

describe('Cassandra eventsByTag under 20 concurrent writers', () => {
  let fx: CassandraFixture;

  beforeAll(async () => {
    fx = await cassandraFixture(import.meta.url, { eventualConsistencyDelayMs: 500, pollIntervalMs: 100, gapTimeoutMs: 5000 });
  });
  afterAll(async () => {
    await fx.cleanup();
  });

  it('delivers every event exactly once and in order per persistence id to live readers, and resumes from any offset', { timeout: 120_000 }, async () => {
    const { journal, queries } = fx.plugin;
    const everything = uniqueName('all');
    const odd = uniqueName('odd');
    const pids = Array.from({ length: WRITERS }, (_, w) => uniqueName(`writer${w}`));
    // Sizes of appends vary from 1 to 3 events; every event is tagged `everything`, odd sequence numbers also `odd`.
    const sizes = pids.map((_, w) => Array.from({ length: APPENDS }, (_, i) => 1 + ((w + i) % 3)));
    const expectedAll = new Map(pids.map((pid, w) => {
      const total = (sizes[w] ?? []).reduce((a, b) => a + b, 0);
      return [pid, Array.from({ length: total }, (_, i) => i + 1)];
    }));
    const expectedOdd = new Map([...expectedAll].map(([pid, seqs]) => [pid, seqs.filter((n) => n % 2 === 1)]));
    const total = [...expectedAll.values()].reduce((a, s) => a + s.length, 0);
    const totalOdd = [...expectedOdd.values()].reduce((a, s) => a + s.length, 0);

    const allController = new AbortController();
    const oddController = new AbortController();
    const readingAll = take(queries.eventsByTag(everything, NoOffset, { live: true, signal: allController.signal }), total, allController);
    const readingOdd = take(queries.eventsByTag(odd, NoOffset, { live: true, signal: oddController.signal }), totalOdd, oddController);

    await Promise.all(
      pids.map(async (pid, w) => {
        let expected = 0;
        for (const size of sizes[w] ?? []) {
          const events = Array.from({ length: size }, (_, i) => {
            const n = expected + i + 1;
            return { eventType: 'Tick', payload: { w, n }, tags: n % 2 === 1 ? [everything, odd] : [everything] };
          });
          ({ lastSequenceNr: expected } = await journal.append(pid, events, { expectedSequenceNr: expected, writerId: `w${w}` }));
        }
      }),
    );

    const got = await readingAll;
    expect(got).toHaveLength(total);
    expectExactlyOnceInOrder(got, expectedAll);
    for (const e of got) expect(e.payload).toEqual({ w: pids.indexOf(e.persistenceId), n: e.sequenceNr });
    expectExactlyOnceInOrder(await readingOdd, expectedOdd);

    // A reader resuming from any delivered offset gets exactly what came after it.
    for (const cut of [1, Math.floor(total / 2), total - 1]) {
      const at = got[cut - 1];
      if (at === undefined) throw new Error('no event at the cut');
      const controller = new AbortController();
      const rest = await take(queries.eventsByTag(everything, at.offset, { live: true, signal: controller.signal }), total - cut, controller);
      expect(rest.map((e) => `${e.persistenceId}:${e.sequenceNr}`).sort()).toEqual(got.slice(cut).map((e) => `${e.persistenceId}:${e.sequenceNr}`).sort());
      // Per id, the resumed stream goes on right after the last event delivered before the cut.
      const resumedOrder = new Map<string, number>();
      for (const e of got.slice(0, cut)) resumedOrder.set(e.persistenceId, e.sequenceNr);
      for (const e of rest) {
        expect(e.sequenceNr).toBe((resumedOrder.get(e.persistenceId) ?? 0) + 1);
        resumedOrder.set(e.persistenceId, e.sequenceNr);
      }
    }
  });
});

/** Every event of `stream` that arrives before `signal` aborts it (a deadline) or `count` arrived. */
async function collect(stream: AsyncIterable<EventEnvelope>, count: number): Promise<EventEnvelope[]> {
  const got: EventEnvelope[] = [];
  for await (const e of stream) {
    got.push(e);
    if (got.length >= count) break;
  }
  return got;
}

/** A live stream's events until `count` arrived; with `count` 0, whatever arrives within 3 s (expected: nothing). */
function collectLive(stream: (signal: AbortSignal) => AsyncIterable<EventEnvelope>, count: number, timeoutMs: number): Promise<EventEnvelope[]> {
  return collect(stream(AbortSignal.timeout(count === 0 ? 3000 : timeoutMs)), count === 0 ? Number.POSITIVE_INFINITY : count);
}

const key = (e: EventEnvelope): string => `${e.persistenceId}:${e.sequenceNr}`;

describe('Cassandra eventsByTag offsets with 10 000 ids', () => {
  let fx: CassandraFixture;

  beforeAll(async () => {
    fx = await cassandraFixture(import.meta.url, { eventualConsistencyDelayMs: 300, pollIntervalMs: 100 });
  });
  afterAll(async () => {
    await fx.cleanup();
  });

  it('keeps every offset within maxOffsetSeen ids, and resumes from any of them exactly', { timeout: 180_000 }, async () => {
    const ids = 10_000;
    const tag = uniqueName('many');
    const writer = new TagViewWriter(new CassandraSession(fx.client, resolveSettings({ keyspace: fx.keyspace, eventualConsistencyDelayMs: 5000 })));
    // One tag row per id, written directly (the journal's per-id lease round would dominate the test's time).
    for (let from = 0; from < ids; from += 1000) {
      const rows: PendingTagRow[] = Array.from({ length: 1000 }, (_, i) => ({
        tag,
        persistenceId: `id-${from + i}`,
        sequenceNr: 1,
        tagPidSequenceNr: 1,
        eventTimestamp: Date.now(),
        writerId: 'w',
        serializerId: 'json',
        eventManifest: 'Tick@v1',
        event: Buffer.from(JSON.stringify({ n: from + i })),
        tags: [tag],
      }));
      await writer.write(rows);
    }
    const got: EventEnvelope[] = [];
    for await (const e of fx.plugin.queries.eventsByTag(tag, NoOffset)) got.push(e);
    expect(new Set(got.map(key)).size).toBe(ids);
    expect(got).toHaveLength(ids);

    let largest = 0;
    for (let i = 0; i < got.length; i += 97) {
      const offset = got[i]?.offset;
      if (offset?.kind !== 'timestamp') throw new Error('expected timestamp offsets');
      expect(Object.keys(offset.seen).length).toBeLessThanOrEqual(1000);
      largest = Math.max(largest, JSON.stringify(offset).length);
    }
    // Copying every id into each offset made the last one hold 10 000 ids (about 150 KB).
    expect(largest).toBeLessThan(1000 * 20 + 100);

    for (const cut of [1, 5000, ids - 1]) {
      const at = got[cut - 1];
      if (at === undefined) throw new Error('no event at the cut');
      const stored = JSON.parse(JSON.stringify(at.offset)) as typeof at.offset;
      const rest: EventEnvelope[] = [];
      for await (const e of fx.plugin.queries.eventsByTag(tag, stored)) rest.push(e);
      expect(rest.map(key).sort()).toEqual(got.slice(cut).map(key).sort());
    }
  });
});

describe('Cassandra eventsByTag under writer clock skew', () => {
  let fx: CassandraFixture;
  const writerSkews = { behind: -3000, ahead: 2000, onTime: 0 } as const;

  beforeAll(async () => {
    fx = await cassandraFixture(import.meta.url, { eventualConsistencyDelayMs: 300, pollIntervalMs: 100, maxClockSkewMs: 4000 });
  });
  afterAll(async () => {
    await fx.cleanup();
  });

  it('delivers late rows of writers whose clocks are behind (including each id last event), and rows of writers ahead, exactly once', { timeout: 120_000 }, async () => {
    const tag = uniqueName('skew');
    const writers = await Promise.all(
      Object.entries(writerSkews).map(async ([name, skew]) => ({
        name,
        plugin: await createCassandraPersistence({ client: fx.client, keyspace: fx.keyspace, now: () => Date.now() + skew }),
      })),
    );
    const pids = writers.flatMap((w) => [1, 2, 3].map((i) => ({ writer: w, pid: uniqueName(`${w.name}${i}`) })));
    const total = pids.length * 4;
    // The reader runs before anything is written: every row of the writer behind lands behind its forward read.
    const live = collect(fx.plugin.queries.eventsByTag(tag, NoOffset, { live: true, signal: AbortSignal.timeout(60_000) }), total);
    await new Promise((resolve) => setTimeout(resolve, 500));
    try {
      for (let n = 1; n <= 4; n++) {
        await Promise.all(
          pids.map(({ writer, pid }) =>
            writer.plugin.journal.append(pid, [{ eventType: 'Tick', payload: { n }, tags: [tag] }], { expectedSequenceNr: n - 1, writerId: writer.name }),
          ),
        );
      }
      const got = await live;
      expect(got.map(key).sort()).toEqual(pids.flatMap(({ pid }) => [1, 2, 3, 4].map((n) => `${pid}:${n}`)).sort());
      for (const { pid } of pids) expect(got.filter((e) => e.persistenceId === pid).map((e) => e.sequenceNr)).toEqual([1, 2, 3, 4]);

      // A current query now has every row stored before it started, except those a writer ahead stamped later;
      // a live stream resumed from its last offset delivers exactly those, so nothing is missed or doubled.
      const current: EventEnvelope[] = [];
      for await (const e of fx.plugin.queries.eventsByTag(tag, NoOffset)) current.push(e);
      const onTime = new Set(pids.filter(({ writer }) => writer.name !== 'ahead').flatMap(({ pid }) => [1, 2, 3, 4].map((n) => `${pid}:${n}`)));
      expect(current.map(key).filter((k) => onTime.has(k)).sort()).toEqual([...onTime].sort());
      const last = current[current.length - 1];
      if (last === undefined) throw new Error('the current query delivered nothing');
      const rest = await collectLive((signal) => fx.plugin.queries.eventsByTag(tag, last.offset, { live: true, signal }), total - current.length, 30_000);
      expect([...current, ...rest].map(key).sort()).toEqual(got.map(key).sort());
    } finally {
      await Promise.all(writers.map((w) => w.plugin.close()));
    }
  });

  it('delivers the late row of an id last event to a stream resumed from an offset taken before it landed', { timeout: 60_000 }, async () => {
    const tag = uniqueName('resume');
    const behind = await createCassandraPersistence({ client: fx.client, keyspace: fx.keyspace, now: () => Date.now() - 3000 });
    try {
      const first = uniqueName('first');
      await fx.plugin.journal.append(first, [{ eventType: 'Tick', payload: {}, tags: [tag] }], { expectedSequenceNr: 0, writerId: 'r' });
      const [head] = await collect(fx.plugin.queries.eventsByTag(tag, NoOffset, { live: true, signal: AbortSignal.timeout(20_000) }), 1);
      if (head === undefined) throw new Error('no first event');
      // Written after the offset was taken, stamped 3 s before it: only the re-read of the window finds it.
      const late = uniqueName('late');
      await behind.journal.append(late, [{ eventType: 'Tick', payload: {}, tags: [tag] }], { expectedSequenceNr: 0, writerId: 'b' });
      const rest = await collect(fx.plugin.queries.eventsByTag(tag, JSON.parse(JSON.stringify(head.offset)) as typeof head.offset, { live: true, signal: AbortSignal.timeout(20_000) }), 1);
      expect(rest.map(key)).toEqual([`${late}:1`]);
    } finally {
      await behind.close();
    }
  });
});

describe('Cassandra eventsByTag resumed next to a hole', () => {
  let fx: CassandraFixture;

  beforeAll(async () => {
    // Conditional mode: several plugin instances (with different clocks) may write one id.
    fx = await cassandraFixture(import.meta.url, { singleWriter: 'conditional', eventualConsistencyDelayMs: 300, pollIntervalMs: 100, maxClockSkewMs: 500 });
  });
  afterAll(async () => {
    await fx.cleanup();
  });

  it('fills a lost tag row of an id that the offset does not name, right after the resume point', { timeout: 60_000 }, async () => {
    const tag = uniqueName('hole');
    const p = uniqueName('p');
    const q = uniqueName('q');
    const earlier = await createCassandraPersistence({ client: fx.client, keyspace: fx.keyspace, singleWriter: 'conditional', now: () => Date.now() - 2000 });
    try {
      const tick = (n: number): { eventType: string; payload: { n: number }; tags: string[] } => ({ eventType: 'Tick', payload: { n }, tags: [tag] });
      // p's rows 2 s before q's: the offset after q's event no longer names p.
      await earlier.journal.append(p, [tick(1), tick(2)], { expectedSequenceNr: 0, writerId: 'e' });
      await fx.plugin.journal.append(q, [tick(1)], { expectedSequenceNr: 0, writerId: 'w' });
      const first: EventEnvelope[] = [];
      for await (const e of fx.plugin.queries.eventsByTag(tag, NoOffset)) first.push(e);
      expect(first.map(key)).toEqual([`${p}:1`, `${p}:2`, `${q}:1`]);
      const offset = JSON.parse(JSON.stringify(first[2]?.offset)) as EventEnvelope['offset'];
      expect(offset.kind === 'timestamp' ? Object.keys(offset.seen) : []).toEqual([q]);

      // p:3's tag row is lost (as after a failed tag write not yet repaired); p:4's is stored.
      await fx.plugin.journal.append(p, [tick(3)], { expectedSequenceNr: 2, writerId: 'w' });
      const lost = await fx.client.execute(
        `SELECT timebucket, timestamp FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND persistence_id = ? AND sequence_nr = 3 ALLOW FILTERING`,
        [tag, p],
        { prepare: true },
      );
      for (const row of lost.rows) {
        await fx.client.execute(
          `DELETE FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND timebucket = ? AND timestamp = ? AND persistence_id = ? AND sequence_nr = 3`,
          [tag, row['timebucket'], row['timestamp'], p],
          { prepare: true },
        );
      }
      expect(lost.rows.length).toBeGreaterThan(0);
      await fx.plugin.journal.append(p, [tick(4)], { expectedSequenceNr: 3, writerId: 'w' });

      const rest: EventEnvelope[] = [];
      for await (const e of fx.plugin.queries.eventsByTag(tag, offset)) rest.push(e);
      expect(rest.map(key)).toEqual([`${p}:3`, `${p}:4`]);
    } finally {
      await earlier.close();
    }
  });
});
