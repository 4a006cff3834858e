/**
 * Grouping of a stream by size and time, driven by a hand-fed source and
 * vitest's fake timers (no store involved).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { groupedWithinMs } from './grouped-within.js';

/** An async source whose items the test pushes; `end()` finishes it. */
function feed<T>(): { readonly source: AsyncIterable<T>; readonly push: (item: T) => void; readonly end: () => void; readonly returned: () => boolean } {
  const items: T[] = [];
  let ended = false;
  let returned = false;
  let wake: (() => void) | undefined;
  const source: AsyncIterable<T> = {
    [Symbol.asyncIterator]: () => ({
      next: async (): Promise<IteratorResult<T>> => {
        for (;;) {
          const item = items.shift();
          if (item !== undefined) return { value: item, done: false };
          if (ended) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (wake = resolve));
        }
      },
      return: (): Promise<IteratorResult<T>> => {
        returned = true;
        return Promise.resolve({ value: undefined, done: true });
      },
    }),
  };
  return {
    source,
    push: (item) => {
      items.push(item);
      wake?.();
    },
    end: () => {
      ended = true;
      wake?.();
    },
    returned: () => returned,
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('groupedWithinMs', () => {
  it('hands over full groups at once and flushes the rest when the source ends', async () => {
    const { source, push, end } = feed<number>();
    for (let i = 1; i <= 7; i++) push(i);
    end();
    const groups: number[][] = [];
    for await (const group of groupedWithinMs(source, 3, 60_000, new AbortController().signal)) groups.push(group);
    expect(groups).toEqual([[1, 2, 3], [4, 5, 6], [7]]);
  });

  it('hands over a partial group once withinMs passed since its first item, while the source stays open', async () => {
    vi.useFakeTimers();
    const { source, push, end } = feed<string>();
    const iterator = groupedWithinMs(source, 10, 200, new AbortController().signal)[Symbol.asyncIterator]();
    push('a');
    push('b');
    const first = iterator.next();
    let settled = false;
    void first.then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(150);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(60);
    expect(await first).toEqual({ value: ['a', 'b'], done: false });

    const second = iterator.next();
    push('c');
    await vi.advanceTimersByTimeAsync(210);
    expect(await second).toEqual({ value: ['c'], done: false });
    end();
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });

  it('waits without a deadline while no group is open', async () => {
    vi.useFakeTimers();
    const { source, push } = feed<number>();
    const iterator = groupedWithinMs(source, 2, 100, new AbortController().signal)[Symbol.asyncIterator]();
    const next = iterator.next();
    let settled = false;
    void next.then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(settled).toBe(false);
    push(1);
    push(2);
    expect(await next).toEqual({ value: [1, 2], done: false });
  });

  it('stops after the group in hand when the signal aborts, and closes the source', async () => {
    const { source, push, returned } = feed<number>();
    const controller = new AbortController();
    push(1);
    push(2);
    const groups: number[][] = [];
    for await (const group of groupedWithinMs(source, 2, 60_000, controller.signal)) {
      groups.push(group);
      controller.abort();
      push(3);
    }
    expect(groups).toEqual([[1, 2]]);
    expect(returned()).toBe(true);
  });
});
