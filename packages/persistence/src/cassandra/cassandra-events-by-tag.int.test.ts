import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoOffset, type EventEnvelope } from '@dataflow/core';
import { uniqueName } from '@dataflow/test-env';
import { cassandraFixture, type CassandraFixture } from './cassandra-fixture.test.js';

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
