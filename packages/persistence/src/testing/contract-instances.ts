/**
 * Contract cases with more than one plugin instance on the same storage (as
 * two processes would open it): racing appends on the same ids, takeover
 * after a close and after a crash, `close()` waiting for in-flight appends,
 * and recovery of an entity through core's `recoverState`.
 */
import {
  eventSourced,
  isConcurrencyConflict,
  isWriteOutcomeUnknown,
  isWriterLeaseHeld,
  none,
  recoverState,
  type NewEvent,
  type PersistencePlugin,
} from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { appendAtHead, collectAll, event, unique, type ContractContext } from './contract-helpers.js';

/** A failed append that another writer explains: it lost the race (or cannot tell whether it won). */
function lostRace(error: unknown): boolean {
  return isConcurrencyConflict(error) || isWriterLeaseHeld(error) || isWriteOutcomeUnknown(error);
}

interface Acknowledged {
  readonly pid: string;
  readonly sequenceNr: number;
  readonly payload: { readonly writer: string; readonly n: number };
}

const counter = eventSourced<never, { readonly type: 'added'; readonly n: number }, { readonly total: number; readonly count: number }>({
  persistenceId: (id) => id,
  emptyState: { total: 0, count: 0 },
  onCommand: () => none(),
  onEvent: (state, e) => ({ total: state.total + e.n, count: state.count + 1 }),
});

export function describeInstanceCases(context: ContractContext): void {
  const { store, openInstance, liveTimeoutMs, timeout } = context;

  describe('two instances', () => {
    it('race on the same ids: per round at most one append wins and no acknowledged event is overwritten or lost', { timeout: timeout * 2 }, async () => {
      const a = await openInstance();
      const b = await openInstance();
      try {
        const pids = Array.from({ length: 4 }, (_, i) => unique(`two-instances${i}`));
        const acknowledged: Acknowledged[] = [];
        const write = async (plugin: PersistencePlugin, writer: string, pid: string, expected: number, n: number): Promise<boolean> => {
          const payload = { writer, n };
          try {
            await plugin.journal.append(pid, [event('Raced', payload)], { expectedSequenceNr: expected, writerId: writer });
            acknowledged.push({ pid, sequenceNr: expected + 1, payload });
            return true;
          } catch (error) {
            if (!lostRace(error)) throw error;
            return false;
          }
        };
        for (let round = 0; round < 6; round++) {
          await Promise.all(
            pids.map(async (pid) => {
              const expected = await store().journal.highestSequenceNr(pid);
              const won = await Promise.all([write(a.plugin, 'a', pid, expected, round), write(b.plugin, 'b', pid, expected, round)]);
              // Both cannot win; with a lease, both may lose a round (neither holds it yet).
              expect(won.filter(Boolean).length).toBeLessThanOrEqual(1);
            }),
          );
        }
        for (const pid of pids) {
          const stored = await collectAll(store().journal.replay(pid, 1));
          expect(stored.map((e) => e.sequenceNr)).toEqual(stored.map((_, i) => i + 1));
          const bySeq = new Map(stored.map((e) => [e.sequenceNr, e]));
          for (const ack of acknowledged.filter((x) => x.pid === pid)) {
            expect(bySeq.get(ack.sequenceNr)?.payload).toEqual(ack.payload);
            expect(bySeq.get(ack.sequenceNr)?.writerId).toBe(ack.payload.writer);
          }
        }
        expect(acknowledged.length).toBeGreaterThan(0);
      } finally {
        await Promise.allSettled([a.plugin.close(), b.plugin.close()]);
      }
    });
  });

  describe('takeover', () => {
    it('lets a new instance continue an id after the old one closed', { timeout }, async () => {
      const pid = unique('takeover-close');
      const old = await openInstance();
      await old.plugin.journal.append(pid, [event('Old', 1), event('Old', 2)], { expectedSequenceNr: 0, writerId: 'old' });
      await old.plugin.close();
      const next = await openInstance();
      try {
        expect(await next.plugin.journal.highestSequenceNr(pid)).toBe(2);
        expect(await appendAtHead(next.plugin, pid, 3, 'new', liveTimeoutMs)).toBe(3);
        const stored = await collectAll(store().journal.replay(pid, 1));
        expect(stored.map((e) => [e.sequenceNr, e.writerId, e.payload])).toEqual([
          [1, 'old', 1],
          [2, 'old', 2],
          [3, 'new', 3],
        ]);
      } finally {
        await next.plugin.close();
      }
    });

    it('lets a new instance continue an id after the old one crashed mid-append, keeping every acknowledged event', { timeout: timeout * 2 }, async () => {
      const pid = unique('takeover-crash');
      const old = await openInstance();
      const acknowledged: number[] = [];
      for (let n = 1; n <= 3; n++) {
        await old.plugin.journal.append(pid, [event('Old', n)], { expectedSequenceNr: n - 1, writerId: 'old' });
        acknowledged.push(n);
      }
      // Appends in flight when the instance dies: each may or may not land, but never half of one.
      const inFlight = [4, 5, 6].map((n) =>
        old.plugin.journal.append(pid, [event('Old', n), event('Old', n)], { expectedSequenceNr: 3 + (n - 4) * 2, writerId: 'old' }).then(
          () => acknowledged.push(n),
          () => undefined,
        ),
      );
      await old.crash();
      await Promise.all(inFlight);
      const next = await openInstance();
      try {
        const head = await next.plugin.journal.highestSequenceNr(pid);
        expect(head).toBeGreaterThanOrEqual(3);
        expect((head - 3) % 2).toBe(0);
        const seq = await appendAtHead(next.plugin, pid, 'new', 'new', liveTimeoutMs);
        expect(seq).toBe(head + 1);
        const stored = await collectAll(next.plugin.journal.replay(pid, 1));
        expect(stored.map((e) => e.sequenceNr)).toEqual(stored.map((_, i) => i + 1));
        const payloads = stored.map((e) => e.payload);
        for (const n of acknowledged) expect(payloads).toContain(n);
        expect(stored.at(-1)).toMatchObject({ writerId: 'new', payload: 'new' });
      } finally {
        await next.plugin.close();
      }
    });
  });

  describe('close', () => {
    it('waits for appends in flight before it resolves', { timeout }, async () => {
      const own = await openInstance();
      const pids = Array.from({ length: 20 }, (_, i) => unique(`close-wait${i}`));
      const settled = new Set<string>();
      const appends = pids.map((pid) =>
        own.plugin.journal.append(pid, [event('Pending', pid), event('Pending', pid)], { expectedSequenceNr: 0, writerId: 'closing' }).finally(() => settled.add(pid)),
      );
      await own.plugin.close();
      expect(settled.size).toBe(pids.length);
      const results = await Promise.allSettled(appends);
      expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
      for (const pid of pids) expect(await store().journal.highestSequenceNr(pid)).toBe(2);
    });
  });

  describe('recovery', () => {
    it("recovers an entity through core's recoverState: snapshot, events after it, deleted events behind it", { timeout }, async () => {
      const plugin = store();
      const pid = unique('recover');
      const added = (n: number): NewEvent => ({ eventType: 'added', payload: { type: 'added', n } });
      await plugin.journal.append(pid, [1, 2, 3, 4].map(added), { expectedSequenceNr: 0, writerId: 'w' });
      expect(await recoverState(counter, pid, plugin)).toMatchObject({ state: { total: 10, count: 4 }, sequenceNr: 4, eventsReplayed: 4 });
      await plugin.snapshots.save({ persistenceId: pid, sequenceNr: 4, timestamp: Date.now() }, { total: 10, count: 4 });
      await plugin.journal.deleteTo(pid, 4);
      await plugin.journal.append(pid, [5, 6].map(added), { expectedSequenceNr: 4, writerId: 'w' });
      expect(await recoverState(counter, pid, plugin)).toEqual({ state: { total: 21, count: 6 }, sequenceNr: 6, snapshotSequenceNr: 4, eventsReplayed: 2 });
      // Another instance recovers the same state.
      const other = await openInstance();
      try {
        expect((await recoverState(counter, pid, other.plugin)).state).toEqual({ total: 21, count: 6 });
      } finally {
        await other.plugin.close();
      }
    });
  });
}
