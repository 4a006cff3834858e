import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDataflowError, NoOffset, SLICE_COUNT, sliceForPersistenceId, sliceRanges, type EventEnvelope } from '@dataflow/core';
import { uniqueName } from '@dataflow/test-env';
import { cassandraFixture, type CassandraFixture } from './cassandra-fixture.test.js';
import { createCassandraPersistence } from './cassandra-persistence.js';
import type { CassandraPersistenceEvent } from './cassandra-settings.js';
import { SLICE_GROUP_SIZE, sliceTagOf } from './slice-tags.js';

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const key = (e: EventEnvelope): string => `${e.persistenceId}:${e.sequenceNr}`;
const tick = (n: number, tags: string[] = []): { eventType: string; payload: { n: number }; tags: string[] } => ({ eventType: 'Tick', payload: { n }, tags });
/** A fresh entity type (no `-`), so tests never see each other's events. */
const entityType = (): string => `e${randomUUID().replaceAll('-', '').slice(0, 12)}`;

describe.each(['lease', 'conditional'] as const)('Cassandra eventsBySlices (singleWriter: %s)', (singleWriter) => {
  let fx: CassandraFixture;

  beforeAll(async () => {
    fx = await cassandraFixture(import.meta.url, { singleWriter });
  });
  afterAll(async () => {
    await fx.cleanup();
  });

  it('refuses a user tag containing ":" (reserved for slice tags) and stores nothing', async () => {
    const pid = uniqueName('colon');
    const append = fx.plugin.journal.append(pid, [tick(1, ['ok']), tick(2, ['slices:x:0'])], { expectedSequenceNr: 0, writerId: 'w' });
    const error: unknown = await append.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isDataflowError(error, 'journal/write-failed')).toBe(true);
    expect(error).toMatchObject({ retriable: false, persistenceId: pid });
    expect(String(error)).toMatch(/slices:x:0.*':'/);
    expect(await fx.plugin.journal.highestSequenceNr(pid)).toBe(0);
  });

  it('delivers events with the tags they were appended with: the slice tag stays the store’s own', async () => {
    const type = entityType();
    const pid = `${type}-a`;
    const tag = uniqueName('user');
    await fx.plugin.journal.append(pid, [tick(1, [tag]), tick(2)], { expectedSequenceNr: 0, writerId: 'w' });
    const slice = sliceForPersistenceId(pid);
    const sliced = await all(fx.plugin.queries.eventsBySlices(type, slice, slice));
    expect(sliced.map((e) => e.tags)).toEqual([[tag], []]);
    expect((await all(fx.plugin.queries.eventsByTag(tag))).map((e) => e.tags)).toEqual([[tag]]);
    expect((await all(fx.plugin.journal.replay(pid, 1))).map((e) => e.tags)).toEqual([[tag], []]);
    // The slice rows sit under the implicit tag of the id's group of 64 slices.
    expect(sliceTagOf(pid)).toBe(`slices:${type}:${Math.floor(slice / SLICE_GROUP_SIZE)}`);
    const rows = await fx.client.execute(`SELECT sequence_nr FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND persistence_id = ? ALLOW FILTERING`, [sliceTagOf(pid), pid], {
      prepare: true,
    });
    expect(rows.rows.map((r) => Number(r['sequence_nr'])).sort()).toEqual([1, 2]);
  });

  it('splits an entity type over disjoint ranges exactly, within and across groups, resumable from any offset of the merged stream', { timeout: 60_000 }, async () => {
    const type = entityType();
    const tag = uniqueName('all');
    const pids = Array.from({ length: 60 }, (_, i) => `${type}-${i}`);
    await Promise.all(
      pids.map(async (pid) => {
        for (let n = 0; n < 3; n++) await fx.plugin.journal.append(pid, [tick(n, [tag])], { expectedSequenceNr: n, writerId: 'w' });
      }),
    );
    const byTag = await all(fx.plugin.queries.eventsByTag(tag));
    expect(byTag).toHaveLength(180);
    const whole = await all(fx.plugin.queries.eventsBySlices(type, 0, SLICE_COUNT - 1));
    expect(new Set(whole.map(key))).toEqual(new Set(byTag.map(key)));
    // Merged across the 16 group tags, each id still in sequence order.
    for (const pid of pids) expect(whole.filter((e) => e.persistenceId === pid).map((e) => e.sequenceNr)).toEqual([1, 2, 3]);
    // Ranges of whole groups, ranges inside a group, ranges across group borders: together, each event once.
    for (const ranges of [sliceRanges(4), sliceRanges(32), [{ min: 0, max: 100 }, { min: 101, max: 700 }, { min: 701, max: 1023 }]]) {
      const parts = await Promise.all(ranges.map((r) => all(fx.plugin.queries.eventsBySlices(type, r.min, r.max))));
      const keys = parts.flat().map(key);
      expect(keys).toHaveLength(180);
      expect(new Set(keys)).toEqual(new Set(byTag.map(key)));
      parts.forEach((part, i) => {
        for (const e of part) expect(sliceForPersistenceId(e.persistenceId)).toBeGreaterThanOrEqual(ranges[i]?.min ?? -1);
      });
    }
    // The merged stream's offsets stay bounded timestamp offsets and resume exactly after themselves.
    for (const cut of [1, 50, 120, 179]) {
      const offset = JSON.parse(JSON.stringify(whole[cut - 1]?.offset)) as EventEnvelope['offset'];
      expect(offset.kind).toBe('timestamp');
      const rest = await all(fx.plugin.queries.eventsBySlices(type, 0, SLICE_COUNT - 1, offset));
      expect(rest.map(key)).toEqual(whole.slice(cut).map(key));
    }
  });

  it('fills a lost slice row from messages, as a lost tag row', async () => {
    const type = entityType();
    const pid = `${type}-hole`;
    await fx.plugin.journal.append(pid, [tick(1), tick(2)], { expectedSequenceNr: 0, writerId: 'w' });
    await fx.plugin.journal.append(pid, [tick(3)], { expectedSequenceNr: 2, writerId: 'w' });
    const lost = await fx.client.execute(
      `SELECT timebucket, timestamp FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND persistence_id = ? AND sequence_nr = 2 ALLOW FILTERING`,
      [sliceTagOf(pid), pid],
      { prepare: true },
    );
    expect(lost.rows).toHaveLength(1);
    for (const row of lost.rows) {
      await fx.client.execute(
        `DELETE FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND timebucket = ? AND timestamp = ? AND persistence_id = ? AND sequence_nr = 2`,
        [sliceTagOf(pid), row['timebucket'], row['timestamp'], pid],
        { prepare: true },
      );
    }
    // A range over several groups: the gap is filled with the tag sequence numbers of the id's own group tag.
    expect((await all(fx.plugin.queries.eventsBySlices(type, 0, SLICE_COUNT - 1, NoOffset))).map(key)).toEqual([`${pid}:1`, `${pid}:2`, `${pid}:3`]);
  });

  it('writes the slice rows again when a crashed writer left them out, as user tag rows', async () => {
    const type = entityType();
    const pid = `${type}-crash`;
    const crashed = await createCassandraPersistence({ client: fx.client, keyspace: fx.keyspace, singleWriter });
    await crashed.journal.append(pid, [tick(1)], { expectedSequenceNr: 0, writerId: 'w' });
    await crashed.journal.append(pid, [tick(2), tick(3)], { expectedSequenceNr: 1, writerId: 'w' });
    await crashed.close();
    // As if the process died after storing the events but before any tag row: rows gone, tagged_to not moved.
    const rows = await fx.client.execute(`SELECT timebucket, timestamp, sequence_nr FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND persistence_id = ? ALLOW FILTERING`, [sliceTagOf(pid), pid], {
      prepare: true,
    });
    for (const row of rows.rows) {
      await fx.client.execute(
        `DELETE FROM ${fx.keyspace}.tag_views WHERE tag_name = ? AND timebucket = ? AND timestamp = ? AND persistence_id = ? AND sequence_nr = ?`,
        [sliceTagOf(pid), row['timebucket'], row['timestamp'], pid, row['sequence_nr']],
        { prepare: true },
      );
    }
    await fx.client.execute(`UPDATE ${fx.keyspace}.messages SET tagged_to = 0 WHERE persistence_id = ? AND partition_nr = 0`, [pid], { prepare: true });

    const events: CassandraPersistenceEvent[] = [];
    const next = await createCassandraPersistence({ client: fx.client, keyspace: fx.keyspace, singleWriter, onEvent: (e) => events.push(e) });
    try {
      expect(await next.journal.highestSequenceNr(pid)).toBe(3);
      expect(events).toContainEqual({ type: 'tag-views.repaired', persistenceId: pid, fromSequenceNr: 1, toSequenceNr: 3 });
      const slice = sliceForPersistenceId(pid);
      expect((await all(next.queries.eventsBySlices(type, slice, slice))).map(key)).toEqual([`${pid}:1`, `${pid}:2`, `${pid}:3`]);
    } finally {
      await next.close();
    }
  });
});
