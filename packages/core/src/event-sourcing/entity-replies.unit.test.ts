/**
 * Every command to an entity is answered with a `StatusReply` (issue 9
 * defects 2 and 5), and a failed write never leaves the entity stuck or
 * stopped (issue 9 defect 2, issue 10 items 4 and 6): the test kit and the
 * runtime answer the same way, with the same error objects.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { StashOverflowError } from '../actor/actor-errors.js';
import { askWithStatus, StatusReply } from '../actor/status-reply.js';
import { isDataflowError } from '../errors/dataflow-error.js';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';
import type { AppendOptions, NewEvent } from '../persistence/journal.js';
import { ConcurrencyConflictError, JournalWriteError, JournalWriteOutcomeUnknownError, WriterLeaseHeldError } from '../persistence/persistence-errors.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import { EventSourcedBehaviorTestKit } from '../testing/event-sourced-behavior-test-kit.js';
import { PersistenceTestKit } from '../testing/persistence-test-kit.js';
import { TestClock } from '../testing/test-clock.js';
import type { ReplyTo } from './effect.js';
import { eventSourced, type EventSourcedOptions } from './event-sourced.js';
import { CommandUnhandledError } from './event-sourcing-errors.js';
import { spawnEventSourced } from './spawn-event-sourced.js';

type Cmd =
  | { readonly type: 'add'; readonly n: number; readonly replyTo?: ReplyTo<StatusReply<number>> }
  | { readonly type: 'boom'; readonly replyTo: ReplyTo<StatusReply<number>> };
type Evt = { readonly type: 'added'; readonly n: number };
interface State {
  readonly total: number;
}

const options: EventSourcedOptions<Cmd, Evt, State> = {
  persistenceId: (id) => `sum-${id}`,
  emptyState: { total: 0 },
  onCommand: (_state, cmd, { effects }) => {
    if (cmd.type === 'boom') throw new RangeError('handler broke');
    if (cmd.n === 0) return effects.unhandled();
    const added = effects.persist({ type: 'added', n: cmd.n });
    return cmd.replyTo === undefined ? added : added.thenReply(cmd.replyTo, (s) => StatusReply.success(s.total));
  },
  onEvent: (state, evt) => ({ total: state.total + evt.n }),
  onPersistFailure: { minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0 },
};

function setup(overrides: Partial<EventSourcedOptions<Cmd, Evt, State>> = {}) {
  const clock = new TestClock();
  const store = createInMemoryPersistence({ now: () => clock.now() });
  const faults = PersistenceTestKit.wrap(store);
  const kit = EventSourcedBehaviorTestKit.create(eventSourced({ ...options, ...overrides }), { entityId: '1', persistence: faults, clock });
  return { clock, store, faults, kit };
}

const add = (n: number) => (replyTo: ReplyTo<StatusReply<number>>): Cmd => ({ type: 'add', n, replyTo });

async function storedSequenceNrs(store: ReturnType<typeof createInMemoryPersistence>): Promise<number[]> {
  const seqs: number[] = [];
  for await (const e of store.journal.replay('sum-1', 1)) seqs.push(e.sequenceNr);
  return seqs;
}

/** Waits out a backoff on the test clock and the recovery after it. */
async function afterBackoff(kit: EventSourcedBehaviorTestKit<Cmd, Evt, State>, clock: TestClock): Promise<void> {
  const lifecycle = kit.lifecycle;
  if (lifecycle.status !== 'backing-off') throw new Error(`expected a backoff, the entity is ${lifecycle.status}`);
  await clock.advanceAsync(lifecycle.delayMs);
  await kit.whenIdle();
}

describe('every command gets a StatusReply', () => {
  it('a failed write answers with the journal error; the entity backs off and keeps working', async () => {
    const { kit, faults, clock, store } = setup();
    await kit.whenIdle();
    faults.failNextWrites(1);
    const replies: StatusReply<number>[] = [];
    kit.tell({ type: 'add', n: 1, replyTo: { tell: (r) => replies.push(r) } });
    await kit.whenIdle();
    expect(replies).toHaveLength(1);
    expect(replies[0]?.status).toBe('error');
    const error = replies[0]?.status === 'error' ? replies[0].error : undefined;
    expect(error).toBeInstanceOf(JournalWriteError);
    expect((error as JournalWriteError).retriable).toBe(true);
    expect(kit.reported).toContainEqual(expect.objectContaining({ type: 'event-sourced.persist.failed', outcome: 'restart' }));

    await afterBackoff(kit, clock);
    expect(kit.lifecycle.status).toBe('running');
    expect((await kit.runCommand(add(2))).reply).toEqual(StatusReply.success(2));
    expect(await storedSequenceNrs(store)).toEqual([1]);
  });

  it('the test kit rejects with the same error object the reply carries', async () => {
    const { kit, faults } = setup();
    await kit.whenIdle();
    faults.failNextWrites(1);
    const error = await kit.runCommand(add(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JournalWriteError);
    expect((error as JournalWriteError).message).toContain('injected failure');
  });

  it('a rejected write (permanent) answers with the error and the entity goes on at once, without a restart', async () => {
    const { kit, faults } = setup();
    await kit.whenIdle();
    faults.rejectNextWrites(1);
    const error = await kit.runCommand(add(1)).catch((e: unknown) => e);
    expect(isDataflowError(error, 'journal/write-failed')).toBe(true);
    expect((error as JournalWriteError).retriable).toBe(false);
    expect(kit.lifecycle.status).toBe('running');
    expect(kit.reported.map((e) => e.type)).not.toContain('event-sourced.restarting');
    expect((await kit.runCommand(add(5))).reply).toEqual(StatusReply.success(5));
  });

  it('a handler that throws answers with its error', async () => {
    const { kit } = setup();
    await expect(kit.runCommand((replyTo) => ({ type: 'boom', replyTo }))).rejects.toThrow(RangeError);
    expect((await kit.runCommand(add(1))).reply).toEqual(StatusReply.success(1));
  });

  it('an unhandled command answers with CommandUnhandledError', async () => {
    const { kit } = setup();
    const error = await kit.runCommand(add(0)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandUnhandledError);
    expect((error as CommandUnhandledError).commandType).toBe('add');
  });

  it('a stash overflow answers with an error reply carrying StashOverflowError, not a typed reply', async () => {
    const { kit } = setup({ stashCapacity: 1 });
    await kit.whenIdle();
    const replies: StatusReply<number>[] = [];
    const replyTo = { tell: (r: StatusReply<number>) => replies.push(r) };
    kit.tell({ type: 'add', n: 1, replyTo }); // writing
    kit.tell({ type: 'add', n: 2, replyTo }); // stashed
    kit.tell({ type: 'add', n: 3, replyTo }); // overflow
    expect(replies).toEqual([{ status: 'error', error: expect.any(StashOverflowError) as unknown }]);
    await kit.whenIdle();
    expect(replies.slice(1)).toEqual([StatusReply.success(1), StatusReply.success(3)]);
  });

  it('keeps restarting through a long outage by default (no restart limit) and then writes again', async () => {
    const { kit, faults, clock, store } = setup();
    await kit.whenIdle();
    faults.failNextWrites(15);
    for (let i = 0; i < 15; i++) {
      await expect(kit.runCommand(add(1))).rejects.toBeInstanceOf(JournalWriteError);
      await afterBackoff(kit, clock);
      expect(kit.lifecycle.status).toBe('running');
    }
    expect((await kit.runCommand(add(1))).reply).toEqual(StatusReply.success(1));
    expect(await storedSequenceNrs(store)).toEqual([1]);
  });
});

describe("the deprecated replies: 'plain' style", () => {
  it('keeps the old answers for callers not migrated yet: error objects for overflow, nothing after a failed write', async () => {
    type PlainCmd = { readonly type: 'add'; readonly n: number; readonly replyTo: ReplyTo<unknown> };
    const plain = eventSourced<PlainCmd, Evt, State>({
      persistenceId: (id) => `plain-${id}`,
      emptyState: { total: 0 },
      onCommand: (_state, cmd, { effects }) => effects.persist({ type: 'added', n: cmd.n }).thenReply(cmd.replyTo, (s) => s.total),
      onEvent: (state, evt) => ({ total: state.total + evt.n }),
      replies: 'plain',
      stashCapacity: 1,
    });
    const clock = new TestClock();
    const faults = PersistenceTestKit.wrap(createInMemoryPersistence());
    const kit = EventSourcedBehaviorTestKit.create(plain, { entityId: '1', persistence: faults, clock });
    await kit.whenIdle();
    const replies: unknown[] = [];
    const replyTo = { tell: (r: unknown) => replies.push(r) };
    faults.failNextWrites(1);
    kit.tell({ type: 'add', n: 1, replyTo }); // fails: no answer in this style
    kit.tell({ type: 'add', n: 2, replyTo }); // stashed
    kit.tell({ type: 'add', n: 3, replyTo }); // overflow: the error object itself
    await kit.whenIdle();
    expect(replies).toEqual([expect.any(StashOverflowError)]);
    await clock.advanceAsync(200);
    await kit.whenIdle();
    expect(replies.slice(1)).toEqual([2]);
    expect(() => eventSourced({ ...options, replies: 'loud' as 'plain' })).toThrow(RangeError);
  });
});

describe('a writer lease held elsewhere', () => {
  it('backs off (at least retryAfterMs) and retries until the lease is free; it never terminates the entity', async () => {
    const { kit, faults, clock, store } = setup({ onPersistFailure: { minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0, maxRestarts: 2 } });
    await kit.whenIdle();
    faults.leaseHeldNextWrites(5, 3_000);
    for (let i = 0; i < 5; i++) {
      const error = await kit.runCommand(add(1)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(WriterLeaseHeldError);
      expect((error as WriterLeaseHeldError).retriable).toBe(true);
      const lifecycle = kit.lifecycle;
      expect(lifecycle.status).toBe('backing-off');
      expect(lifecycle.status === 'backing-off' && lifecycle.delayMs).toBe(3_000);
      await afterBackoff(kit, clock);
    }
    expect(kit.reported.map((e) => e.type)).not.toContain('event-sourced.failed');
    expect((await kit.runCommand(add(4))).reply).toEqual(StatusReply.success(4));
    expect(await storedSequenceNrs(store)).toEqual([1]);
  });

  it('keeps the commands that arrive during the backoff and handles them once the lease is taken', async () => {
    const { kit, faults, clock } = setup();
    await kit.whenIdle();
    faults.leaseHeldNextWrites(1);
    const replies: StatusReply<number>[] = [];
    const replyTo = { tell: (r: StatusReply<number>) => replies.push(r) };
    kit.tell({ type: 'add', n: 1, replyTo });
    kit.tell({ type: 'add', n: 2, replyTo }); // stashed through the backoff
    await kit.whenIdle();
    await afterBackoff(kit, clock);
    expect(replies).toEqual([{ status: 'error', error: expect.any(WriterLeaseHeldError) as unknown }, StatusReply.success(2)]);
  });
});

describe('a write whose outcome is unknown', () => {
  it('that WAS applied: the head is re-read, the command succeeds, and no event is duplicated', async () => {
    const { kit, faults, store } = setup();
    await kit.runCommand(add(1));
    faults.writeOutcomeUnknownNextWrites(1, { applied: true });
    const result = await kit.runCommand(add(2));
    expect(result.reply).toEqual(StatusReply.success(3));
    expect(result.events).toEqual([{ type: 'added', n: 2 }]);
    expect(kit.lastSequenceNr).toBe(2);
    expect(kit.reported).toContainEqual(expect.objectContaining({ type: 'event-sourced.write-outcome.resolved', applied: true, sequenceNr: 2 }));
    expect((await kit.runCommand(add(4))).reply).toEqual(StatusReply.success(7));
    expect(await storedSequenceNrs(store)).toEqual([1, 2, 3]);
    expect((await kit.restart()).state).toEqual({ total: 7 });
  });

  it('that was NOT applied: the head is re-read, the command gets a retriable error, and the next write continues the sequence', async () => {
    const { kit, faults, store } = setup();
    await kit.runCommand(add(1));
    faults.writeOutcomeUnknownNextWrites(1, { applied: false });
    const error = await kit.runCommand(add(2)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JournalWriteError);
    expect((error as JournalWriteError).retriable).toBe(true);
    expect((error as JournalWriteError).message).toContain('not stored');
    expect(kit.getState()).toEqual({ total: 1 });
    expect(kit.lifecycle.status).toBe('running');
    expect(kit.reported).toContainEqual(expect.objectContaining({ type: 'event-sourced.write-outcome.resolved', applied: false, sequenceNr: 1 }));
    expect((await kit.runCommand(add(4))).reply).toEqual(StatusReply.success(5));
    expect(await storedSequenceNrs(store)).toEqual([1, 2]);
    expect((await kit.restart()).state).toEqual({ total: 5 });
  });

  it('re-reads the head before any stashed command is written', async () => {
    const { kit, faults, store } = setup();
    await kit.whenIdle();
    faults.writeOutcomeUnknownNextWrites(1, { applied: true });
    const replies: StatusReply<number>[] = [];
    const replyTo = { tell: (r: StatusReply<number>) => replies.push(r) };
    kit.tell({ type: 'add', n: 1, replyTo });
    kit.tell({ type: 'add', n: 10, replyTo }); // stashed: written only after the head was read
    await kit.whenIdle();
    expect(replies).toEqual([StatusReply.success(1), StatusReply.success(11)]);
    expect(faults.writes.map((w) => w.options.expectedSequenceNr)).toEqual([0, 1]);
    expect(await storedSequenceNrs(store)).toEqual([1, 2]);
  });

  it('when the head cannot be read either, answers with the unknown-outcome error and recovers after a backoff', async () => {
    const { kit, faults, clock, store } = setup();
    await kit.whenIdle();
    faults.writeOutcomeUnknownNextWrites(1, { applied: true }).failNextReads(1);
    const error = await kit.runCommand(add(2)).catch((e: unknown) => e);
    expect(isDataflowError(error, 'journal/write-outcome-unknown')).toBe(true);
    await afterBackoff(kit, clock);
    expect(kit.getState()).toEqual({ total: 2 });
    expect((await kit.runCommand(add(1))).reply).toEqual(StatusReply.success(3));
    expect(await storedSequenceNrs(store)).toEqual([1, 2]);
  });
});

describe('a write whose outcome is unknown, with another writer', () => {
  it('finds the other writer\'s events at the head: a concurrency conflict, the entity fails and nothing is overwritten', async () => {
    const store = createInMemoryPersistence();
    // A journal whose append lets another writer in first, then loses the answer.
    const racing = {
      journal: {
        append: async (persistenceId: string, events: readonly NewEvent[], appendOptions: AppendOptions) => {
          await store.journal.append(persistenceId, [{ eventType: 'added', payload: { type: 'added', n: 100 } }], { expectedSequenceNr: appendOptions.expectedSequenceNr, writerId: 'other' });
          throw new JournalWriteOutcomeUnknownError(persistenceId, `timed out (${events.length} events)`);
        },
        replay: store.journal.replay.bind(store.journal),
        highestSequenceNr: store.journal.highestSequenceNr.bind(store.journal),
        deleteTo: store.journal.deleteTo.bind(store.journal),
        close: store.journal.close.bind(store.journal),
      },
      snapshots: store.snapshots,
    };
    const kit = EventSourcedBehaviorTestKit.create(eventSourced(options), { entityId: '1', persistence: racing, clock: new TestClock() });
    const error = await kit.runCommand(add(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConcurrencyConflictError);
    expect(kit.lifecycle.status).toBe('failed');
    expect(await storedSequenceNrs(store)).toEqual([1]);
    const stored: unknown[] = [];
    for await (const e of store.journal.replay('sum-1', 1)) stored.push(e.writerId);
    expect(stored).toEqual(['other']);
  });
});

describe('the runtime answers like the test kit', () => {
  let actors: ActorTestKit | undefined;
  afterEach(async () => {
    await actors?.shutdown();
    actors = undefined;
  });

  it('askWithStatus rejects with the journal error of a failed write, then the entity succeeds after its backoff', async () => {
    actors = createActorTestKit();
    const faults = PersistenceTestKit.wrap(createInMemoryPersistence()).failNextWrites(1);
    const ref = spawnEventSourced(actors.system, eventSourced(options), '1', { persistence: faults });
    const error = await askWithStatus<Cmd, number>(ref, add(1), { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JournalWriteError);
    expect((error as JournalWriteError).retriable).toBe(true);
    const next = askWithStatus<Cmd, number>(ref, add(2), { timeoutMs: 1_000 });
    await actors.advance(100);
    await expect(next).resolves.toBe(2);
  });

  it('askWithStatus rejects with StashOverflowError when the stash is full', async () => {
    actors = createActorTestKit();
    const faults = PersistenceTestKit.wrap(createInMemoryPersistence()).failNextWrites(1);
    const ref = spawnEventSourced(actors.system, eventSourced({ ...options, stashCapacity: 1 }), '1', { persistence: faults });
    const first = askWithStatus<Cmd, number>(ref, add(1), { timeoutMs: 1_000 }).catch((e: unknown) => e); // fails: backoff
    const stashed = askWithStatus<Cmd, number>(ref, add(2), { timeoutMs: 1_000 });
    const overflow = askWithStatus<Cmd, number>(ref, add(3), { timeoutMs: 1_000 });
    await expect(overflow).rejects.toBeInstanceOf(StashOverflowError);
    expect(await first).toBeInstanceOf(JournalWriteError);
    await actors.advance(100);
    await expect(stashed).resolves.toBe(2);
  });
});
