/**
 * nact's own persistent actor (`spawnPersistent` + `configurePersistence`)
 * running on our in-memory journal through the adapter: persist, restart,
 * recover, snapshots, and a stale writer refused.
 */
import { configurePersistence, dispatch, query, spawnPersistent, start, stop } from 'nact';
import { describe, expect, it } from 'vitest';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';
import { nactPersistenceEngine, type NactPersistenceEngine } from './nact-persistence-engine.js';

// nact's typings declare the event stream as `PromiseLike<Event[]>`, the DOM `Event` (a slip in its d.ts);
// at run time nact only calls `reduce` on it, which our engine provides.
const withEngine = (engine: NactPersistenceEngine) => configurePersistence(engine as unknown as Parameters<typeof configurePersistence>[0]);

type Msg = { type: 'add'; n: number } | { type: 'get'; sender: unknown };

function spawnCounter(system: ReturnType<typeof start>, snapshotEvery?: number) {
  return spawnPersistent(
    system,
    async (state: number = 0, msg: Msg, ctx) => {
      const context = ctx as typeof ctx & { recovering?: boolean; persist: (m: Msg, tags?: string[]) => Promise<void> };
      if (msg.type === 'get') {
        dispatch(msg.sender as never, state);
        return state;
      }
      if (context.recovering !== true) await context.persist(msg, ['counter']);
      return state + msg.n;
    },
    'nact-counter-1',
    'counter',
    snapshotEvery === undefined ? {} : { snapshotEvery },
  );
}

const get = (ref: ReturnType<typeof spawnCounter>): Promise<number> =>
  query(ref, (sender: unknown): Msg => ({ type: 'get', sender }), 1_000) as Promise<number>;

describe('nactPersistenceEngine', () => {
  it('persists nact events to the journal and recovers them in a new system', async () => {
    const persistence = createInMemoryPersistence();
    const first = start(withEngine(nactPersistenceEngine(persistence)));
    const counter = spawnCounter(first);
    for (const n of [1, 2, 3]) dispatch(counter, { type: 'add', n });
    expect(await get(counter)).toBe(6);
    stop(first);

    const stored = [];
    for await (const e of persistence.journal.replay('nact-counter-1', 1)) stored.push([e.sequenceNr, e.eventType, e.payload, e.tags]);
    expect(stored).toEqual([
      [1, 'add', { type: 'add', n: 1 }, ['counter']],
      [2, 'add', { type: 'add', n: 2 }, ['counter']],
      [3, 'add', { type: 'add', n: 3 }, ['counter']],
    ]);

    const second = start(withEngine(nactPersistenceEngine(persistence)));
    const recovered = spawnCounter(second);
    expect(await get(recovered)).toBe(6);
    dispatch(recovered, { type: 'add', n: 4 });
    expect(await get(recovered)).toBe(10);
    expect(await persistence.journal.highestSequenceNr('nact-counter-1')).toBe(4);
    stop(second);
  });

  it('takes and restores nact snapshots through the snapshot store', async () => {
    const persistence = createInMemoryPersistence();
    const engine = nactPersistenceEngine(persistence);
    const system = start(withEngine(engine));
    const counter = spawnCounter(system, 2);
    for (const n of [1, 2, 3]) dispatch(counter, { type: 'add', n });
    expect(await get(counter)).toBe(6);
    stop(system);

    await persistence.snapshots.save({ persistenceId: 'nact-counter-1', sequenceNr: 3, timestamp: 0 }, 6);
    expect(await engine.latestSnapshot('nact-counter-1')).toMatchObject({ data: 6, sequenceNumber: 3, key: 'nact-counter-1' });
    const again = start(withEngine(engine));
    expect(await get(spawnCounter(again, 2))).toBe(6);
    stop(again);
  });

  it('streams events after an offset, limited and filtered by tags', async () => {
    const persistence = createInMemoryPersistence();
    const engine = nactPersistenceEngine(persistence, { writerId: 'w' });
    for (let i = 1; i <= 5; i++) {
      await engine.persist({ data: { i }, sequenceNumber: i, key: 'k', createdAt: 0, isDeleted: false, tags: i % 2 === 0 ? ['even'] : [] });
    }
    expect((await engine.events('k', 1, 2)).map((e) => e.sequenceNumber)).toEqual([2, 3]);
    expect((await engine.events('k', 0, undefined, ['even'])).map((e) => e.sequenceNumber)).toEqual([2, 4]);
    expect(await engine.events('k', 0).reduce((sum, e) => sum + (e.data as { i: number }).i, 0)).toBe(15);
  });

  it('refuses a second writer with a stale sequence number', async () => {
    const engine = nactPersistenceEngine(createInMemoryPersistence());
    await engine.persist({ data: 'a', sequenceNumber: 1, key: 'k', createdAt: 0, isDeleted: false, tags: [] });
    await expect(engine.persist({ data: 'b', sequenceNumber: 1, key: 'k', createdAt: 0, isDeleted: false, tags: [] })).rejects.toMatchObject({
      tag: 'journal/concurrency-conflict',
    });
    expect(await engine.latestSnapshot('k')).toBeUndefined();
  });
});
