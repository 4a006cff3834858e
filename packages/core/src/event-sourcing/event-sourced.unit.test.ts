import { afterEach, describe, expect, it } from 'vitest';
import { askWithStatus, StatusReply } from '../actor/status-reply.js';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';
import type { PersistedEvent } from '../persistence/journal.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import { none, type ReplyTo } from './effect.js';
import { applyEvents, decideCommand, eventSourced, type EventSourcedOptions } from './event-sourced.js';
import { spawnEventSourced } from './spawn-event-sourced.js';
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
    expect(() => eventSourced({ ...base, schemaVersion: { added: 0 } })).toThrow(RangeError);
    expect(() => eventSourced({ ...base, stateSchemaVersion: 1.5 })).toThrow(RangeError);
    expect(() => eventSourced({ ...base, onPersistFailure: { minBackoffMs: 10, maxBackoffMs: 5 } })).toThrow(RangeError);
    expect(() => every(0)).toThrow(RangeError);
    expect(() => every(10, { keep: 0 })).toThrow(RangeError);
  });
});

describe('event types named like Object.prototype members', () => {
  // Names an object lookup would find on Object.prototype: a function (or the prototype) instead of nothing.
  const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'] as const;
  type Name = (typeof names)[number];
  type Cmd = { readonly type: Name; readonly n: number; readonly replyTo: ReplyTo<StatusReply<number>> };
  type Evt = { readonly type: Name; readonly n: number };

  const kits: ActorTestKit[] = [];
  afterEach(async () => {
    for (const kit of kits.splice(0)) await kit.shutdown();
  });
  const behavior = (options: Partial<EventSourcedOptions<Cmd, Evt, number>>) =>
    eventSourced<Cmd, Evt, number>({
      persistenceId: (id) => `names-${id}`,
      emptyState: 0,
      onCommand: (_state, cmd, { effects }) => effects.persist({ type: cmd.type, n: cmd.n }).thenReply(cmd.replyTo, (s) => StatusReply.success(s)),
      onEvent: (state, evt) => state + evt.n,
      ...options,
    });
  const run = async (persistence: ReturnType<typeof createInMemoryPersistence>, b: ReturnType<typeof behavior>, commands: readonly Name[]): Promise<number> => {
    const kit = createActorTestKit();
    kits.push(kit);
    const entity = spawnEventSourced(kit.system, b, '1', { persistence });
    let total = 0;
    for (const type of commands) total = await askWithStatus<Cmd, number>(entity, (replyTo) => ({ type, n: 1, replyTo }), { timeoutMs: 1_000 });
    return total;
  };
  const stored = async (persistence: ReturnType<typeof createInMemoryPersistence>): Promise<PersistedEvent[]> => {
    const events: PersistedEvent[] = [];
    for await (const e of persistence.journal.replay('names-1', 1)) events.push(e);
    return events;
  };

  it('writes them with the default version when per-type versions name other types, and recovers them', async () => {
    const persistence = createInMemoryPersistence();
    const v1 = behavior({ schemaVersion: { other: 2 } });
    expect(await run(persistence, v1, names)).toBe(names.length);
    expect((await stored(persistence)).map((e) => [e.eventType, e.schemaVersion])).toEqual(names.map((name) => [name, 1]));
    expect(names.map((name) => v1.schemaVersionOf(name))).toEqual(names.map(() => 1));

    // Recovery in a new system: every event found and folded (no upcaster looked up on Object.prototype).
    expect(await run(persistence, v1, ['toString'])).toBe(names.length + 1);
  });

  it('upcasts them with upcasters given as own properties or as a Map', async () => {
    const persistence = createInMemoryPersistence();
    await run(persistence, behavior({}), names);
    const times10 = { 1: (p: unknown) => ({ ...(p as Evt), n: (p as Evt).n * 10 }) };
    const asObject = Object.fromEntries(names.map((name) => [name, times10])); // own properties, `__proto__` included
    const versions = Object.fromEntries(names.map((name) => [name, 2]));
    expect(Object.hasOwn(asObject, '__proto__')).toBe(true);
    const fromObject = behavior({ schemaVersion: versions, upcasters: asObject });
    expect(await run(persistence, fromObject, ['valueOf'])).toBe(names.length * 10 + 1);
    const fromMap = behavior({ schemaVersion: new Map(names.map((name) => [name, 2])), upcasters: new Map(names.map((name) => [name, new Map([[1, times10[1]]])])) });
    expect(await run(persistence, fromMap, ['constructor'])).toBe(names.length * 10 + 2);
    // The last two events were written at version 2 and are not upcast again.
    expect((await stored(persistence)).slice(-2).map((e) => e.schemaVersion)).toEqual([2, 2]);
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
