import { describe, expect, it } from 'vitest';
import type { Offset } from '@dataflow/core';
import { TagOffsetTracker } from './tag-offset.js';

type TimestampOffset = Extract<Offset, { kind: 'timestamp' }>;

function timestamp(offset: Offset): TimestampOffset {
  if (offset.kind !== 'timestamp') throw new Error(`expected a timestamp offset, got ${offset.kind}`);
  return offset;
}

/** What `seen` must hold for `value`: the last sequence number of every id with a delivery at or after it. */
function expectedSeen(deliveries: ReadonlyArray<{ id: string; seq: number; at: number }>, upTo: number, value: number): Record<string, number> {
  const last = new Map<string, { seq: number; at: number }>();
  for (const d of deliveries.slice(0, upTo)) last.set(d.id, { seq: d.seq, at: Math.max(d.at, last.get(d.id)?.at ?? d.at) });
  const seen: Record<string, number> = {};
  for (const [id, { seq, at }] of last) if (at >= value) Object.defineProperty(seen, id, { value: seq, enumerable: true });
  return seen;
}

describe('TagOffsetTracker', () => {
  it('keeps offsets bounded with 100 000 ids: only ids within the window, at most maxSeen', () => {
    const tracker = new TagOffsetTracker({ windowMs: 1000, maxSeen: 500 });
    let largest = 0;
    let last: TimestampOffset | undefined;
    for (let i = 0; i < 100_000; i++) {
      // 10 events per ms: 10 000 ids per second of row time, so the window alone would hold 10 000.
      last = timestamp(tracker.delivered(`pid-${i}`, 1, 1_000_000 + Math.floor(i / 10)));
      if (i % 1000 === 999) largest = Math.max(largest, JSON.stringify(last).length);
    }
    if (last === undefined) throw new Error('no offset');
    expect(Object.keys(last.seen).length).toBeLessThanOrEqual(500);
    // The copy-everything offset was 100 000 entries (about 1.6 MB) here.
    expect(largest).toBeLessThan(500 * 20 + 100);
  });

  it('holds exactly the ids delivered at or after its value, checked against every delivery', () => {
    const tracker = new TagOffsetTracker({ windowMs: 50, maxSeen: 40 });
    const deliveries: Array<{ id: string; seq: number; at: number }> = [];
    const offsets: TimestampOffset[] = [];
    const seqs = new Map<string, number>();
    let at = 0;
    // A deterministic mix: time moves on unevenly, ids repeat, some rows come back late (backtracking).
    for (let i = 0; i < 3000; i++) {
      at += i % 7 === 0 ? 3 : 0;
      const id = `id${(i * 7919) % 97}`;
      const seq = (seqs.get(id) ?? 0) + 1;
      seqs.set(id, seq);
      const rowAt = i % 11 === 0 ? at - 30 : at;
      deliveries.push({ id, seq, at: rowAt });
      offsets.push(timestamp(tracker.delivered(id, seq, rowAt)));
    }
    for (let i = 0; i < offsets.length; i += 37) {
      const offset = offsets[i];
      if (offset === undefined) continue;
      // Read after the tracker moved on: each offset is a snapshot of its own event.
      expect(offset.seen).toEqual(expectedSeen(deliveries, i + 1, offset.value));
      expect(Object.keys(offset.seen).length).toBeLessThanOrEqual(40);
    }
    const values = offsets.map((o) => o.value);
    expect(values).toEqual([...values].sort((a, b) => a - b));
  });

  it('serializes to plain JSON, keeping ids such as __proto__ and constructor as ordinary keys', () => {
    const tracker = new TagOffsetTracker({ windowMs: 1000, maxSeen: 10 });
    tracker.delivered('__proto__', 3, 100);
    tracker.delivered('constructor', 4, 101);
    const offset = timestamp(tracker.delivered('toString', 5, 102));
    const parsed = JSON.parse(JSON.stringify(offset)) as TimestampOffset;
    expect(parsed.kind).toBe('timestamp');
    expect(parsed.value).toBe(offset.value);
    expect(Object.entries(parsed.seen).sort()).toEqual([['__proto__', 3], ['constructor', 4], ['toString', 5]]);
    expect({ ...offset }.seen).toEqual(offset.seen);
  });

  it('resumes from a stored offset: starts at its value and keeps its ids until the window passes them', () => {
    const stored = JSON.parse('{"kind":"timestamp","value":5000,"seen":{"a":7,"__proto__":2}}') as TimestampOffset;
    const tracker = new TagOffsetTracker({ windowMs: 1000, maxSeen: 100 }, stored);
    expect(tracker.start).toBe(5000);
    const early = timestamp(tracker.delivered('b', 1, 5500));
    expect(early.value).toBe(5000);
    expect(Object.entries(early.seen).sort()).toEqual([['__proto__', 2], ['a', 7], ['b', 1]]);
    const later = timestamp(tracker.delivered('c', 1, 6200));
    expect(later.value).toBe(5200);
    expect(Object.entries(later.seen).sort()).toEqual([['b', 1], ['c', 1]]);
  });

  it('refuses a stored offset that no stream made', () => {
    const bad = { kind: 'timestamp', value: 1, seen: { a: -1 } } as const;
    expect(() => new TagOffsetTracker({ windowMs: 1, maxSeen: 1 }, bad)).toThrow(/Invalid timestamp offset/);
  });

  it('never moves its value past a cap (a current query), nor past a limit set later (the re-read of a live stream)', () => {
    const tracker = new TagOffsetTracker({ windowMs: 100, maxSeen: 100, cap: 1000 });
    expect(timestamp(tracker.delivered('a', 1, 5000)).value).toBe(1000);
    tracker.limit(4000);
    const offset = timestamp(tracker.delivered('b', 1, 5001));
    expect(offset.value).toBe(4000);
    expect(Object.keys(offset.seen).sort()).toEqual(['a', 'b']);
    tracker.limit(10_000);
    expect(timestamp(tracker.delivered('c', 1, 5002)).value).toBe(4902);
  });
});
