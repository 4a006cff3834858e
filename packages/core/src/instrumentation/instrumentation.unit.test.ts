import { describe, expect, it } from 'vitest';
import { createInstrumentation } from './instrumentation.js';

type TestEvent = { readonly type: 'a.happened'; readonly n: number } | { readonly type: 'b.happened'; readonly label: string };

describe('instrumentation', () => {
  it('delivers events to listeners of their type and to wildcard listeners', () => {
    const events = createInstrumentation<TestEvent>();
    const seenA: number[] = [];
    const seenAll: string[] = [];
    events.on('a.happened', (e) => seenA.push(e.n));
    events.on('*', (e) => seenAll.push(e.type));
    events.emit({ type: 'a.happened', n: 1 });
    events.emit({ type: 'b.happened', label: 'x' });
    expect(seenA).toEqual([1]);
    expect(seenAll).toEqual(['a.happened', 'b.happened']);
  });

  it('stops delivering after unsubscribe', () => {
    const events = createInstrumentation<TestEvent>();
    const seen: number[] = [];
    const off = events.on('a.happened', (e) => seen.push(e.n));
    events.emit({ type: 'a.happened', n: 1 });
    off();
    off();
    events.emit({ type: 'a.happened', n: 2 });
    expect(seen).toEqual([1]);
  });

  it('reports a throwing listener without stopping the others', () => {
    const failures: unknown[] = [];
    const events = createInstrumentation<TestEvent>({ onListenerError: (error) => failures.push(error) });
    const seen: number[] = [];
    events.on('a.happened', () => {
      throw new Error('listener broke');
    });
    events.on('a.happened', (e) => seen.push(e.n));
    events.emit({ type: 'a.happened', n: 7 });
    expect(seen).toEqual([7]);
    expect(failures).toEqual([new Error('listener broke')]);
  });
});
