import type { types } from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isConcurrencyConflict, isDataflowError, isWriterLeaseHeld, NoOffset, type AppendResult, type EventEnvelope, type PersistedEvent } from '@dataflow/core';
import { uniqueName } from '@dataflow/test-env';
import { createCassandraPersistence, type CassandraPersistence } from './cassandra-persistence.js';
import type { CassandraPersistenceEvent, CassandraPersistenceSettings } from './cassandra-settings.js';
import { cassandraFixture, type CassandraFixture } from './cassandra-fixture.test.js';

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const evt = (n: number, tags: string[] = []) => ({ eventType: 'N', payload: { n }, tags });

describe.each(['lease', 'conditional'] as const)('Cassandra journal (singleWriter: %s)', (singleWriter) => {
  let fx: CassandraFixture;
  const peer = (settings: Partial<CassandraPersistenceSettings> = {}): Promise<CassandraPersistence> =>
    createCassandraPersistence({ client: fx.client, keyspace: fx.keyspace, targetPartitionSize: 5, maxBatchSize: 5, singleWriter, ...settings });

  beforeAll(async () => {
    // Small partitions and batches, so that appends cross partition boundaries.
    fx = await cassandraFixture(import.meta.url, { targetPartitionSize: 5, maxBatchSize: 5, gapTimeoutMs: 600, singleWriter });
  });
  afterAll(async () => {
    await fx.cleanup();
  });

  it('keeps each append within one partition and replays across partitions', async () => {
    const { journal } = fx.plugin;
    const pid = uniqueName('parts');
    let expected = 0;
    for (const size of [3, 1, 3, 2, 4, 1]) {
      const events = Array.from({ length: size }, (_, i) => evt(expected + i + 1));
      ({ lastSequenceNr: expected } = await journal.append(pid, events, { expectedSequenceNr: expected, writerId: 'w' }));
    }
    expect(expected).toBe(14);
    expect((await all(journal.replay(pid, 1))).map((e) => e.sequenceNr)).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    expect((await all(journal.replay(pid, 4, 11))).map((e) => (e.payload as { n: number }).n)).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    expect(await journal.highestSequenceNr(pid)).toBe(14);

    // The append 5..7 crossed from partition 0 into 1, so it lives wholly in partition 1.
    const placed = await fx.client.execute(`SELECT partition_nr, sequence_nr FROM ${fx.keyspace}.messages WHERE persistence_id = ? AND partition_nr IN (0, 1, 2)`, [pid], { prepare: true });
    const partitionOf = new Map(placed.rows.filter((r) => r['sequence_nr'] !== null).map((r) => [Number(r['sequence_nr']), Number(r['partition_nr'])]));
    expect([1, 2, 3, 4].map((n) => partitionOf.get(n))).toEqual([0, 0, 0, 0]);
    expect([5, 6, 7, 8, 9].map((n) => partitionOf.get(n))).toEqual([1, 1, 1, 1, 1]);
    expect([10, 11, 12, 13, 14].map((n) => partitionOf.get(n))).toEqual([2, 2, 2, 2, 2]);

    await journal.deleteTo(pid, 9);
    expect((await all(journal.replay(pid, 1))).map((e) => e.sequenceNr)).toEqual([10, 11, 12, 13, 14]);
    expect(await journal.highestSequenceNr(pid)).toBe(14);
    const next = await journal.append(pid, [evt(15)], { expectedSequenceNr: 14, writerId: 'w' });
    expect(next.lastSequenceNr).toBe(15);
  });

  it('coalesces appends queued for one persistence id without losing their order', async () => {
    const { journal } = fx.plugin;
    const pid = uniqueName('queued');
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => journal.append(pid, [evt(i + 1)], { expectedSequenceNr: i, writerId: 'w' })));
    expect(results.map((r) => r.lastSequenceNr)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect((await all(journal.replay(pid, 1))).map((e) => (e.payload as { n: number }).n)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('lets exactly one of two writers in different processes win each sequence number; history never forks', async () => {
    // Two plugins on the same keyspace stand for two nodes that both believe they own the id.
    const other = await peer();
    const pid = uniqueName('two-writers');
    const writers = [
      { id: 'node-a', journal: fx.plugin.journal },
      { id: 'node-b', journal: other.journal },
    ];
    const won: Array<{ writer: string; round: number }> = [];
    for (let round = 0; round < 15; round++) {
      const heads = await Promise.all(writers.map((w) => w.journal.highestSequenceNr(pid)));
      const outcomes = await Promise.allSettled(
        writers.map((w, i) =>
          w.journal.append(pid, [{ eventType: 'W', payload: { writer: w.id, round } }, { eventType: 'W', payload: { writer: w.id, round } }], {
            expectedSequenceNr: heads[i] ?? 0,
            writerId: w.id,
          }),
        ),
      );
      const winners = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const o of outcomes) {
        if (o.status === 'rejected') {
          // Conditional mode: the loser's view is stale (final). Lease mode: the other process holds the lease (wait and retry).
          if (singleWriter === 'conditional') expect(isConcurrencyConflict(o.reason)).toBe(true);
          else expect(isConcurrencyConflict(o.reason) || isWriterLeaseHeld(o.reason)).toBe(true);
          expect((o.reason as { retriable: boolean }).retriable).toBe(isWriterLeaseHeld(o.reason));
        }
      }
      const winner = writers[winners[0] ?? 0];
      won.push({ writer: winner?.id ?? '', round });
    }
    const history: PersistedEvent[] = await all(fx.plugin.journal.replay(pid, 1));
    expect(history.map((e) => e.sequenceNr)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(history.map((e) => e.payload)).toEqual(won.flatMap(({ writer, round }) => [{ writer, round }, { writer, round }]));
    for (const e of history) expect(e.writerId).toBe((e.payload as { writer: string }).writer);
    // Both plugins read the same single history.
    expect((await all(other.journal.replay(pid, 1))).map((e) => e.payload)).toEqual(history.map((e) => e.payload));
    await other.close();
  });

  // Only this mode has this behaviour.
  if (singleWriter === 'conditional') {
    it('refuses a writer whose view is stale even when its own cache agrees with it', async () => {
      const other = await peer();
      const pid = uniqueName('stale');
      await fx.plugin.journal.append(pid, [evt(1)], { expectedSequenceNr: 0, writerId: 'a' });
      await other.journal.append(pid, [evt(2)], { expectedSequenceNr: 1, writerId: 'b' });
      // Writer a still believes 1 is the highest.
      let caught: unknown;
      await fx.plugin.journal.append(pid, [evt(99)], { expectedSequenceNr: 1, writerId: 'a' }).catch((error: unknown) => (caught = error));
      expect(isConcurrencyConflict(caught)).toBe(true);
      expect((caught as { actualSequenceNr: number }).actualSequenceNr).toBe(2);
      // Crossing into a new partition from a stale view is refused too.
      await other.journal.append(pid, [evt(3), evt(4), evt(5)], { expectedSequenceNr: 2, writerId: 'b' });
      caught = undefined;
      await fx.plugin.journal.append(pid, [evt(3), evt(4), evt(5), evt(6)], { expectedSequenceNr: 2, writerId: 'a' }).catch((error: unknown) => (caught = error));
      expect(isConcurrencyConflict(caught)).toBe(true);
      expect((await all(fx.plugin.journal.replay(pid, 1))).map((e) => e.writerId)).toEqual(['a', 'b', 'b', 'b', 'b']);
      await other.close();
    });
  }

  // Only this mode has this behaviour.
  if (singleWriter === 'conditional') {
    it('goes on writing after a writer died between claiming a partition change and writing the new partition', async () => {
      const pid = uniqueName('half-move');
      await fx.plugin.journal.append(pid, [evt(1), evt(2), evt(3), evt(4)], { expectedSequenceNr: 0, writerId: 'a' });
      // Writer a claimed 5..7 on partition 0 (step one of a move to partition 1), then died.
      await fx.client.execute(`UPDATE ${fx.keyspace}.messages SET highest_sequence_nr = 7 WHERE persistence_id = ? AND partition_nr = 0 IF highest_sequence_nr = 4`, [pid], { prepare: true });
      const next = await peer();
      // The claim is fenced off: the claimed numbers are not a hole.
      expect(await next.journal.highestSequenceNr(pid)).toBe(4);
      await next.journal.append(pid, [evt(5)], { expectedSequenceNr: 4, writerId: 'b' });
      await next.journal.append(pid, [evt(6)], { expectedSequenceNr: 5, writerId: 'b' });
      expect((await all(next.journal.replay(pid, 1))).map((e) => e.sequenceNr)).toEqual([1, 2, 3, 4, 5, 6]);
      await next.close();
    });
  }

  if (singleWriter === 'conditional') {
    it('re-stamps tag rows that landed late, gives up loudly, and repairs them before the next append', async () => {
      // A clock that jumps a second at every reading while `slow` is set makes every tag write look late.
      let offsetMs = 0;
      let slow = false;
      const now = (): number => {
        if (slow) offsetMs += 1000;
        return Date.now() + offsetMs;
      };
      const events: CassandraPersistenceEvent[] = [];
      const store = await peer({ now, onEvent: (e) => events.push(e), eventualConsistencyDelayMs: 400, pollIntervalMs: 100 });
      const pid = uniqueName('late');
      const tag = uniqueName('t');
      await store.journal.append(pid, [evt(1, [tag])], { expectedSequenceNr: 0, writerId: 'w' });
      slow = true;
      // The events are stored even though their tag rows could not be written in time.
      await store.journal.append(pid, [evt(2, [tag]), evt(3, [tag])], { expectedSequenceNr: 1, writerId: 'w' });
      slow = false;
      expect(events.filter((e) => e.type === 'tag-write.restamped').length).toBeGreaterThanOrEqual(4);
      expect(events.filter((e) => e.type === 'tag-write.failed').map((e) => (e as { persistenceId: string }).persistenceId)).toEqual([pid]);
      await store.journal.append(pid, [evt(4, [tag])], { expectedSequenceNr: 3, writerId: 'w' });
      expect(events).toContainEqual({ type: 'tag-views.repaired', persistenceId: pid, fromSequenceNr: 2, toSequenceNr: 3 });
      // Every stamp that did land is a duplicate the reader drops.
      expect((await all(store.queries.eventsByTag(tag, NoOffset))).map((e) => e.sequenceNr)).toEqual([1, 2, 3, 4]);
      await store.close();
    });
  }

  if (singleWriter === 'lease') {
    it('refuses a second process while the lease is held, and lets it in once the holder closes or goes quiet', async () => {
      const pid = uniqueName('lease');
      const a = await peer({ leaseTtlMs: 3000, leaseSafetyMarginMs: 1000 });
      const b = await peer({ leaseTtlMs: 3000, leaseSafetyMarginMs: 1000 });
      await a.journal.append(pid, [evt(1)], { expectedSequenceNr: 0, writerId: 'a' });
      const refused = await b.journal.append(pid, [evt(2)], { expectedSequenceNr: 1, writerId: 'b' }).catch((error: unknown) => error);
      // Waiting for a lease is retriable (issue 10, item 4): the lease lapses at the latest after its TTL.
      expect(isWriterLeaseHeld(refused)).toBe(true);
      expect(refused).toMatchObject({ retriable: true });
      expect((refused as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
      expect((refused as { retryAfterMs: number }).retryAfterMs).toBeLessThanOrEqual(4000);
      await a.close();
      // a released its lease on close: b recovers and writes at once.
      expect(await b.journal.highestSequenceNr(pid)).toBe(1);
      await b.journal.append(pid, [evt(2)], { expectedSequenceNr: 1, writerId: 'b' });

      // c waits until b's lease lapses (b writes nothing more), then takes over; b is refused from then on.
      const c = await peer({ leaseTtlMs: 3000, leaseSafetyMarginMs: 1000 });
      let taken = false;
      for (let attempt = 0; attempt < 40 && !taken; attempt++) {
        const head = await c.journal.highestSequenceNr(pid);
        taken = await c.journal.append(pid, [evt(head + 1)], { expectedSequenceNr: head, writerId: 'c' }).then(
          () => true,
          (error: unknown) => {
            if (!isWriterLeaseHeld(error)) throw error;
            return new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 250));
          },
        );
      }
      expect(taken).toBe(true);
      const late = await b.journal.append(pid, [evt(99)], { expectedSequenceNr: 2, writerId: 'b' }).catch((error: unknown) => error);
      expect(isWriterLeaseHeld(late)).toBe(true);
      expect((await all(c.journal.replay(pid, 1))).map((e) => e.writerId)).toEqual(['a', 'b', 'c']);
      await Promise.all([b.close(), c.close()]);
    });
  }

  it('fills a tag row that went missing from messages, so eventsByTag loses nothing', async () => {
    const { journal, queries } = fx.plugin;
    const pid = uniqueName('lost-row');
    const tag = uniqueName('t');
    for (let i = 0; i < 3; i++) await journal.append(pid, [evt(i + 1, [tag])], { expectedSequenceNr: i, writerId: 'w' });
    const bucket = await fx.client.execute(`SELECT timebucket FROM ${fx.keyspace}.tag_buckets WHERE tag_name = ?`, [tag], { prepare: true });
    const timebucket = bucket.first()['timebucket'] as types.Long;
    const rows = await fx.client.execute(`SELECT timestamp, sequence_nr FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND timebucket = ?`, [tag, timebucket], { prepare: true });
    const second = rows.rows.find((r) => Number(r['sequence_nr']) === 2);
    await fx.client.execute(
      `DELETE FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND timebucket = ? AND timestamp = ? AND persistence_id = ? AND sequence_nr = ?`,
      [tag, timebucket, second?.['timestamp'], pid, 2],
      { prepare: true },
    );
    const got: EventEnvelope[] = await all(queries.eventsByTag(tag, NoOffset));
    expect(got.map((e) => [e.sequenceNr, e.payload])).toEqual([[1, { n: 1 }], [2, { n: 2 }], [3, { n: 3 }]]);
  });

  it('fails loudly with ReplayGapError when a tagged event is missing for good', async () => {
    const { journal, queries } = fx.plugin;
    const pid = uniqueName('gap');
    const tag = uniqueName('t');
    await journal.append(pid, [evt(1, [tag])], { expectedSequenceNr: 0, writerId: 'w' });
    await journal.append(pid, [evt(2, [tag])], { expectedSequenceNr: 1, writerId: 'w' });
    // The tag row of event 2 claims tag sequence number 3: the event with tag sequence number 2 exists nowhere.
    const bucket = await fx.client.execute(`SELECT timebucket FROM ${fx.keyspace}.tag_buckets WHERE tag_name = ?`, [tag], { prepare: true });
    const timebucket = bucket.first()['timebucket'] as types.Long;
    const rows = await fx.client.execute(`SELECT * FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND timebucket = ?`, [tag, timebucket], { prepare: true });
    const second = rows.rows.find((r) => Number(r['sequence_nr']) === 2);
    await fx.client.execute(`UPDATE ${fx.keyspace}.tag_views SET tag_pid_sequence_nr = 3 WHERE tag_name = ? AND timebucket = ? AND timestamp = ? AND persistence_id = ? AND sequence_nr = ?`,
      [tag, timebucket, second?.['timestamp'], pid, 2], { prepare: true });
    let caught: unknown;
    const delivered: number[] = [];
    try {
      for await (const e of queries.eventsByTag(tag, NoOffset)) delivered.push(e.sequenceNr);
    } catch (error) {
      caught = error;
    }
    expect(delivered).toEqual([1]);
    expect(isDataflowError(caught, 'journal/replay-gap')).toBe(true);
    expect((caught as { persistenceId: string }).persistenceId).toBe(pid);
    expect((caught as { foundSequenceNr: number }).foundSequenceNr).toBe(2);
  });

  it('rewrites tag rows a crashed writer may not have written when the next incarnation recovers', async () => {
    const pid = uniqueName('repair');
    const tag = uniqueName('t');
    await fx.plugin.journal.append(pid, [evt(1, [tag])], { expectedSequenceNr: 0, writerId: 'w' });
    await fx.plugin.journal.append(pid, [evt(2, [tag]), evt(3, [tag])], { expectedSequenceNr: 1, writerId: 'w' });
    // As if the process died after storing events 2 and 3 but before their tag rows.
    const bucket = await fx.client.execute(`SELECT timebucket FROM ${fx.keyspace}.tag_buckets WHERE tag_name = ?`, [tag], { prepare: true });
    const timebucket = bucket.first()['timebucket'] as types.Long;
    await fx.client.execute(`DELETE FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND timebucket = ?`, [tag, timebucket], { prepare: true });
    const rows = await fx.client.execute(`SELECT timestamp, sequence_nr FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND timebucket = ?`, [tag, timebucket], { prepare: true });
    expect(rows.rows).toHaveLength(0);

    const events: CassandraPersistenceEvent[] = [];
    const next = await peer({ onEvent: (e) => events.push(e) });
    expect(await next.journal.highestSequenceNr(pid)).toBe(3);
    expect(events).toContainEqual({ type: 'tag-views.repaired', persistenceId: pid, fromSequenceNr: 2, toSequenceNr: 3 });
    const got = await all(fx.plugin.queries.eventsByTag(tag, NoOffset));
    // Event 1's row is gone for good, and was written before the last recorded tag progress: it comes from messages
    // once event 2 shows the hole.
    expect(got.map((e) => e.sequenceNr)).toEqual([1, 2, 3]);
    await next.close();
  });

  it('stores snapshots newest first and selects them by criteria', async () => {
    const { snapshots } = fx.plugin;
    const pid = uniqueName('snap');
    for (const [sequenceNr, timestamp] of [[10, 1000], [20, 2000], [30, 3000]] as const) {
      await snapshots.save({ persistenceId: pid, sequenceNr, timestamp }, { upTo: sequenceNr }, 2);
    }
    expect((await snapshots.loadLatest(pid))?.metadata.sequenceNr).toBe(30);
    expect((await snapshots.loadLatest(pid, { maxSequenceNr: 25 }))?.state).toEqual({ upTo: 20 });
    expect((await snapshots.loadLatest(pid, { maxTimestamp: 1500 }))?.schemaVersion).toBe(2);
    await snapshots.delete(pid, { maxSequenceNr: 20 });
    expect(await snapshots.loadLatest(pid, { maxSequenceNr: 25 })).toBeUndefined();
    expect((await snapshots.loadLatest(pid))?.metadata).toEqual({ persistenceId: pid, sequenceNr: 30, timestamp: 3000 });
  });

  it('keeps an append atomic and unseen when serialization refuses one event', async () => {
    const pid = uniqueName('atomic');
    const append: Promise<AppendResult> = fx.plugin.journal.append(pid, [evt(1), { eventType: 'Bad', payload: { f: new Map() } }], { expectedSequenceNr: 0, writerId: 'w' });
    await expect(append).rejects.toMatchObject({ tag: 'serialization/failed' });
    expect(await fx.plugin.journal.highestSequenceNr(pid)).toBe(0);
  });
});
