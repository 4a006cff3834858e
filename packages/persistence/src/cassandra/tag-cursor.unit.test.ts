import { describe, expect, it } from 'vitest';
import { types } from 'cassandra-driver';
import { cursorAt, mergedPages, MIN_UUID, prefetched } from './tag-cursor.js';

describe('prefetched', () => {
  it('asks for the next page before the current one is consumed, and keeps the order', async () => {
    const asked: number[] = [];
    async function* pages(): AsyncIterable<number> {
      for (let i = 1; i <= 3; i++) {
        asked.push(i);
        await Promise.resolve();
        yield i;
      }
    }
    const got: number[] = [];
    for await (const page of prefetched(pages())) {
      got.push(page);
      // While page n is handled, page n + 1 is already being read.
      if (page < 3) expect(asked).toContain(page + 1);
    }
    expect(got).toEqual([1, 2, 3]);
  });

  it('waits for the page read ahead when the consumer stops early, and closes the source', async () => {
    let closed = false;
    let failedReadAhead = false;
    async function* pages(): AsyncIterable<number> {
      try {
        yield await Promise.resolve(1);
        failedReadAhead = true;
        throw new Error('page 2 failed');
      } finally {
        closed = true;
      }
    }
    for await (const page of prefetched(pages())) {
      expect(page).toBe(1);
      break;
    }
    // The read-ahead's failure belongs to a page nobody wants: it neither escapes nor goes unhandled.
    expect(failedReadAhead).toBe(true);
    expect(closed).toBe(true);
  });

  it('passes a failure of a page the consumer asked for', async () => {
    async function* pages(): AsyncIterable<number> {
      yield await Promise.resolve(1);
      throw new Error('page 2 failed');
    }
    const got: number[] = [];
    await expect(
      (async () => {
        for await (const page of prefetched(pages())) got.push(page);
      })(),
    ).rejects.toThrow('page 2 failed');
    expect(got).toEqual([1]);
  });
});

describe('cursorAt', () => {
  it('starts before every row, or before the first row of a millisecond', () => {
    expect(cursorAt(undefined, 1000)).toEqual({ bucket: Number.MIN_SAFE_INTEGER, lower: MIN_UUID, lowerMs: Number.NEGATIVE_INFINITY });
    const at = cursorAt(12_345, 1000);
    expect(at.bucket).toBe(12);
    expect(at.lowerMs).toBe(12_345);
    expect(at.lower.getDate().getTime()).toBe(12_345);
  });
});

describe('mergedPages', () => {
  const nodeId = Buffer.from('000000000001', 'hex');
  const clockId = Buffer.from('0001', 'hex');
  const row = (ms: number, ticks: number, name: string): Record<string, unknown> => ({
    timestamp: types.TimeUuid.fromDate(new Date(ms), ticks, nodeId, clockId),
    name,
  });
  async function* pages(...list: Array<Array<Record<string, unknown>>>): AsyncIterable<Array<Record<string, unknown>>> {
    for (const page of list) yield await Promise.resolve(page);
  }

  it('merges sources in timeuuid order (time, then ticks; not byte order), keeping each source in its order', async () => {
    // 2^32 ms apart is where the low time field wraps: byte order of the UUID would put the later one first.
    const wrap = 0x1_0000_0000 / 10_000;
    const a = pages([row(1000, 0, 'a1'), row(1000, 5, 'a2')], [], [row(1000 + wrap, 0, 'a3')]);
    const b = pages([row(1000, 3, 'b1')], [row(2000, 0, 'b2'), row(1000 + 2 * wrap, 0, 'b3')]);
    const c = pages();
    const got: string[] = [];
    for await (const page of mergedPages([a, b, c])) got.push(...page.map((r) => r['name'] as string));
    expect(got).toEqual(['a1', 'b1', 'a2', 'b2', 'a3', 'b3']);
  });

  it('closes every source when the consumer stops early', async () => {
    const closed: string[] = [];
    async function* source(name: string): AsyncIterable<Array<Record<string, unknown>>> {
      try {
        yield await Promise.resolve([row(1, 0, name)]);
        yield [row(2, 0, name)];
      } finally {
        closed.push(name);
      }
    }
    for await (const page of mergedPages([source('x'), source('y')])) {
      expect(page).toHaveLength(1);
      break;
    }
    expect(closed.sort()).toEqual(['x', 'y']);
  });
});
