import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { NoOffset, type EventEnvelope } from '@dataflow/core';
import { uniqueName } from '@dataflow/test-env';
import { cassandraFixture, type CassandraFixture } from './cassandra-fixture.test.js';
import { createCassandraPersistence } from './cassandra-persistence.js';
import { CassandraSession } from './cassandra-session.js';
import { resolveSettings, type CassandraPersistenceEvent, type SingleWriterMode } from './cassandra-settings.js';
import { TAGGED_TO_DELAY_MS, TagViewWriter, type PendingTagRow } from './tag-view-writer.js';

async function storedTaggedTo(fx: CassandraFixture, persistenceId: string): Promise<number | undefined> {
  const result = await fx.client.execute(`SELECT tagged_to FROM ${fx.keyspace}.messages WHERE persistence_id = ? AND partition_nr = 0 LIMIT 1`, [
    persistenceId,
  ]);
  const value: unknown = result.first()?.['tagged_to'];
  return value === null || value === undefined ? undefined : Number(value);
}

/** Appends `appends` tagged events one append at a time; the last append also has an untagged event. */
async function appendTagged(fx: CassandraFixture, persistenceId: string, tag: string, appends: number): Promise<number> {
  let last = 0;
  for (let i = 0; i < appends; i++) {
    const events = [{ eventType: 'Tick', payload: { i }, tags: [tag] }];
    if (i === appends - 1) events.push({ eventType: 'Untagged', payload: { i }, tags: [] });
    ({ lastSequenceNr: last } = await fx.plugin.journal.append(persistenceId, events, { expectedSequenceNr: last, writerId: 'w1' }));
  }
  return last;
}

describe.each<SingleWriterMode>(['lease', 'conditional'])('tagged_to and the tag-view drain (%s mode)', (singleWriter) => {
  let fx: CassandraFixture;
  const events: CassandraPersistenceEvent[] = [];

  beforeAll(async () => {
    fx = await cassandraFixture(import.meta.url, { singleWriter, onEvent: (e) => events.push(e) });
  });
  afterAll(async () => {
    await fx.cleanup();
  });

  it('records tagged_to of an id that stopped appending, so a later recovery repairs nothing', async () => {
    const pid = uniqueName('idle');
    const last = await appendTagged(fx, pid, uniqueName('tag'), 3);
    // The append's own batch can only record what was stored before it: the writer catches up on its own.
    await vi.waitFor(async () => expect(await storedTaggedTo(fx, pid)).toBe(last), { timeout: TAGGED_TO_DELAY_MS * 5, interval: 100 });

    const recovered: CassandraPersistenceEvent[] = [];
    const other = await createCassandraPersistence({ client: fx.client, keyspace: fx.keyspace, singleWriter, onEvent: (e) => recovered.push(e) });
    try {
      expect(await other.journal.highestSequenceNr(pid)).toBe(last);
    } finally {
      await other.close();
    }
    expect(recovered.filter((e) => e.type === 'tag-views.repaired')).toEqual([]);
  });

  it('a normal restart (close, then a new plugin) raises no tag-views.repaired and the tag stream is complete', async () => {
    const plugin = await createCassandraPersistence({ client: fx.client, keyspace: fx.keyspace, singleWriter });
    const pid = uniqueName('restart');
    const tag = uniqueName('tag');
    let last = 0;
    for (let i = 0; i < 3; i++) {
      ({ lastSequenceNr: last } = await plugin.journal.append(pid, [{ eventType: 'Tick', payload: { i }, tags: [tag] }], { expectedSequenceNr: last, writerId: 'w1' }));
    }
    // Closed right after the last append: the pending tagged_to is drained, not left to the timer.
    await plugin.close();
    expect(await storedTaggedTo(fx, pid)).toBe(last);

    const recovered: CassandraPersistenceEvent[] = [];
    const restarted = await createCassandraPersistence({ client: fx.client, keyspace: fx.keyspace, singleWriter, onEvent: (e) => recovered.push(e) });
    try {
      expect(await restarted.journal.highestSequenceNr(pid)).toBe(last);
      const replayed: EventEnvelope[] = [];
      for await (const e of restarted.queries.eventsByTag(tag, NoOffset)) replayed.push(e);
      expect(replayed.map((e) => e.sequenceNr)).toEqual([1, 2, 3]);
    } finally {
      await restarted.close();
    }
    expect(recovered.filter((e) => e.type === 'tag-views.repaired')).toEqual([]);
  });

  it('drain() waits for queued tag rows and records pending tagged_to values', async () => {
    // A long delay: no row is re-stamped (written twice) however slow the machine is.
    const session = new CassandraSession(fx.client, resolveSettings({ keyspace: fx.keyspace, singleWriter, eventualConsistencyDelayMs: 60_000 }));
    const writer = new TagViewWriter(session);
    const tag = uniqueName('drained');
    const pid = uniqueName('drained');
    // A head row for the id, as the journal would have written it.
    await fx.client.execute(`UPDATE ${fx.keyspace}.messages SET highest_sequence_nr = 2, tagged_to = 0 WHERE persistence_id = ? AND partition_nr = 0`, [pid], {
      prepare: true,
    });
    const rows: PendingTagRow[] = [1, 2].map((n) => ({
      tag,
      persistenceId: pid,
      sequenceNr: n,
      tagPidSequenceNr: n,
      eventTimestamp: Date.now(),
      writerId: 'w1',
      serializerId: 'json',
      eventManifest: 'Tick@v1',
      event: Buffer.from('{}'),
      tags: [tag],
    }));
    let stored = false;
    const writing = writer.write(rows, { persistenceId: pid, partition: 0, from: 0, to: 2 }).then(() => {
      stored = true;
    });
    await writer.drain();
    expect(stored).toBe(true);
    await writing;
    const tagRows = await fx.client.execute(`SELECT sequence_nr FROM ${fx.keyspace}.tag_views WHERE tag_name = ? ALLOW FILTERING`, [tag], { prepare: true });
    expect(tagRows.rows.map((row) => Number(row['sequence_nr'])).sort()).toEqual([1, 2]);
    expect(await storedTaggedTo(fx, pid)).toBe(2);
  });
});
