import { describe, expect, it } from 'vitest';
import { none, persist, reply, stop, unhandled } from './effect.js';

describe('effects', () => {
  it('persist of one event or a list keeps the events in order', () => {
    expect(persist({ type: 'a' }).events).toEqual([{ type: 'a' }]);
    expect(persist([{ type: 'a' }, { type: 'b' }]).events).toEqual([{ type: 'a' }, { type: 'b' }]);
    expect(persist({ type: 'a' }).kind).toBe('persist');
  });

  it('persist of an empty list persists nothing', () => {
    expect(persist([]).kind).toBe('none');
  });

  it('chains side effects in order without changing the original value', () => {
    const base = persist<{ type: string }, number>({ type: 'a' });
    const replies: number[] = [];
    const chained = base.thenRun(() => undefined).thenReply({ tell: (n: number) => replies.push(n) }, (s) => s + 1).thenStop();
    expect(base.sideEffects).toHaveLength(0);
    expect(chained.sideEffects.map((s) => s.kind)).toEqual(['run', 'reply', 'stop']);
  });

  it('none, unhandled, stop and reply persist nothing', () => {
    const replies: string[] = [];
    for (const effect of [none(), unhandled(), stop(), reply({ tell: (s: string) => replies.push(s) }, 'ok')]) {
      expect(effect.events).toEqual([]);
    }
    expect(unhandled().kind).toBe('unhandled');
    expect(stop().sideEffects).toEqual([{ kind: 'stop' }]);
  });
});
