/**
 * Contract cases for `eventsBySlices` (the slice query of Pekko's r2dbc
 * plugin): slice range and entity type filters, resuming from an offset,
 * live delivery, deleted events (as `eventsByTag` treats them) and the
 * boundary slices 0 and 1023. Registered by `describeJournalContract` for
 * every store: each read journal must offer the query.
 */
import { randomUUID } from 'node:crypto';
import { NoOffset, SLICE_COUNT, sliceForPersistenceId, supportsEventsBySlices, type EventEnvelope, type QueryOptions, type Offset, type ReadJournal, type SliceQueries } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { collect, collectAll, event, failure, key, offsetAt } from './contract-helpers.js';
import type { ContractContext } from './contract-helpers.js';

/** A fresh entity type (no `-` in it) so cases never see each other's events. */
function entityType(prefix: string): string {
  return `${prefix}${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

/** A persistence id of `type` whose slice is `slice` (found by trying suffixes). */
function idInSlice(type: string, slice: number, exclude: ReadonlySet<string> = new Set()): string {
  for (let i = 0; ; i++) {
    const pid = `${type}-${i}`;
    if (!exclude.has(pid) && sliceForPersistenceId(pid) === slice) return pid;
  }
}

function sliceQueries(queries: ReadJournal): ReadJournal & SliceQueries {
  if (!supportsEventsBySlices(queries)) throw new Error('the store under test does not offer eventsBySlices');
  return queries;
}

function bySlices(queries: ReadJournal, type: string, min: number, max: number, offset: Offset = NoOffset, options: QueryOptions = {}): AsyncIterable<EventEnvelope> {
  return sliceQueries(queries).eventsBySlices(type, min, max, offset, options);
}

/** Registers the `eventsBySlices` cases under the current `describe`. */
export function describeSliceCases({ store, settle, liveTimeoutMs, timeout }: ContractContext): void {
  describe('eventsBySlices', () => {
    it('delivers only the ids of the entity type whose slice is in range, in order per id, resumable from any offset', { timeout }, async () => {
      const { journal, queries } = store();
      const type = entityType('slc');
      const other = entityType('oth');
      // Two ids in each of slices 10, 11, 12, 500; one of another entity type in slice 11.
      const pids: string[] = [];
      for (const slice of [10, 11, 12, 500]) {
        const a = idInSlice(type, slice);
        pids.push(a, idInSlice(type, slice, new Set([a])));
      }
      const foreign = idInSlice(other, 11);
      for (let round = 0; round < 2; round++) {
        for (const pid of [...pids, foreign]) await journal.append(pid, [event('S', { pid, round }, ['t'])], { expectedSequenceNr: round, writerId: 'w' });
      }
      await settle();
      const got = await collectAll(bySlices(queries, type, 11, 12));
      const expected = pids.filter((pid) => [11, 12].includes(sliceForPersistenceId(pid)));
      expect(new Set(got.map((e) => e.persistenceId))).toEqual(new Set(expected));
      expect(got).toHaveLength(expected.length * 2);
      for (const pid of expected) expect(got.filter((e) => e.persistenceId === pid).map((e) => e.sequenceNr)).toEqual([1, 2]);
      // Resuming from each returned offset yields exactly the rest.
      for (const cut of [1, 3, got.length]) {
        const rest = await collectAll(bySlices(queries, type, 11, 12, offsetAt(got, cut - 1)));
        expect(rest.map(key)).toEqual(got.slice(cut).map(key));
      }
      // The whole range sees every id of the type, none of the other type.
      const all = await collectAll(bySlices(queries, type, 0, SLICE_COUNT - 1));
      expect(new Set(all.map((e) => e.persistenceId))).toEqual(new Set(pids));
      expect(await collectAll(bySlices(queries, entityType('none'), 0, SLICE_COUNT - 1))).toEqual([]);
    });

    it('reaches the boundary slices 0 and 1023', { timeout }, async () => {
      const { journal, queries } = store();
      const type = entityType('edge');
      const first = idInSlice(type, 0);
      const last = idInSlice(type, SLICE_COUNT - 1);
      const middle = idInSlice(type, 512);
      for (const pid of [first, last, middle]) await journal.append(pid, [event('B', pid)], { expectedSequenceNr: 0, writerId: 'w' });
      await settle();
      expect((await collectAll(bySlices(queries, type, 0, 0))).map((e) => e.persistenceId)).toEqual([first]);
      expect((await collectAll(bySlices(queries, type, SLICE_COUNT - 1, SLICE_COUNT - 1))).map((e) => e.persistenceId)).toEqual([last]);
      expect((await collectAll(bySlices(queries, type, 1, SLICE_COUNT - 2))).map((e) => e.persistenceId)).toEqual([middle]);
    });

    it('refuses a slice range outside 0..1023 naming it', { timeout }, async () => {
      const { queries } = store();
      const error = await failure(collectAll(bySlices(queries, 'x', 0, SLICE_COUNT)));
      expect(String(error)).toMatch(/maxSlice/);
      expect(String(await failure(collectAll(bySlices(queries, 'x', 5, 4))))).toMatch(/minSlice/);
    });

    it('delivers events written while a live stream runs exactly once, and resumes live from an offset', { timeout }, async () => {
      const { journal, queries } = store();
      const type = entityType('live');
      const inRange = [idInSlice(type, 100), idInSlice(type, 101), idInSlice(type, 200)];
      const outside = idInSlice(type, 300);
      const rounds = 10;
      const total = inRange.length * rounds;
      const controller = new AbortController();
      const reading = collect(bySlices(queries, type, 100, 299, NoOffset, { live: true, signal: controller.signal }), total, liveTimeoutMs, controller);
      await Promise.all(
        [...inRange, outside].map(async (pid) => {
          for (let i = 0; i < rounds; i++) await journal.append(pid, [event('L', { pid, i })], { expectedSequenceNr: i, writerId: 'w' });
        }),
      );
      const got = await reading;
      expect(new Set(got.map(key)).size).toBe(total);
      for (const pid of inRange) expect(got.filter((e) => e.persistenceId === pid).map((e) => e.sequenceNr)).toEqual(Array.from({ length: rounds }, (_, i) => i + 1));
      expect(got.some((e) => e.persistenceId === outside)).toBe(false);
      const cut = Math.floor(total / 2);
      const resumed = new AbortController();
      const rest = await collect(bySlices(queries, type, 100, 299, offsetAt(got, cut - 1), { live: true, signal: resumed.signal }), total - cut, liveTimeoutMs, resumed);
      expect(rest.map(key)).toEqual(got.slice(cut).map(key));
    });

    it('leaves out deleted events as eventsByTag does', { timeout }, async () => {
      const { journal, queries } = store();
      const type = entityType('del');
      const tag = `tag-${type}`;
      const pid = idInSlice(type, 7);
      await journal.append(pid, [event('D', 1, [tag]), event('D', 2, [tag]), event('D', 3, [tag])], { expectedSequenceNr: 0, writerId: 'w' });
      await journal.deleteTo(pid, 2);
      await settle();
      const tagged = (await collectAll(queries.eventsByTag(tag, NoOffset))).map((e) => e.sequenceNr);
      const sliced = (await collectAll(bySlices(queries, type, 7, 7))).map((e) => e.sequenceNr);
      expect(sliced).toEqual([3]);
      expect(sliced).toEqual(tagged);
    });
  });
}
