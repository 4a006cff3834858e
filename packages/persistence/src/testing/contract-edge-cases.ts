/**
 * Contract cases at the edges of the SPI: replay ranges, values the
 * serializer must refuse (the whole atomic write fails, the store keeps
 * working), one failing append among concurrent ones, deletes (above the
 * highest; absent from tag queries), snapshot criteria, single-snapshot
 * deletes, the snapshot size limit, and the end of a current query.
 */
import { isConcurrencyConflict, isDataflowError, NoOffset } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { appendN, collect, collectAll, event, failure, unique, type ContractContext } from './contract-helpers.js';

/** Payloads without a faithful stored form: each must fail its whole batch with a serialization error. */
function unserializablePayloads(): [string, unknown][] {
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic['self'] = { back: cyclic };
  return [
    ['undefined', undefined],
    ['an Error', { failure: new Error('boom') }],
    ['a function', { run: () => 1 }],
    ['a symbol', { s: Symbol('s') }],
    ['a cyclic value', cyclic],
  ];
}

export function describeEdgeCases(context: ContractContext): void {
  const { store, settle, maxPayloadBytes, liveTimeoutMs, timeout } = context;

  describe('replay ranges', () => {
    it('returns nothing for from > to and for max: 0, and reads from 1 when from <= 0', { timeout }, async () => {
      const { journal, queries } = store();
      const pid = unique('bounds');
      await appendN(store(), pid, 4);
      await settle();
      const seqs = async (events: AsyncIterable<{ sequenceNr: number }>): Promise<number[]> => (await collectAll(events)).map((e) => e.sequenceNr);
      expect(await seqs(journal.replay(pid, 3, 2))).toEqual([]);
      expect(await seqs(journal.replay(pid, 5, 1))).toEqual([]);
      expect(await seqs(journal.replay(pid, 1, 4, { max: 0 }))).toEqual([]);
      expect(await seqs(journal.replay(pid, 0))).toEqual([1, 2, 3, 4]);
      expect(await seqs(journal.replay(pid, -5, 2))).toEqual([1, 2]);
      expect(await seqs(queries.eventsByPersistenceId(pid, 3, 2))).toEqual([]);
      expect(await seqs(queries.eventsByPersistenceId(pid, 0, 2))).toEqual([1, 2]);
      expect(await seqs(queries.eventsByPersistenceId(pid, -1))).toEqual([1, 2, 3, 4]);
    });
  });

  describe('serialization', () => {
    for (const [what, payload] of unserializablePayloads()) {
      it(`refuses ${what} inside a batch: nothing is stored and the store keeps working`, { timeout }, async () => {
        const { journal } = store();
        const pid = unique('unserializable');
        const other = unique('unserializable-other');
        await appendN(store(), pid, 1);
        const error = await failure(journal.append(pid, [event('Ok', 2), event('Bad', payload), event('Ok', 4)], { expectedSequenceNr: 1, writerId: 'w' }));
        expect(isDataflowError(error, 'serialization/failed')).toBe(true);
        expect((error as { retriable: boolean }).retriable).toBe(false);
        expect(await journal.highestSequenceNr(pid)).toBe(1);
        expect((await collectAll(journal.replay(pid, 1))).map((e) => e.payload)).toEqual([{ n: 1 }]);
        // The same id and others still take appends, and every stored event replays.
        await journal.append(pid, [event('Ok', 2)], { expectedSequenceNr: 1, writerId: 'w' });
        await appendN(store(), other, 2);
        expect((await collectAll(journal.replay(pid, 1))).map((e) => e.payload)).toEqual([{ n: 1 }, 2]);
        expect(await journal.highestSequenceNr(other)).toBe(2);
      });
    }

    it('refuses undefined and an Error as snapshot state; the previous snapshot stays loadable', { timeout }, async () => {
      const { snapshots } = store();
      const pid = unique('snap-unserializable');
      await snapshots.save({ persistenceId: pid, sequenceNr: 1, timestamp: 1 }, { ok: true });
      for (const state of [undefined, new Error('boom'), { nested: new Error('boom') }]) {
        const error = await failure(snapshots.save({ persistenceId: pid, sequenceNr: 2, timestamp: 2 }, state));
        expect(isDataflowError(error, 'serialization/failed')).toBe(true);
      }
      expect(await snapshots.loadLatest(pid)).toMatchObject({ metadata: { sequenceNr: 1 }, state: { ok: true } });
    });

    it('round-trips values plain JSON would change: bigint, NaN, infinities, -0 and dates', { timeout }, async () => {
      const { journal } = store();
      const pid = unique('json-extended');
      const payload = { big: 2n ** 70n, nan: Number.NaN, inf: Infinity, ninf: -Infinity, nz: -0, at: new Date(1_700_000_000_123) };
      await journal.append(pid, [event('Extended', payload)], { expectedSequenceNr: 0, writerId: 'w' });
      const [stored] = await collectAll(journal.replay(pid, 1));
      const back = stored?.payload as typeof payload;
      expect(back.big).toBe(2n ** 70n);
      expect(back.nan).toBeNaN();
      expect([back.inf, back.ninf]).toEqual([Infinity, -Infinity]);
      expect(Object.is(back.nz, -0)).toBe(true);
      expect(back.at).toEqual(payload.at);
    });
  });

  describe('concurrent appends to different ids', () => {
    it('fails only the append that is wrong; the others succeed', { timeout }, async () => {
      const { journal } = store();
      const pids = Array.from({ length: 8 }, (_, i) => unique(`independent${i}`));
      const results = await Promise.allSettled(
        pids.map((pid, i) => {
          if (i === 3) return journal.append(pid, [event('Gap', i)], { expectedSequenceNr: 5, writerId: 'w' });
          if (i === 5) return journal.append(pid, [event('Huge', 'x'.repeat(maxPayloadBytes + 1024))], { expectedSequenceNr: 0, writerId: 'w' });
          return journal.append(pid, [event('Ok', i), event('Ok', i)], { expectedSequenceNr: 0, writerId: 'w' });
        }),
      );
      results.forEach((result, i) => {
        if (i === 3) expect(result.status === 'rejected' && isConcurrencyConflict(result.reason)).toBe(true);
        else if (i === 5) expect(result.status === 'rejected' && isDataflowError(result.reason, 'serialization/payload-too-large')).toBe(true);
        else expect(result).toEqual({ status: 'fulfilled', value: { lastSequenceNr: 2 } });
      });
      for (const [i, pid] of pids.entries()) {
        expect(await journal.highestSequenceNr(pid)).toBe(i === 3 || i === 5 ? 0 : 2);
      }
    });
  });

  describe('deletes', () => {
    it('deletes every event with deleteTo above the highest and keeps the highest', { timeout }, async () => {
      const { journal } = store();
      const pid = unique('delete-above');
      await appendN(store(), pid, 3);
      await journal.deleteTo(pid, 100);
      expect(await collectAll(journal.replay(pid, 1))).toEqual([]);
      expect(await journal.highestSequenceNr(pid)).toBe(3);
      expect(isConcurrencyConflict(await failure(journal.append(pid, [event('Again', 1)], { expectedSequenceNr: 0, writerId: 'w' })))).toBe(true);
      await journal.append(pid, [event('Next', 4)], { expectedSequenceNr: 3, writerId: 'w' });
      expect((await collectAll(journal.replay(pid, 1))).map((e) => [e.sequenceNr, e.payload])).toEqual([[4, 4]]);
      expect(await journal.highestSequenceNr(pid)).toBe(4);
    });

    it('leaves deleted events out of tag queries, current and live', { timeout }, async () => {
      const { journal, queries } = store();
      const tag = unique('deleted-tag');
      const pid = unique('deleted-tagged');
      const kept = unique('kept-tagged');
      await journal.append(pid, [1, 2, 3, 4].map((n) => event('T', n, [tag])), { expectedSequenceNr: 0, writerId: 'w' });
      await journal.append(kept, [event('T', 'kept', [tag])], { expectedSequenceNr: 0, writerId: 'w' });
      await journal.deleteTo(pid, 3);
      await settle();
      const current = await collectAll(queries.eventsByTag(tag, NoOffset));
      expect(current.map((e) => [e.persistenceId, e.sequenceNr]).sort()).toEqual([[kept, 1], [pid, 4]].sort());
      const controller = new AbortController();
      const live = await collect(queries.eventsByTag(tag, NoOffset, { live: true, signal: controller.signal }), 2, liveTimeoutMs, controller);
      expect(live.map((e) => [e.persistenceId, e.sequenceNr]).sort()).toEqual([[kept, 1], [pid, 4]].sort());
    });
  });

  describe('snapshot edges', () => {
    it('combines sequence number and timestamp criteria in loads and deletes', { timeout }, async () => {
      const { snapshots } = store();
      const pid = unique('snap-combined');
      await snapshots.save({ persistenceId: pid, sequenceNr: 10, timestamp: 3_000 }, { at: 10 });
      await snapshots.save({ persistenceId: pid, sequenceNr: 20, timestamp: 1_000 }, { at: 20 });
      await snapshots.save({ persistenceId: pid, sequenceNr: 30, timestamp: 2_000 }, { at: 30 });
      const at = async (criteria: Parameters<typeof snapshots.loadLatest>[1]): Promise<number | undefined> =>
        (await snapshots.loadLatest(pid, criteria))?.metadata.sequenceNr;
      expect(await at({ maxSequenceNr: 25, minTimestamp: 2_000 })).toBe(10);
      expect(await at({ maxSequenceNr: 30, maxTimestamp: 1_500 })).toBe(20);
      expect(await at({ minSequenceNr: 15, minTimestamp: 1_500 })).toBe(30);
      expect(await at({ minSequenceNr: 15, maxSequenceNr: 25, minTimestamp: 1_500 })).toBeUndefined();
      // Deletes only what matches both: 30 (seq >= 15 and ts >= 1 500), not 20 (ts 1 000) nor 10 (seq 10).
      await snapshots.delete(pid, { minSequenceNr: 15, minTimestamp: 1_500 });
      expect(await at({})).toBe(20);
      expect(await at({ maxSequenceNr: 15 })).toBe(10);
    });

    it('deletes a single snapshot by its sequence number', { timeout }, async () => {
      const { snapshots } = store();
      const pid = unique('snap-single');
      for (const n of [1, 2, 3]) await snapshots.save({ persistenceId: pid, sequenceNr: n * 10, timestamp: n }, { n });
      await snapshots.delete(pid, { minSequenceNr: 20, maxSequenceNr: 20 });
      expect((await snapshots.loadLatest(pid))?.state).toEqual({ n: 3 });
      expect((await snapshots.loadLatest(pid, { maxSequenceNr: 29 }))?.state).toEqual({ n: 1 });
      await snapshots.delete(pid, { minSequenceNr: 30, maxSequenceNr: 30 });
      expect((await snapshots.loadLatest(pid))?.state).toEqual({ n: 1 });
    });

    it('refuses a snapshot over the size limit and keeps the previous one', { timeout }, async () => {
      const { snapshots } = store();
      const pid = unique('snap-huge');
      await snapshots.save({ persistenceId: pid, sequenceNr: 1, timestamp: 1 }, 'small');
      const error = await failure(snapshots.save({ persistenceId: pid, sequenceNr: 2, timestamp: 2 }, 'x'.repeat(maxPayloadBytes + 1024)));
      expect(isDataflowError(error, 'serialization/payload-too-large')).toBe(true);
      expect((error as { retriable: boolean }).retriable).toBe(false);
      expect(await snapshots.loadLatest(pid)).toMatchObject({ metadata: { sequenceNr: 1 }, state: 'small' });
    });
  });

  describe('current queries', () => {
    it('do not return events appended after they started', { timeout }, async () => {
      const { journal, queries } = store();
      const tag = unique('current-end');
      const pid = unique('current-end');
      await journal.append(pid, Array.from({ length: 30 }, (_, i) => event('Before', i, [tag])), { expectedSequenceNr: 0, writerId: 'w' });
      await settle();
      const iterator = queries.eventsByTag(tag, NoOffset)[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.done).toBe(false);
      await journal.append(pid, Array.from({ length: 30 }, (_, i) => event('After', i, [tag])), { expectedSequenceNr: 30, writerId: 'w' });
      await settle();
      const rest: string[] = [];
      for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) rest.push(next.value.eventType);
      expect(rest).toHaveLength(29);
      expect(new Set(rest)).toEqual(new Set(['Before']));
      const ids = queries.persistenceIds()[Symbol.asyncIterator]();
      const firstId = await ids.next();
      expect(firstId.done).toBe(false);
      const late = unique('current-ids-late');
      await appendN(store(), late, 1);
      await settle();
      const seen: string[] = [];
      for (let next = await ids.next(); next.done !== true; next = await ids.next()) seen.push(next.value);
      expect(seen).not.toContain(late);
    });
  });
}
