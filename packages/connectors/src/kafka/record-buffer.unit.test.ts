import { describe, expect, it } from 'vitest';
import type { ConsumedRecord } from './kafka-port.js';
import { RecordBuffer } from './record-buffer.js';

const rec = (partition: number, offset: number): ConsumedRecord => ({ topic: 't', partition, offset: BigInt(offset), key: null, value: null, headers: new Map(), timestamp: 0 });
const offsets = (rs: readonly ConsumedRecord[]): string[] => rs.map((r) => `${r.partition}@${r.offset}`);

describe('RecordBuffer', () => {
  it('is bounded: offers are counted, space frees as records are taken', async () => {
    const b = new RecordBuffer(2);
    b.assign([{ topic: 't', partition: 0 }]);
    expect(b.offer(rec(0, 0))).toBe(true);
    expect(b.offer(rec(0, 1))).toBe(true);
    expect(b.hasSpace()).toBe(false);
    let freed = false;
    const waiting = b.waitForSpace(10_000).then(() => (freed = true));
    expect(offsets(b.take(1))).toEqual(['0@0']);
    await waiting;
    expect(freed).toBe(true);
    expect(b.size).toBe(1);
  });

  it('skips re-fetched duplicates and refuses records of unassigned partitions', () => {
    const b = new RecordBuffer(10);
    b.assign([{ topic: 't', partition: 0 }]);
    b.offer(rec(0, 5));
    expect(b.offer(rec(0, 5))).toBe(true);
    expect(b.offer(rec(1, 0))).toBe(false);
    expect(offsets(b.take(10))).toEqual(['0@5']);
  });

  it('pause drops buffered records and rewinds to the next undelivered offset; resume reports it', () => {
    const b = new RecordBuffer(10);
    b.assign([{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }]);
    for (const o of [0, 1, 2, 3]) b.offer(rec(0, o));
    b.offer(rec(1, 0));
    expect(offsets(b.take(1))).toEqual(['0@0']);
    b.pause([{ topic: 't', partition: 0 }]);
    expect(b.size).toBe(1);
    expect(b.offer(rec(0, 4))).toBe(false);
    expect(offsets(b.take(10))).toEqual(['1@0']);
    expect(b.fetchable().map((p) => p.partition)).toEqual([1]);
    expect(b.resume([{ topic: 't', partition: 0 }])).toEqual([{ topic: 't', partition: 0, offset: 1n }]);
    expect(b.fetchable().find((p) => p.partition === 0)?.fetchPosition).toBe(1n);
  });

  it('seek discards buffered records and fetches started under the old epoch', () => {
    const b = new RecordBuffer(10);
    b.assign([{ topic: 't', partition: 0 }]);
    const epoch = b.epochOf('t', 0);
    for (const o of [0, 1, 2]) b.offer(rec(0, o), epoch);
    b.seek('t', 0, 7n);
    expect(b.offer(rec(0, 3), epoch)).toBe(false);
    expect(b.offer(rec(0, 7), b.epochOf('t', 0))).toBe(true);
    expect(offsets(b.take(10))).toEqual(['0@7']);
    expect(b.seek('t', 9, 0n)).toBe(false);
  });

  it('hands out partitions in rotation and ends waits on close', async () => {
    const b = new RecordBuffer(10);
    b.assign([{ topic: 't', partition: 0 }, { topic: 't', partition: 1 }]);
    for (const o of [0, 1, 2]) {
      b.offer(rec(0, o));
      b.offer(rec(1, o));
    }
    expect(offsets(b.take(2))).toEqual(['0@0', '0@1']);
    expect(offsets(b.take(2))).toEqual(['1@0', '1@1']);
    const empty = new RecordBuffer(1);
    const wait = empty.waitForRecords(60_000);
    empty.close();
    await wait;
    expect(empty.closed).toBe(true);
  });
});
