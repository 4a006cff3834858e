/**
 * Snapshots and deleted events on the real Cassandra: snapshots are written
 * at the journal's write consistency, `deleteTo` never deletes events that no
 * snapshot covers, and loading falls back to an older snapshot when the
 * newest cannot be loaded.
 */
import { types } from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventSourced, recoverState } from '@dataflow/core';
import { uniqueName } from '@dataflow/test-env';
import { createCassandraPersistence, type CassandraPersistence } from './cassandra-persistence.js';
import type { CassandraPersistenceEvent } from './cassandra-settings.js';
import { cassandraFixture, type CassandraFixture } from './cassandra-fixture.test.js';

const counter = eventSourced<never, { n: number }, number[]>({
  persistenceId: (id) => id,
  emptyState: [],
  onCommand: () => {
    throw new Error('no commands');
  },
  onEvent: (state, event) => [...state, event.n],
});

describe('Cassandra snapshots with deleted events', () => {
  let fx: CassandraFixture;
  const events: CassandraPersistenceEvent[] = [];
  let plugin: CassandraPersistence;

  beforeAll(async () => {
    fx = await cassandraFixture(import.meta.url);
    plugin = await createCassandraPersistence({ client: fx.client, keyspace: fx.keyspace, onEvent: (e) => events.push(e) });
  });
  afterAll(async () => {
    await plugin.close();
    await fx.cleanup();
  });

  const appendN = async (pid: string, count: number): Promise<void> => {
    for (let n = 1; n <= count; n++) await plugin.journal.append(pid, [{ eventType: 'N', payload: { n } }], { expectedSequenceNr: n - 1, writerId: 'w' });
  };

  it('writes snapshots at the journal write consistency by default', async () => {
    const seen: number[] = [];
    const spy = new Proxy(fx.client, {
      get(target, prop, receiver) {
        if (prop === 'execute') {
          return (query: string, params: unknown[], options: { consistency?: number }) => {
            if (query.startsWith(`INSERT INTO ${fx.keyspace}.snapshots`)) seen.push(options.consistency ?? -1);
            return target.execute(query, params, options);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const store = await createCassandraPersistence({ client: spy, keyspace: fx.keyspace });
    await store.snapshots.save({ persistenceId: uniqueName('durable'), sequenceNr: 1, timestamp: 1 }, { n: 1 });
    expect(seen).toEqual([types.consistencies.quorum]);
    await store.close();
  });

  it('deletes no event that no snapshot covers, so recovery from the newest snapshot finds every later event', async () => {
    const pid = uniqueName('covered');
    await appendN(pid, 10);
    await plugin.snapshots.save({ persistenceId: pid, sequenceNr: 5, timestamp: 5 }, [1, 2, 3, 4, 5]);
    // Asked to delete up to 8, but the newest snapshot is at 5: events 6..8 stay.
    await plugin.journal.deleteTo(pid, 8);
    expect(events).toContainEqual({ type: 'delete.limited', persistenceId: pid, requestedTo: 8, deletedTo: 5 });
    const recovered = await recoverState(counter, pid, plugin);
    expect(recovered).toMatchObject({ state: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], sequenceNr: 10, snapshotSequenceNr: 5, eventsReplayed: 5 });

    // With a snapshot at 8 the deletion goes through.
    await plugin.snapshots.save({ persistenceId: pid, sequenceNr: 8, timestamp: 8 }, [1, 2, 3, 4, 5, 6, 7, 8]);
    await plugin.journal.deleteTo(pid, 8);
    const first: number[] = [];
    for await (const e of plugin.journal.replay(pid, 1)) first.push(e.sequenceNr);
    expect(first).toEqual([9, 10]);

    // An id without snapshots is deleted as asked (a deliberate deletion, not a snapshot's).
    const plain = uniqueName('plain');
    await appendN(plain, 4);
    await plugin.journal.deleteTo(plain, 3);
    const rest: number[] = [];
    for await (const e of plugin.journal.replay(plain, 1)) rest.push(e.sequenceNr);
    expect(rest).toEqual([4]);
  });

  it('falls back to an older snapshot when the newest cannot be loaded, up to three attempts', async () => {
    const pid = uniqueName('fallback');
    await appendN(pid, 12);
    for (const sequenceNr of [3, 6, 9, 12]) {
      await plugin.snapshots.save({ persistenceId: pid, sequenceNr, timestamp: sequenceNr }, Array.from({ length: sequenceNr }, (_, i) => i + 1));
    }
    const garble = (sequenceNr: number) =>
      fx.client.execute(`UPDATE ${fx.keyspace}.snapshots SET snapshot_data = 0x7b7b7b WHERE persistence_id = ? AND sequence_nr = ?`, [pid, sequenceNr], {
        prepare: true,
      });
    await garble(12);
    expect((await plugin.snapshots.loadLatest(pid))?.metadata.sequenceNr).toBe(9);
    expect(events.filter((e) => e.type === 'snapshot.load-failed').map((e) => (e as { sequenceNr: number }).sequenceNr)).toEqual([12]);
    const recovered = await recoverState(counter, pid, plugin);
    expect(recovered).toMatchObject({ sequenceNr: 12, snapshotSequenceNr: 9, eventsReplayed: 3 });

    await garble(9);
    await garble(6);
    // Three snapshots tried and failed: the first failure is reported, not a silently older state.
    await expect(plugin.snapshots.loadLatest(pid)).rejects.toMatchObject({ tag: 'serialization/failed' });
  });
});
