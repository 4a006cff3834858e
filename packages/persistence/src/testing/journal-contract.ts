/**
 * The persistence contract suite: one set of vitest cases that every
 * `PersistencePlugin` (in-memory, Postgres, PGlite, Cassandra) must pass, so
 * the stores stay interchangeable. Store-specific behaviour (polling live
 * queries, eventually consistent tag views) is tuned through options, never by
 * skipping cases.
 *
 * Importing this module needs `vitest` (a peer dependency of
 * `@dataflow/persistence/testing`).
 */
import { isConcurrencyConflict, isDataflowError, NoOffset, type PersistencePlugin } from '@dataflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appendN,
  collect,
  collectAll,
  collectUntil,
  event,
  expectOrderedPerPid,
  failure,
  groupByPid,
  key,
  offsetAt,
  randomText,
  range,
  sleep,
  unique,
} from './contract-helpers.js';
import { describeEdgeCases } from './contract-edge-cases.js';
import { describeInstanceCases } from './contract-instances.js';
import { describeSliceCases } from './contract-slices.js';

/**
 * Another plugin instance on the same storage as a fixture's `plugin`, as a
 * second process would open it: its own connections and its own queues.
 */
export interface ContractInstance {
  readonly plugin: PersistencePlugin;
  /**
   * Drops the instance as a crashed process would: no `close()`, nothing
   * flushed or drained; only what the test process itself must release
   * (sockets, handles) is torn down, abruptly.
   */
  crash(): Promise<void>;
}

/** A store under test and how to get rid of it. */
export interface ContractFixture {
  readonly plugin: PersistencePlugin;
  /** Opens another, independent instance on the same storage (schema, keyspace, database). */
  openInstance(): Promise<ContractInstance>;
  /** Closes the plugin and removes what the fixture created (schema, keyspace, data directory). */
  cleanup(): Promise<void>;
}

export interface JournalContractOptions {
  /**
   * Time a write may take to show up in *current* queries (eventually
   * consistent tag views); the suite waits this long before such a query.
   * Default 0.
   */
  readonly eventualConsistencyDelayMs?: number;
  /** Longest a live query may take to deliver the events written; a case fails after it. Default 20 000. */
  readonly liveTimeoutMs?: number;
  /** The store's payload size limit; the suite writes one payload just over it. Default 1 MiB. */
  readonly maxPayloadBytes?: number;
  /** How many persistence ids the "many persistence ids" case writes. Default 500. */
  readonly manyPersistenceIds?: number;
  /** Concurrent writers and appends per writer in the live tag case. Default 8 and 25. */
  readonly concurrentWriters?: number;
  readonly appendsPerWriter?: number;
  /** Timeout of each case. Default 60 000. */
  readonly testTimeoutMs?: number;
}

/**
 * Registers the contract cases for one store under `describe(name)`.
 * `setup` is called once for the suite and once more by the case that checks
 * `close()`; each call must return a fresh, independent store.
 *
 * @example
 * ```ts
 * import { createInMemoryPersistence } from '@dataflow/core';
 * import { describeJournalContract } from '@dataflow/persistence/testing';
 *
 * describeJournalContract('in-memory', async () => {
 *   const plugin = createInMemoryPersistence();
 *   return {
 *     plugin,
 *     openInstance: async () => ({ plugin: plugin.openInstance(), crash: async () => {} }),
 *     cleanup: () => plugin.close(),
 *   };
 * });
 * ```
 */
export function describeJournalContract(name: string, setup: () => Promise<ContractFixture>, options: JournalContractOptions = {}): void {
  const settleMs = options.eventualConsistencyDelayMs ?? 0;
  const liveTimeoutMs = options.liveTimeoutMs ?? 20_000;
  const maxPayloadBytes = options.maxPayloadBytes ?? 1024 * 1024;
  const manyIds = options.manyPersistenceIds ?? 500;
  const writers = options.concurrentWriters ?? 8;
  const appendsPerWriter = options.appendsPerWriter ?? 25;
  const timeout = options.testTimeoutMs ?? 60_000;

  describe(`persistence contract: ${name}`, () => {
    let fixture: ContractFixture | undefined;
    const store = (): PersistencePlugin => {
      if (fixture === undefined) throw new Error('the contract fixture was not set up');
      return fixture.plugin;
    };
    const settle = (): Promise<void> => sleep(settleMs);
    const openInstance = (): Promise<ContractInstance> => {
      if (fixture === undefined) throw new Error('the contract fixture was not set up');
      return fixture.openInstance();
    };
    const context = { store, openInstance, settle, maxPayloadBytes, liveTimeoutMs, timeout };

    beforeAll(async () => {
      fixture = await setup();
    });
    afterAll(async () => {
      await fixture?.cleanup();
    });

    describe('journal', () => {
      it('replays appended events in order with their metadata', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('order');
        const first = await journal.append(pid, [event('A', { i: 1 }, ['t1']), event('B', { i: 2 })], { expectedSequenceNr: 0, writerId: 'writer-1' });
        const second = await journal.append(pid, [{ eventType: 'C', payload: { i: 3 }, schemaVersion: 3, tags: ['t1', 't2'] }], {
          expectedSequenceNr: 2,
          writerId: 'writer-2',
        });
        expect(first.lastSequenceNr).toBe(2);
        expect(second.lastSequenceNr).toBe(3);
        const events = await collectAll(journal.replay(pid, 1));
        expect(events.map((e) => [e.persistenceId, e.sequenceNr, e.eventType, e.schemaVersion, e.writerId, e.payload])).toEqual([
          [pid, 1, 'A', 1, 'writer-1', { i: 1 }],
          [pid, 2, 'B', 1, 'writer-1', { i: 2 }],
          [pid, 3, 'C', 3, 'writer-2', { i: 3 }],
        ]);
        expect(events.map((e) => [...e.tags].sort())).toEqual([['t1'], [], ['t1', 't2']]);
        for (const e of events) expect(Number.isFinite(e.timestamp)).toBe(true);
      });

      it('replays a range and stops after max events', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('range');
        await appendN(store(), pid, 10);
        expect((await collectAll(journal.replay(pid, 3, 6))).map((e) => e.sequenceNr)).toEqual([3, 4, 5, 6]);
        expect((await collectAll(journal.replay(pid, 8))).map((e) => e.sequenceNr)).toEqual([8, 9, 10]);
        expect((await collectAll(journal.replay(pid, 2, 10, { max: 3 }))).map((e) => e.sequenceNr)).toEqual([2, 3, 4]);
        expect(await collectAll(journal.replay(pid, 11))).toEqual([]);
        expect(await collectAll(journal.replay(unique('unknown'), 1))).toEqual([]);
      });

      it('stores a batch atomically: a payload over the limit in the middle leaves nothing', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('atomic-size');
        const batch = [event('Ok', 1), event('Ok', 2), event('Huge', 'x'.repeat(maxPayloadBytes + 1024)), event('Ok', 4)];
        const error = await failure(journal.append(pid, batch, { expectedSequenceNr: 0, writerId: 'w' }));
        expect(isDataflowError(error, 'serialization/payload-too-large')).toBe(true);
        expect((error as { retriable: boolean }).retriable).toBe(false);
        expect(await journal.highestSequenceNr(pid)).toBe(0);
        expect(await collectAll(journal.replay(pid, 1))).toEqual([]);
        await journal.append(pid, [event('Ok', 1)], { expectedSequenceNr: 0, writerId: 'w' });
        expect((await collectAll(journal.replay(pid, 1))).map((e) => e.payload)).toEqual([1]);
      });

      it('stores a batch atomically: a batch that collides midway leaves nothing', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('atomic-conflict');
        await appendN(store(), pid, 3);
        // Expected 1: the batch would take 2, 3 (taken) and 4, 5 (free).
        const error = await failure(journal.append(pid, [event('X', 2), event('X', 3), event('X', 4), event('X', 5)], { expectedSequenceNr: 1, writerId: 'other' }));
        expect(isConcurrencyConflict(error)).toBe(true);
        expect(await journal.highestSequenceNr(pid)).toBe(3);
        const stored = await collectAll(journal.replay(pid, 1));
        expect(stored.map((e) => [e.sequenceNr, e.eventType])).toEqual([[1, 'E'], [2, 'E'], [3, 'E']]);
      });

      it('refuses a taken sequence number with a non-retriable ConcurrencyConflictError', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('conflict');
        await journal.append(pid, [event('A', 1)], { expectedSequenceNr: 0, writerId: 'w1' });
        const error = await failure(journal.append(pid, [event('B', 2)], { expectedSequenceNr: 0, writerId: 'w2' }));
        expect(isConcurrencyConflict(error)).toBe(true);
        expect((error as { retriable: boolean }).retriable).toBe(false);
        expect((error as { persistenceId: string }).persistenceId).toBe(pid);
        expect((error as { expectedSequenceNr: number }).expectedSequenceNr).toBe(0);
        expect((await collectAll(journal.replay(pid, 1))).map((e) => [e.eventType, e.writerId])).toEqual([['A', 'w1']]);
      });

      it('refuses an expected sequence number above the highest (it would leave a gap)', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('gap');
        await appendN(store(), pid, 2);
        const error = await failure(journal.append(pid, [event('X', 1)], { expectedSequenceNr: 5, writerId: 'w' }));
        expect(isConcurrencyConflict(error)).toBe(true);
        expect(await journal.highestSequenceNr(pid)).toBe(2);
      });

      it('lets exactly one of concurrent appends with the same expected sequence number win', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('race');
        await appendN(store(), pid, 1);
        const attempts = Array.from({ length: 6 }, (_, i) =>
          journal.append(pid, [event('Race', { writer: i }), event('Race', { writer: i })], { expectedSequenceNr: 1, writerId: `w${i}` }),
        );
        const results = await Promise.allSettled(attempts);
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
        expect(won).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect(isConcurrencyConflict(r.reason)).toBe(true);
        const stored = await collectAll(journal.replay(pid, 2));
        expect(stored.map((e) => e.writerId)).toEqual([`w${won[0]}`, `w${won[0]}`]);
        expect(await journal.highestSequenceNr(pid)).toBe(3);
      });

      it('reports the highest sequence number, 0 for an unknown persistence id', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('highest');
        expect(await journal.highestSequenceNr(pid)).toBe(0);
        await appendN(store(), pid, 4);
        expect(await journal.highestSequenceNr(pid)).toBe(4);
        expect(await journal.append(pid, [], { expectedSequenceNr: 4, writerId: 'w' })).toEqual({ lastSequenceNr: 4 });
        expect(await journal.highestSequenceNr(pid)).toBe(4);
      });

      it('deletes up to a sequence number without lowering the highest', { timeout }, async () => {
        const { journal, queries } = store();
        const pid = unique('delete');
        await appendN(store(), pid, 5);
        await journal.deleteTo(pid, 3);
        expect((await collectAll(journal.replay(pid, 1))).map((e) => e.sequenceNr)).toEqual([4, 5]);
        expect((await collectAll(queries.eventsByPersistenceId(pid, 1))).map((e) => e.sequenceNr)).toEqual([4, 5]);
        expect(await journal.highestSequenceNr(pid)).toBe(5);
        await journal.deleteTo(pid, 2);
        expect((await collectAll(journal.replay(pid, 1))).map((e) => e.sequenceNr)).toEqual([4, 5]);
        await journal.deleteTo(pid, 5);
        expect(await collectAll(journal.replay(pid, 1))).toEqual([]);
        expect(await journal.highestSequenceNr(pid)).toBe(5);
        expect(isConcurrencyConflict(await failure(journal.append(pid, [event('Again', 1)], { expectedSequenceNr: 0, writerId: 'w' })))).toBe(true);
        await journal.append(pid, [event('After', 6)], { expectedSequenceNr: 5, writerId: 'w' });
        expect((await collectAll(journal.replay(pid, 1))).map((e) => [e.sequenceNr, e.payload])).toEqual([[6, 6]]);
      });

      it('keeps stored history safe from callers mutating payload objects', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('copy');
        const payload = { list: [1, 2], nested: { name: 'original' } };
        await journal.append(pid, [event('E', payload)], { expectedSequenceNr: 0, writerId: 'w' });
        payload.list.push(3);
        payload.nested.name = 'changed after append';
        const [first] = await collectAll(journal.replay(pid, 1));
        (first?.payload as { nested: { name: string } }).nested.name = 'changed after replay';
        const [again] = await collectAll(journal.replay(pid, 1));
        expect(again?.payload).toEqual({ list: [1, 2], nested: { name: 'original' } });
      });
    });

    describe('payloads', () => {
      it('round-trips unicode: emoji, right-to-left text and NUL characters', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('unicode');
        const payload = { text: 'emoji 😀👩‍👩‍👧 rtl עברית العربية nul[\u0000] lone-high[\uD83D] end', 'ключ ✓': 'значение', nul: '\u0000' };
        await journal.append(pid, [event('Unicode', payload, ['tag-ü-😀'])], { expectedSequenceNr: 0, writerId: 'w' });
        const [stored] = await collectAll(journal.replay(pid, 1));
        const text = 'emoji 😀👩‍👩‍👧 rtl עברית العربية nul[\u0000] lone-high[\uFFFD] end';
        // A lone surrogate is not valid Unicode; UTF-8 stores replace it, all other code points survive.
        expect([payload.text, text]).toContainEqual((stored?.payload as { text: string }).text);
        expect((stored?.payload as Record<string, unknown>)['ключ ✓']).toBe('значение');
        expect((stored?.payload as Record<string, unknown>)['nul']).toBe('\u0000');
        expect(stored?.tags).toEqual(['tag-ü-😀']);
      });

      it('round-trips binary payloads byte for byte', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('binary');
        const bytes = new Uint8Array(4096).map((_, i) => (i * 7) % 256);
        await journal.append(pid, [event('Binary', { bytes, small: new Uint8Array([0, 255, 0]) })], { expectedSequenceNr: 0, writerId: 'w' });
        const [stored] = await collectAll(journal.replay(pid, 1));
        const back = stored?.payload as { bytes: Uint8Array; small: Uint8Array };
        expect(back.bytes).toBeInstanceOf(Uint8Array);
        expect(Buffer.from(back.bytes).equals(Buffer.from(bytes))).toBe(true);
        expect([...back.small]).toEqual([0, 255, 0]);
      });

      it('round-trips large payloads (512 KiB string and binary)', { timeout }, async () => {
        const { journal } = store();
        const pid = unique('large');
        const text = randomText(512 * 1024);
        const bytes = new Uint8Array(300 * 1024).map((_, i) => (i * 31 + 7) % 256);
        await journal.append(pid, [event('LargeText', text), event('LargeBinary', bytes)], { expectedSequenceNr: 0, writerId: 'w' });
        const stored = await collectAll(journal.replay(pid, 1));
        expect(stored[0]?.payload === text).toBe(true);
        expect(Buffer.from(stored[1]?.payload as Uint8Array).equals(Buffer.from(bytes))).toBe(true);
      });
    });

    describe('snapshots', () => {
      it('loads the latest snapshot matching sequence number and timestamp criteria', { timeout }, async () => {
        const { snapshots } = store();
        const pid = unique('snap');
        await snapshots.save({ persistenceId: pid, sequenceNr: 10, timestamp: 1_000 }, { at: 10 });
        await snapshots.save({ persistenceId: pid, sequenceNr: 20, timestamp: 2_000 }, { at: 20 }, 2);
        await snapshots.save({ persistenceId: pid, sequenceNr: 30, timestamp: 3_000 }, { at: 30 });
        const at = async (criteria?: Parameters<typeof snapshots.loadLatest>[1]): Promise<number | undefined> =>
          (await snapshots.loadLatest(pid, criteria))?.metadata.sequenceNr;
        const latest = await snapshots.loadLatest(pid);
        expect(latest).toEqual({ metadata: { persistenceId: pid, sequenceNr: 30, timestamp: 3_000 }, state: { at: 30 }, schemaVersion: 1 });
        expect(await snapshots.loadLatest(pid, { maxSequenceNr: 25 })).toMatchObject({ state: { at: 20 }, schemaVersion: 2 });
        expect(await at({ maxSequenceNr: 30 })).toBe(30);
        expect(await at({ minSequenceNr: 11, maxSequenceNr: 29 })).toBe(20);
        expect(await at({ maxTimestamp: 1_500 })).toBe(10);
        expect(await at({ maxTimestamp: 2_000 })).toBe(20);
        expect(await at({ minTimestamp: 2_500 })).toBe(30);
        expect(await at({ minSequenceNr: 31 })).toBeUndefined();
        expect(await at({ maxTimestamp: 999 })).toBeUndefined();
        expect(await snapshots.loadLatest(unique('no-snap'))).toBeUndefined();
      });

      it('replaces a snapshot saved again at the same sequence number', { timeout }, async () => {
        const { snapshots } = store();
        const pid = unique('snap-replace');
        await snapshots.save({ persistenceId: pid, sequenceNr: 5, timestamp: 1 }, 'first');
        await snapshots.save({ persistenceId: pid, sequenceNr: 5, timestamp: 2 }, 'second');
        expect(await snapshots.loadLatest(pid)).toEqual({ metadata: { persistenceId: pid, sequenceNr: 5, timestamp: 2 }, state: 'second', schemaVersion: 1 });
      });

      it('deletes snapshots matching criteria and keeps the rest', { timeout }, async () => {
        const { snapshots } = store();
        const pid = unique('snap-delete');
        for (const n of [1, 2, 3, 4]) await snapshots.save({ persistenceId: pid, sequenceNr: n * 100, timestamp: n * 1_000 }, { n });
        await snapshots.delete(pid, { maxSequenceNr: 200 });
        expect((await snapshots.loadLatest(pid, { maxSequenceNr: 250 }))?.metadata.sequenceNr).toBeUndefined();
        await snapshots.delete(pid, { minTimestamp: 4_000 });
        expect((await snapshots.loadLatest(pid))?.metadata.sequenceNr).toBe(300);
        await snapshots.delete(pid, {});
        expect(await snapshots.loadLatest(pid)).toBeUndefined();
      });

      it('round-trips a binary and unicode snapshot state', { timeout }, async () => {
        const { snapshots } = store();
        const pid = unique('snap-binary');
        const state = { name: 'ש😀\u0000', bytes: new Uint8Array([1, 2, 3, 250]) };
        await snapshots.save({ persistenceId: pid, sequenceNr: 1, timestamp: 1 }, state);
        const loaded = await snapshots.loadLatest(pid);
        expect((loaded?.state as typeof state).name).toBe(state.name);
        expect([...(loaded?.state as typeof state).bytes]).toEqual([1, 2, 3, 250]);
      });
    });

    describe('eventsByPersistenceId', () => {
      it('streams current events in a range with offsets', { timeout }, async () => {
        const { queries } = store();
        const pid = unique('by-pid');
        await appendN(store(), pid, 6);
        await settle();
        const all = await collectAll(queries.eventsByPersistenceId(pid, 1));
        expect(all.map((e) => e.sequenceNr)).toEqual([1, 2, 3, 4, 5, 6]);
        for (const e of all) expect(e.offset.kind).not.toBe('none');
        expect((await collectAll(queries.eventsByPersistenceId(pid, 2, 4))).map((e) => e.sequenceNr)).toEqual([2, 3, 4]);
        expect(await collectAll(queries.eventsByPersistenceId(unique('none'), 1))).toEqual([]);
      });

      it('delivers events written after a live stream started, then ends on abort', { timeout }, async () => {
        const { queries } = store();
        const pid = unique('by-pid-live');
        await appendN(store(), pid, 2);
        const controller = new AbortController();
        const stream = queries.eventsByPersistenceId(pid, 1, undefined, { live: true, signal: controller.signal });
        const reading = collect(stream, 5, liveTimeoutMs, controller);
        await appendN(store(), pid, 3, 2);
        const got = await reading;
        expect(got.map((e) => e.sequenceNr)).toEqual([1, 2, 3, 4, 5]);
      });

      it('ends a live stream at toSequenceNr', { timeout }, async () => {
        const { queries } = store();
        const pid = unique('by-pid-to');
        await appendN(store(), pid, 3);
        const got = await collectAll(queries.eventsByPersistenceId(pid, 1, 3, { live: true }));
        expect(got.map((e) => e.sequenceNr)).toEqual([1, 2, 3]);
      });
    });

    describe('eventsByTag', () => {
      it('streams tagged events in order per persistence id, resumable from any returned offset', { timeout }, async () => {
        const { queries } = store();
        const tag = unique('tag');
        const pids = [unique('tag-a'), unique('tag-b'), unique('tag-c')];
        for (let round = 0; round < 4; round++) {
          for (const [i, pid] of pids.entries()) {
            await store().journal.append(pid, [event('T', { round, i }, [tag, 'other']), event('Untagged', 0)], { expectedSequenceNr: round * 2, writerId: 'w' });
          }
        }
        await settle();
        const all = await collectAll(queries.eventsByTag(tag, NoOffset));
        expect(all).toHaveLength(12);
        expect(new Set(all.map(key)).size).toBe(12);
        for (const own of groupByPid(all).values()) expect(own.map((e) => e.sequenceNr)).toEqual([1, 3, 5, 7]);
        for (const e of all) expect(e.tags).toContain(tag);
        for (const cut of [1, 5, 11, 12]) {
          const rest = await collectAll(queries.eventsByTag(tag, offsetAt(all, cut - 1)));
          expect(rest.map(key)).toEqual(all.slice(cut).map(key));
        }
        expect(await collectAll(queries.eventsByTag(unique('unused-tag'), NoOffset))).toEqual([]);
      });

      it('delivers every event exactly once to a live stream while writers append concurrently', { timeout }, async () => {
        const { queries, journal } = store();
        const tag = unique('live-tag');
        const total = writers * appendsPerWriter * 2;
        const controller = new AbortController();
        const reading = collect(queries.eventsByTag(tag, NoOffset, { live: true, signal: controller.signal }), total, liveTimeoutMs, controller);
        await Promise.all(
          Array.from({ length: writers }, async (_, w) => {
            const pid = unique(`writer${w}`);
            for (let i = 0; i < appendsPerWriter; i++) {
              await journal.append(pid, [event('L', { w, i }, [tag]), event('L', { w, i }, [tag])], { expectedSequenceNr: i * 2, writerId: `w${w}` });
            }
          }),
        );
        const got = await reading;
        expectOrderedPerPid(got, total);
        expect(new Set(got.map((e) => e.persistenceId)).size).toBe(writers);
        for (const events of groupByPid(got).values()) expect(events.map((e) => e.sequenceNr)).toEqual(range(1, appendsPerWriter * 2));
        // Resuming a live stream from a delivered offset yields exactly the rest.
        const cut = Math.floor(total / 3);
        const resumed = new AbortController();
        const rest = await collect(queries.eventsByTag(tag, offsetAt(got, cut - 1), { live: true, signal: resumed.signal }), total - cut, liveTimeoutMs, resumed);
        expect(rest.map(key)).toEqual(got.slice(cut).map(key));
      });

      it('ends a live tag stream when its signal aborts', { timeout }, async () => {
        const { queries } = store();
        const controller = new AbortController();
        const iterator = queries.eventsByTag(unique('quiet-tag'), NoOffset, { live: true, signal: controller.signal })[Symbol.asyncIterator]();
        const next = iterator.next();
        controller.abort();
        expect(await next).toEqual({ done: true, value: undefined });
      });
    });

    describe('persistenceIds', () => {
      it('lists every persistence id once, current and live', { timeout }, async () => {
        const { queries } = store();
        const ids = [unique('ids-a'), unique('ids-b')];
        for (const pid of ids) await appendN(store(), pid, 2);
        await settle();
        const current = await collectAll(queries.persistenceIds());
        expect(current).toEqual(expect.arrayContaining(ids));
        expect(new Set(current).size).toBe(current.length);
        const controller = new AbortController();
        const late = unique('ids-late');
        const reading = collectUntil(queries.persistenceIds({ live: true, signal: controller.signal }), (id) => id === late, liveTimeoutMs, controller);
        await appendN(store(), late, 1);
        const live = await reading;
        expect(live).toEqual(expect.arrayContaining([...ids, late]));
        expect(new Set(live).size).toBe(live.length);
      });
    });

    describe('scale', () => {
      it(`keeps ${manyIds} persistence ids apart`, { timeout: timeout * 3 }, async () => {
        const { journal, queries } = store();
        const tag = unique('many');
        const pids = Array.from({ length: manyIds }, (_, i) => unique(`many${i}`));
        for (let start = 0; start < pids.length; start += 50) {
          await Promise.all(
            pids.slice(start, start + 50).map((pid, j) =>
              journal.append(pid, [event('M', { i: start + j, n: 1 }, [tag]), event('M', { i: start + j, n: 2 }, [tag])], { expectedSequenceNr: 0, writerId: 'w' }),
            ),
          );
        }
        await settle();
        const sample = [0, Math.floor(manyIds / 2), manyIds - 1];
        for (const i of sample) {
          const pid = pids[i] ?? '';
          expect(await journal.highestSequenceNr(pid)).toBe(2);
          expect((await collectAll(journal.replay(pid, 1))).map((e) => e.payload)).toEqual([{ i, n: 1 }, { i, n: 2 }]);
        }
        const tagged = await collectAll(queries.eventsByTag(tag, NoOffset));
        expectOrderedPerPid(tagged, manyIds * 2);
        expect(new Set(tagged.map((e) => e.persistenceId))).toEqual(new Set(pids));
        const ids = new Set(await collectAll(queries.persistenceIds()));
        for (const pid of pids) expect(ids.has(pid)).toBe(true);
      });
    });

    describe('close', () => {
      it('fails further calls after close', { timeout }, async () => {
        const own = await setup();
        try {
          await own.plugin.journal.append('closing', [event('A', 1)], { expectedSequenceNr: 0, writerId: 'w' });
          await own.plugin.close();
          const error = await failure(own.plugin.journal.append('closing', [event('B', 2)], { expectedSequenceNr: 1, writerId: 'w' }));
          expect(isDataflowError(error)).toBe(true);
          expect(isDataflowError(await failure(collectAll(own.plugin.journal.replay('closing', 1))))).toBe(true);
        } finally {
          await own.cleanup();
        }
      });
    });

    describeEdgeCases(context);
    describeInstanceCases(context);
    describeSliceCases(context);
  });
}
