import { describe, expect, it } from 'vitest';
import { none } from './effect.js';
import { applyEvents, decideCommand, eventSourced } from './event-sourced.js';
import { counter } from './examples/counter.js';
import { UnknownEventVersionError } from './event-sourcing-errors.js';
import { crossesSnapshotPolicy, every, snapshotWhen } from './snapshot-policy.js';

describe('eventSourced', () => {
  it('decides a command and folds its events without a system', () => {
    const { events, state, effect } = decideCommand(counter, { total: 1 }, { type: 'add', n: 2 });
    expect(events).toEqual([{ type: 'added', n: 2 }]);
    expect(state).toEqual({ total: 3 });
    expect(effect.kind).toBe('persist');
    expect(decideCommand(counter, { total: 1 }, { type: 'add', n: -1 }).effect.kind).toBe('unhandled');
    expect(applyEvents(counter, counter.emptyState, [{ type: 'added', n: 1 }, { type: 'reset' }, { type: 'added', n: 5 }])).toEqual({ total: 5 });
  });

  it('uses the type field as event type, and the tagger for tags', () => {
    expect(counter.eventTypeOf({ type: 'added', n: 1 })).toBe('added');
    expect(counter.tagsOf({ type: 'reset' })).toEqual(['counter']);
    expect(counter.persistenceId('7')).toBe('counter-7');
  });

  it('upcasts stored payloads step by step to the current schema version', () => {
    const behavior = eventSourced<never, { type: 'renamed'; fullName: string }, null>({
      persistenceId: (id) => id,
      emptyState: null,
      onCommand: () => {
        throw new Error('not used');
      },
      onEvent: (s) => s,
      schemaVersion: { renamed: 3 },
      upcasters: {
        renamed: {
          1: (p) => ({ ...(p as object), name: (p as { first: string }).first }),
          2: (p) => ({ type: 'renamed', fullName: (p as { name: string }).name }),
        },
      },
    });
    expect(behavior.upcast('renamed', 1, { type: 'renamed', first: 'Ada' })).toEqual({ type: 'renamed', fullName: 'Ada' });
    expect(behavior.upcast('renamed', 3, { type: 'renamed', fullName: 'Bo' })).toEqual({ type: 'renamed', fullName: 'Bo' });
    expect(() => behavior.upcast('renamed', 4, {})).toThrow(UnknownEventVersionError);
    expect(() => behavior.upcast('other', 0, {})).toThrow(UnknownEventVersionError);
  });

  it('refuses invalid settings', () => {
    const base = { persistenceId: (id: string) => id, emptyState: 0, onCommand: () => none<never, number>(), onEvent: (s: number) => s };
    expect(() => eventSourced({ ...base, stashCapacity: -1 })).toThrow(RangeError);
    expect(() => eventSourced({ ...base, onPersistFailure: { minBackoffMs: 10, maxBackoffMs: 5 } })).toThrow(RangeError);
    expect(() => every(0)).toThrow(RangeError);
    expect(() => every(10, { keep: 0 })).toThrow(RangeError);
  });
});

describe('snapshot policy', () => {
  const states = (i: number): number => i;

  it('every(n) is crossed by an append that writes a multiple of n', () => {
    expect(crossesSnapshotPolicy(every(3), ['a'], 3, states)).toBe(true);
    expect(crossesSnapshotPolicy(every(3), ['a'], 4, states)).toBe(false);
    expect(crossesSnapshotPolicy(every(3), ['a', 'b', 'c'], 4, states)).toBe(true); // 4, 5, 6
    expect(crossesSnapshotPolicy(every(3), ['a', 'b'], 4, states)).toBe(false); // 4, 5
    expect(crossesSnapshotPolicy(undefined, ['a'], 3, states)).toBe(false);
  });

  it('a predicate sees each event with the state after it', () => {
    const seen: [number, string, number][] = [];
    const policy = snapshotWhen<string, number>((state, event, sequenceNr) => {
      seen.push([state, event, sequenceNr]);
      return event === 'close';
    });
    expect(crossesSnapshotPolicy(policy, ['a', 'close'], 7, states)).toBe(true);
    expect(seen).toEqual([
      [0, 'a', 7],
      [1, 'close', 8],
    ]);
    expect(crossesSnapshotPolicy(every<string, number>(100, { when: (_s, e) => e === 'close' }), ['close'], 1, states)).toBe(true);
  });
});
