/**
 * Pins the hard parts of the entity runtime: atomic, trace-free persistence,
 * snapshots, retention, recovery, concurrency conflicts, the bounded stash and
 * restart with backoff (on a test clock).
 */
import { describe, expect, it } from 'vitest';
import { StashOverflowError } from '../actor/actor-errors.js';
import { StatusReply } from '../actor/status-reply.js';
import { isDataflowError } from '../errors/dataflow-error.js';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';
import { ConcurrencyConflictError, JournalWriteError } from '../persistence/persistence-errors.js';
import { EventSourcedBehaviorTestKit } from '../testing/event-sourced-behavior-test-kit.js';
import { PersistenceTestKit } from '../testing/persistence-test-kit.js';
import { TestClock } from '../testing/test-clock.js';
import { none, persist, stop, unhandled, type ReplyTo } from './effect.js';
import { eventSourced, type EventSourcedOptions } from './event-sourced.js';
import { EntityUnavailableError, RecoveryFailedError } from './event-sourcing-errors.js';
import { every, snapshotWhen } from './snapshot-policy.js';

type Cmd =
  | { readonly type: 'add'; readonly n: number }
  | { readonly type: 'add-many'; readonly ns: readonly number[] }
  | { readonly type: 'get'; readonly replyTo: ReplyTo<StatusReply<State>> }
  | { readonly type: 'stop' };
type Evt = { readonly type: 'added'; readonly n: number };
interface State {
  readonly total: number;
  readonly count: number;
}

const options: EventSourcedOptions<Cmd, Evt, State> = {
  persistenceId: (id) => `acc-${id}`,
  emptyState: { total: 0, count: 0 },
  onCommand: (_state, cmd) => {
    switch (cmd.type) {
      case 'add':
        return cmd.n === 0 ? unhandled() : persist({ type: 'added', n: cmd.n });
      case 'add-many':
        return persist(cmd.ns.map((n) => ({ type: 'added' as const, n })));
      case 'get':
        return none<Evt, State>().thenReply(cmd.replyTo, (s) => StatusReply.success(s));
      case 'stop':
        return stop();
    }
  },
  onEvent: (state, evt) => ({ total: state.total + evt.n, count: state.count + 1 }),
  tagger: () => ['acc'],
  onPersistFailure: { minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0, maxRestarts: 3 },
};
const account = eventSourced(options);

function setup(overrides: Partial<EventSourcedOptions<Cmd, Evt, State>> = {}) {
  const clock = new TestClock();
  const store = createInMemoryPersistence({ now: () => clock.now() });
  const faults = PersistenceTestKit.wrap(store);
  const kit = EventSourcedBehaviorTestKit.create(eventSourced({ ...options, ...overrides }), { entityId: '1', persistence: faults, clock });
  return { clock, store, faults, kit };
}

async function journalOf(persistence: { journal: { replay(id: string, from: number): AsyncIterable<{ sequenceNr: number; payload: unknown }> } }, id: string) {
  const events: { sequenceNr: number; payload: unknown }[] = [];
  for await (const e of persistence.journal.replay(id, 1)) events.push({ sequenceNr: e.sequenceNr, payload: e.payload });
  return events;
}

describe('persisting', () => {
  it('persists, applies and replies; restart recovers the same state', async () => {
    const { kit } = setup();
    const first = await kit.runCommand({ type: 'add', n: 2 });
    expect(first.events).toEqual([{ type: 'added', n: 2 }]);
    expect(first.state).toEqual({ total: 2, count: 1 });
    const got = await kit.runCommand<StatusReply<State>>((replyTo) => ({ type: 'get', replyTo }));
    expect(got.reply).toEqual(StatusReply.success({ total: 2, count: 1 }));
    expect(got.events).toEqual([]);
    expect((await kit.restart()).state).toEqual({ total: 2, count: 1 });
    expect(kit.lastSequenceNr).toBe(1);
  });

  it('a failed write leaves no trace: state and sequence numbers continue without gaps after the restart', async () => {
    const { kit, faults, clock, store } = setup();
    await kit.runCommand({ type: 'add', n: 1 });
    faults.failNextWrites(1);
    await expect(kit.runCommand({ type: 'add', n: 10 })).rejects.toSatisfy((e) => isDataflowError(e, 'journal/write-failed'));
    expect(kit.getState()).toEqual({ total: 1, count: 1 });
    expect(kit.lastSequenceNr).toBe(1);
    expect(kit.lifecycle.status).toBe('backing-off');

    await clock.advanceAsync(100);
    await kit.whenIdle();
    expect(kit.lifecycle.status).toBe('running');
    await kit.runCommand({ type: 'add', n: 5 });
    expect((await kit.restart()).state).toEqual({ total: 6, count: 2 });
    expect(await journalOf(store, 'acc-1')).toEqual([
      { sequenceNr: 1, payload: { type: 'added', n: 1 } },
      { sequenceNr: 2, payload: { type: 'added', n: 5 } },
    ]);
  });

  it('persists several events in one atomic append: all or nothing', async () => {
    const { kit, faults, clock, store } = setup();
    faults.failNextWrites(1);
    await expect(kit.runCommand({ type: 'add-many', ns: [1, 2, 3] })).rejects.toBeInstanceOf(JournalWriteError);
    expect(await journalOf(store, 'acc-1')).toEqual([]);
    await clock.advanceAsync(100);

    const result = await kit.runCommand({ type: 'add-many', ns: [1, 2, 3] });
    expect(result.events).toHaveLength(3);
    expect(faults.writes).toHaveLength(1);
    expect(faults.writes[0]?.events).toHaveLength(3);
    expect(kit.lastSequenceNr).toBe(3);
    expect(result.state).toEqual({ total: 6, count: 3 });
  });

  it('reports an unhandled command and persists nothing', async () => {
    const { kit } = setup();
    const result = await kit.runCommand({ type: 'add', n: 0 });
    expect(result.events).toEqual([]);
    expect(kit.reported.map((e) => e.type)).toContain('event-sourced.command.unhandled');
  });

  it('a stop effect stops the entity; later commands are answered with EntityUnavailableError', async () => {
    const { kit } = setup();
    await kit.runCommand({ type: 'stop' });
    expect(kit.lifecycle).toEqual({ status: 'stopped', reason: 'stop-effect' });
    await expect(kit.runCommand<StatusReply<State>>((replyTo) => ({ type: 'get', replyTo }))).rejects.toBeInstanceOf(EntityUnavailableError);
  });
});

describe('snapshots', () => {
  it('a snapshot holds the state after the event it is numbered with', async () => {
    const { kit, store } = setup({ snapshot: every(3) });
    for (const n of [1, 2, 3, 4]) await kit.runCommand({ type: 'add', n });
    const snapshot = await store.snapshots.loadLatest('acc-1');
    expect(snapshot?.metadata.sequenceNr).toBe(3);
    expect(snapshot?.state).toEqual({ total: 6, count: 3 });
  });

  it('an append that crosses the policy is snapshotted after its last event', async () => {
    const { kit, store } = setup({ snapshot: every(3) });
    await kit.runCommand({ type: 'add', n: 1 });
    await kit.runCommand({ type: 'add-many', ns: [2, 3, 4] }); // 2, 3, 4: crosses 3
    const snapshot = await store.snapshots.loadLatest('acc-1');
    expect(snapshot?.metadata.sequenceNr).toBe(4);
    expect(snapshot?.state).toEqual({ total: 10, count: 4 });
  });

  it('recovers from the snapshot plus the events after it', async () => {
    const { kit } = setup({ snapshot: every(2) });
    for (const n of [1, 2, 3, 4, 5]) await kit.runCommand({ type: 'add', n });
    await kit.restart();
    expect(kit.getState()).toEqual({ total: 15, count: 5 });
    expect(kit.reported.filter((e) => e.type === 'event-sourced.recovered').at(-1)).toMatchObject({
      snapshotSequenceNr: 4,
      eventsReplayed: 1,
      sequenceNr: 5,
    });
  });

  it('retention keeps the newest snapshots and deletes the events the oldest kept one covers', async () => {
    const { kit, store } = setup({ snapshot: every(2, { keep: 2, deleteEvents: true }) });
    for (const n of [1, 2, 3, 4, 5, 6, 7]) await kit.runCommand({ type: 'add', n });
    expect((await store.snapshots.loadLatest('acc-1', { maxSequenceNr: 3 }))?.metadata.sequenceNr).toBeUndefined();
    expect((await store.snapshots.loadLatest('acc-1', { maxSequenceNr: 4 }))?.metadata.sequenceNr).toBe(4);
    expect((await store.snapshots.loadLatest('acc-1'))?.metadata.sequenceNr).toBe(6);
    expect((await journalOf(store, 'acc-1')).map((e) => e.sequenceNr)).toEqual([5, 6, 7]);
    expect((await kit.restart()).state).toEqual({ total: 28, count: 7 });
  });

  it('retention deletes no events and no older snapshot when the snapshot it keeps is not in the store', async () => {
    const clock = new TestClock();
    const store = createInMemoryPersistence({ now: () => clock.now() });
    // A store that acknowledges the save of the snapshot at 4 but keeps nothing (lost, or not durable yet).
    const lossy = {
      ...store,
      snapshots: {
        save: (metadata: { persistenceId: string; sequenceNr: number; timestamp: number }, state: unknown, version?: number) =>
          metadata.sequenceNr === 4 ? Promise.resolve() : store.snapshots.save(metadata, state, version),
        loadLatest: store.snapshots.loadLatest.bind(store.snapshots),
        delete: store.snapshots.delete.bind(store.snapshots),
        close: store.snapshots.close.bind(store.snapshots),
      },
    };
    const kit = EventSourcedBehaviorTestKit.create(eventSourced({ ...options, snapshot: every(2, { keep: 1, deleteEvents: true }) }), {
      entityId: '1',
      persistence: lossy,
      clock,
    });
    for (const n of [1, 2, 3, 4]) await kit.runCommand({ type: 'add', n });
    const failed = kit.reported.find((e) => e.type === 'event-sourced.snapshot.failed');
    expect(failed).toMatchObject({ sequenceNr: 4, operation: 'delete-events' });
    expect(isDataflowError(failed?.type === 'event-sourced.snapshot.failed' ? failed.error : undefined, 'snapshot/failed')).toBe(true);
    // Every event is still there, so is the snapshot at 2: recovery does not hit a gap.
    expect((await journalOf(store, 'acc-1')).map((e) => e.sequenceNr)).toEqual([1, 2, 3, 4]);
    expect((await store.snapshots.loadLatest('acc-1'))?.metadata.sequenceNr).toBe(2);
    expect(kit.reported.some((e) => e.type === 'event-sourced.events.deleted' && e.toSequenceNr === 4)).toBe(false);
    expect((await kit.restart()).state).toEqual({ total: 10, count: 4 });
    // The next durable snapshot lets retention go on.
    for (const n of [5, 6]) await kit.runCommand({ type: 'add', n });
    expect((await journalOf(store, 'acc-1')).map((e) => e.sequenceNr)).toEqual([]);
    expect((await kit.restart()).state).toEqual({ total: 21, count: 6 });
  });

  it('a snapshot predicate that throws is reported and the entity goes on', async () => {
    const { kit } = setup({ snapshot: snapshotWhen(() => { throw new RangeError('bad predicate'); }) });
    await kit.runCommand({ type: 'add', n: 1 });
    const failed = kit.reported.find((e) => e.type === 'event-sourced.snapshot.failed');
    expect(failed).toMatchObject({ sequenceNr: 1, operation: 'save' });
    expect(failed?.error).toBeInstanceOf(RangeError);
    expect((await kit.runCommand({ type: 'add', n: 2 })).state).toEqual({ total: 3, count: 2 });
  });

  it('a failed snapshot is reported and the entity goes on', async () => {
    const { kit, faults } = setup({ snapshot: every(1) });
    faults.failNextSnapshotSaves(1);
    await kit.runCommand({ type: 'add', n: 1 });
    expect(kit.reported.find((e) => e.type === 'event-sourced.snapshot.failed')).toMatchObject({ sequenceNr: 1, operation: 'save' });
    expect(kit.lifecycle.status).toBe('running');
    await kit.runCommand({ type: 'add', n: 2 });
    expect((await kit.restart()).state).toEqual({ total: 3, count: 2 });
  });
});

describe('recovery', () => {
  it('recovery from snapshot + tail equals recovery from all events (seeded random command sequences)', async () => {
    let seed = 20261122;
    const random = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let run = 0; run < 25; run++) {
      const every_ = 1 + Math.floor(random() * 7);
      const store = createInMemoryPersistence();
      const withSnapshots = EventSourcedBehaviorTestKit.create(eventSourced({ ...options, snapshot: every(every_, { keep: 1 }) }), {
        entityId: `r${run}`,
        persistence: store,
      });
      const commands = Math.floor(random() * 40);
      for (let i = 0; i < commands; i++) {
        const roll = random();
        const n = 1 + Math.floor(random() * 9);
        await withSnapshots.runCommand(roll < 0.7 ? { type: 'add', n } : { type: 'add-many', ns: [n, n + 1, n + 2].slice(0, 1 + Math.floor(random() * 3)) });
      }
      const live = withSnapshots.getState();
      const fromSnapshot = (await withSnapshots.restart()).state;
      const fromEvents = EventSourcedBehaviorTestKit.create(account, { entityId: `r${run}`, persistence: { journal: store.journal, snapshots: createInMemoryPersistence().snapshots } });
      await fromEvents.whenIdle();
      expect(fromSnapshot).toEqual(live);
      expect(fromEvents.getState()).toEqual(live);
      expect(fromEvents.lastSequenceNr).toBe(withSnapshots.lastSequenceNr);
    }
  });

  it('an event handler that throws during replay fails recovery: no half-applied state', async () => {
    const { kit, store } = setup();
    await kit.runCommand({ type: 'add', n: 1 });
    await kit.runCommand({ type: 'add', n: 13 });
    const broken = EventSourcedBehaviorTestKit.create(
      eventSourced({ ...options, onEvent: (s, e) => { if (e.n === 13) throw new Error('unlucky'); return options.onEvent(s, e); } }),
      { entityId: '1', persistence: store },
    );
    await broken.whenIdle();
    expect(broken.lifecycle.status).toBe('failed');
    const failure = broken.reported.find((e) => e.type === 'event-sourced.recovery.failed');
    expect(failure?.error).toBeInstanceOf(RecoveryFailedError);
    expect(failure?.error.sequenceNr).toBe(2);
    expect(broken.getState()).toEqual(options.emptyState);
  });

  it('an event without upcaster fails recovery', async () => {
    const { kit, store } = setup();
    await kit.runCommand({ type: 'add', n: 1 });
    const newer = EventSourcedBehaviorTestKit.create(eventSourced({ ...options, schemaVersion: 2 }), { entityId: '1', persistence: store });
    await newer.whenIdle();
    expect(newer.lifecycle.status).toBe('failed');
    expect(newer.reported.find((e) => e.type === 'event-sourced.recovery.failed')?.error.cause).toMatchObject({ tag: 'event-sourcing/unknown-event-version' });
  });

  it('a retriable read failure during recovery restarts with backoff and then recovers', async () => {
    const clock = new TestClock();
    const store = createInMemoryPersistence();
    const seed = EventSourcedBehaviorTestKit.create(account, { entityId: '1', persistence: store });
    await seed.runCommand({ type: 'add', n: 4 });
    const faults = PersistenceTestKit.wrap(store).failNextReads(1);
    const kit = EventSourcedBehaviorTestKit.create(account, { entityId: '1', persistence: faults, clock });
    await kit.whenIdle();
    expect(kit.lifecycle).toMatchObject({ status: 'backing-off', attempt: 1, delayMs: 100 });
    await clock.advanceAsync(100);
    await kit.whenIdle();
    expect(kit.lifecycle.status).toBe('running');
    expect(kit.getState()).toEqual({ total: 4, count: 1 });
  });

  it('initialize seeds the journal and recovers from it', async () => {
    const kit = EventSourcedBehaviorTestKit.create(account, { entityId: '1' });
    const { state } = await kit.initialize([{ type: 'added', n: 2 }, { type: 'added', n: 3 }]);
    expect(state).toEqual({ total: 5, count: 2 });
    expect(kit.lastSequenceNr).toBe(2);
  });
});

describe('concurrency', () => {
  it('a second writer with a stale sequence number is refused and stops; the history is not forked', async () => {
    const store = createInMemoryPersistence();
    const stale = EventSourcedBehaviorTestKit.create(account, { entityId: '1', persistence: store });
    await stale.whenIdle();
    const other = EventSourcedBehaviorTestKit.create(account, { entityId: '1', persistence: store });
    await other.runCommand({ type: 'add', n: 7 });

    await expect(stale.runCommand({ type: 'add', n: 1 })).rejects.toBeInstanceOf(ConcurrencyConflictError);
    expect(stale.lifecycle.status).toBe('failed');
    expect(stale.reported.map((e) => e.type)).toEqual(expect.arrayContaining(['event-sourced.concurrency-conflict', 'event-sourced.failed']));
    expect(stale.getState()).toEqual({ total: 0, count: 0 });
    expect(await journalOf(store, 'acc-1')).toEqual([{ sequenceNr: 1, payload: { type: 'added', n: 7 } }]);
  });
});

describe('stash', () => {
  it('stashes commands while a write is in flight and refuses the overflow with StashOverflowError', async () => {
    const { kit } = setup({ stashCapacity: 2 });
    await kit.whenIdle();
    const replies: unknown[] = [];
    const replyTo: ReplyTo<StatusReply<State>> = { tell: (r) => replies.push(r) };
    kit.tell({ type: 'add', n: 1 }); // starts a write
    kit.tell({ type: 'add', n: 2 }); // stashed
    kit.tell({ type: 'get', replyTo }); // stashed
    kit.tell({ type: 'get', replyTo }); // overflow
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ status: 'error', error: expect.any(StashOverflowError) as unknown });
    expect(kit.reported.filter((e) => e.type === 'event-sourced.stash.overflow')).toHaveLength(1);
    await kit.whenIdle();
    expect(replies[1]).toEqual(StatusReply.success({ total: 3, count: 2 }));
    expect(kit.lastSequenceNr).toBe(2);
  });

  it('keeps stashed commands across a restart and handles them after recovery', async () => {
    const { kit, faults, clock } = setup();
    await kit.whenIdle();
    faults.failNextWrites(1);
    kit.tell({ type: 'add', n: 1 }); // fails
    kit.tell({ type: 'add', n: 2 }); // stashed, kept through the backoff
    await kit.whenIdle();
    expect(kit.lifecycle.status).toBe('backing-off');
    await clock.advanceAsync(100);
    await kit.whenIdle();
    expect(kit.getState()).toEqual({ total: 2, count: 1 });
  });
});

describe('backoff', () => {
  it('restarts after min * 2^n ms on the test clock, then fails after maxRestarts', async () => {
    const { kit, faults, clock } = setup();
    await kit.whenIdle();
    faults.failNextWrites(4);
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      await expect(kit.runCommand({ type: 'add', n: 1 })).rejects.toBeInstanceOf(JournalWriteError);
      const restarting = kit.reported.filter((e) => e.type === 'event-sourced.restarting').at(-1);
      delays.push(restarting?.delayMs ?? -1);
      const started = clock.now();
      await clock.advanceAsync((restarting?.delayMs ?? 0) - 1);
      expect(kit.lifecycle.status).toBe('backing-off');
      await clock.advanceAsync(1);
      await kit.whenIdle();
      expect(kit.lifecycle.status).toBe('running');
      expect(clock.now() - started).toBe(restarting?.delayMs);
    }
    expect(delays).toEqual([100, 200, 400]);
    await expect(kit.runCommand({ type: 'add', n: 1 })).rejects.toBeInstanceOf(JournalWriteError);
    expect(kit.lifecycle.status).toBe('failed');
    expect(kit.getState()).toEqual({ total: 0, count: 0 });
  });

  it('a successful write resets the restart count', async () => {
    const { kit, faults, clock } = setup();
    await kit.whenIdle();
    faults.failNextWrites(1);
    await expect(kit.runCommand({ type: 'add', n: 1 })).rejects.toBeInstanceOf(JournalWriteError);
    await clock.advanceAsync(100);
    await kit.runCommand({ type: 'add', n: 1 });
    faults.failNextWrites(1);
    await expect(kit.runCommand({ type: 'add', n: 1 })).rejects.toBeInstanceOf(JournalWriteError);
    expect(kit.lifecycle).toMatchObject({ status: 'backing-off', attempt: 1, delayMs: 100 });
  });
});

describe('group commit (maxCommandsPerAppend)', () => {
  const get = (replies: unknown[]): Cmd => ({ type: 'get', replyTo: { tell: (s) => replies.push(s) } });

  it('writes the events of stashed commands in one append and replies with the state after each command', async () => {
    const { kit, faults } = setup({ maxCommandsPerAppend: 10 });
    await kit.whenIdle();
    const replies: unknown[] = [];
    kit.tell({ type: 'add', n: 1 }); // written alone
    kit.tell({ type: 'add', n: 2 });
    kit.tell(get(replies));
    kit.tell({ type: 'add-many', ns: [3, 4] });
    kit.tell(get(replies));
    await kit.whenIdle();
    expect(faults.writes.map((w) => w.events.length)).toEqual([1, 3]);
    expect(replies).toEqual([StatusReply.success({ total: 3, count: 2 }), StatusReply.success({ total: 10, count: 4 })]);
    expect((await kit.restart()).state).toEqual({ total: 10, count: 4 });
  });

  it('a failed group append answers each of its commands with the error and leaves no trace', async () => {
    const { kit, faults, clock, store } = setup({ maxCommandsPerAppend: 10 });
    await kit.whenIdle();
    const replies: unknown[] = [];
    kit.tell({ type: 'add', n: 1 });
    faults.failNextWrites(1);
    kit.tell({ type: 'add', n: 2 });
    kit.tell({ type: 'add', n: 3 });
    kit.tell(get(replies));
    await kit.whenIdle();
    expect(kit.reported.find((e) => e.type === 'event-sourced.persist.failed')).toMatchObject({ commands: [{ n: 2 }, { n: 3 }, { type: 'get' }], events: 2 });
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ status: 'error', error: expect.any(JournalWriteError) as unknown });
    await clock.advanceAsync(100);
    await kit.whenIdle();
    expect(kit.getState()).toEqual({ total: 1, count: 1 });
    expect((await journalOf(store, 'acc-1')).map((e) => e.sequenceNr)).toEqual([1]);
  });

  it('a command whose event handler throws is refused before anything is written', async () => {
    const { kit, faults } = setup({ onEvent: (s, e) => (e.n < 0 ? (() => { throw new RangeError('negative'); })() : options.onEvent(s, e)) });
    await expect(kit.runCommand({ type: 'add', n: -1 })).rejects.toThrow(RangeError);
    expect(faults.writes).toEqual([]);
    expect((await kit.runCommand({ type: 'add', n: 2 })).state).toEqual({ total: 2, count: 1 });
  });
});

describe('snapshot schema versions', () => {
  it('upcasts an old snapshot state on recovery, and fails recovery when it cannot', async () => {
    const { kit, store } = setup({ snapshot: every(1) });
    await kit.runCommand({ type: 'add', n: 5 });
    expect((await store.snapshots.loadLatest('acc-1'))?.schemaVersion).toBe(1);

    const v2 = (overrides: Partial<EventSourcedOptions<Cmd, Evt, State>>) =>
      EventSourcedBehaviorTestKit.create(eventSourced({ ...options, stateSchemaVersion: 2, ...overrides }), { entityId: '1', persistence: store });
    const upcasting = v2({ snapshotUpcasters: { 1: (s) => ({ ...(s as State), count: 100 }) } });
    await upcasting.whenIdle();
    expect(upcasting.getState()).toEqual({ total: 5, count: 100 });

    const without = v2({});
    await without.whenIdle();
    expect(without.lifecycle.status).toBe('failed');
    expect(without.reported.find((e) => e.type === 'event-sourced.recovery.failed')?.error.message).toMatch(/snapshot/);
  });
});
