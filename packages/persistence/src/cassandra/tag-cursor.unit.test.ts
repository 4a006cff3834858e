import { describe, expect, it } from 'vitest';
import { cursorAt, MIN_UUID, prefetched } from './tag-cursor.js';

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
