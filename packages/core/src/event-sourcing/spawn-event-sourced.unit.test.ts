/**
 * The event-sourced runtime hosted in an actor of the actor system: commands
 * by `tell` and `ask`, recovery in a new system, and a concurrency conflict
 * that stops the actor.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { askWithStatus } from '../actor/status-reply.js';
import type { InstrumentationEvent } from '../instrumentation/instrumentation.js';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';
import { ConcurrencyConflictError } from '../persistence/persistence-errors.js';
import { SupervisorStrategy } from '../supervision/supervisor-strategy.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import { PersistenceTestKit } from '../testing/persistence-test-kit.js';
import { counter, type CounterCommand, type CounterEvent, type CounterState } from './examples/counter.js';
import { spawnEventSourced } from './spawn-event-sourced.js';
import { eventSourced, type CommandContext } from './event-sourced.js';

const kits: ActorTestKit[] = [];
const newKit = (): ActorTestKit => {
  const kit = createActorTestKit();
  kits.push(kit);
  return kit;
};
afterEach(async () => {
  for (const kit of kits.splice(0)) await kit.shutdown();
});

describe('spawnEventSourced', () => {
  it('handles commands in an actor and recovers in a new system', async () => {
    const persistence = createInMemoryPersistence();
    const first = newKit();
    const ref = spawnEventSourced(first.system, counter, '1', { persistence });
    ref.tell({ type: 'add', n: 2 });
    ref.tell({ type: 'add', n: 3 });
    expect(await askWithStatus<CounterCommand, number>(ref, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 })).toBe(5);
    expect(ref.path).toContain('counter-1');

    const second = newKit();
    const again = spawnEventSourced(second.system, counter, '1', { persistence, name: 'counter-one' });
    expect(await askWithStatus<CounterCommand, number>(again, (replyTo) => ({ type: 'add', n: 1, replyTo }), { timeoutMs: 1_000 })).toBe(6);
  });

  it('fails the actor on a concurrency conflict: the caller gets the conflict, actor.failed is emitted and it stops with reason failed', async () => {
    const persistence = createInMemoryPersistence();
    const kit = newKit();
    const events: InstrumentationEvent[] = [];
    kit.system.events.on('*', (e) => events.push(e));
    const stopped = new Promise<InstrumentationEvent>((resolve) => kit.system.events.on('actor.stopped', resolve));
    const stale = spawnEventSourced(kit.system, counter, '1', { persistence, name: 'stale' });
    expect(await askWithStatus<CounterCommand, number>(stale, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 })).toBe(0);
    await persistence.journal.append('counter-1', [{ eventType: 'added', payload: { type: 'added', n: 9 } }], { expectedSequenceNr: 0, writerId: 'other' });

    const refused = askWithStatus<CounterCommand, number>(stale, (replyTo) => ({ type: 'add', n: 1, replyTo }), { timeoutMs: 1_000 });
    await expect(refused).rejects.toBeInstanceOf(ConcurrencyConflictError);
    expect(await stopped).toEqual({ type: 'actor.stopped', path: '/user/stale', reason: { type: 'failed', error: expect.any(ConcurrencyConflictError) as unknown } });
    expect(events).toContainEqual({
      type: 'actor.failed',
      path: '/user/stale',
      error: expect.any(ConcurrencyConflictError) as unknown,
      during: 'message',
      directive: 'stop',
    });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['event-sourced.concurrency-conflict', 'event-sourced.failed']));
    expect(events.filter((e) => e.type === 'actor.stopped' && e.reason.type === 'requested')).toEqual([]);
  });

  it('restarts a failed entity under its supervise policy: the new incarnation recovers the other writer\'s events', async () => {
    const persistence = createInMemoryPersistence();
    const kit = newKit();
    const restarted = new Promise<InstrumentationEvent>((resolve) => kit.system.events.on('actor.restarted', resolve));
    const ref = spawnEventSourced(kit.system, counter, '1', { persistence, supervise: SupervisorStrategy.restart });
    expect(await askWithStatus<CounterCommand, number>(ref, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 })).toBe(0);
    await persistence.journal.append('counter-1', [{ eventType: 'added', payload: { type: 'added', n: 9 } }], { expectedSequenceNr: 0, writerId: 'other' });
    await expect(askWithStatus<CounterCommand, number>(ref, (replyTo) => ({ type: 'add', n: 1, replyTo }), { timeoutMs: 1_000 })).rejects.toBeInstanceOf(
      ConcurrencyConflictError,
    );
    await restarted;
    expect(await askWithStatus<CounterCommand, number>(ref, (replyTo) => ({ type: 'add', n: 1, replyTo }), { timeoutMs: 1_000 })).toBe(10);
  });

  it('restarts with backoff on the system clock after a failed write, recovering from the journal', async () => {
    const faults = PersistenceTestKit.wrap(createInMemoryPersistence()).failNextWrites(1);
    const kit = newKit();
    const restarts: number[] = [];
    kit.system.events.on('event-sourced.restarting', (e) => restarts.push(e.delayMs));
    const ref = spawnEventSourced(kit.system, eventSourced({ ...counterOptions(), onPersistFailure: { minBackoffMs: 50, maxBackoffMs: 50, randomFactor: 0 } }), '1', { persistence: faults });
    ref.tell({ type: 'add', n: 2 }); // fails
    const answer = askWithStatus<CounterCommand, number>(ref, (replyTo) => ({ type: 'add', n: 3, replyTo }), { timeoutMs: 1_000 }); // stashed through the backoff
    await kit.advance(49);
    expect(restarts).toEqual([50]);
    await kit.advance(1);
    expect(await answer).toBe(3);
  });
  it('reports each journal append with its duration by the entity clock and its outcome, before persisted', async () => {
    const persistence = createInMemoryPersistence();
    const kit = newKit();
    const events: InstrumentationEvent[] = [];
    kit.system.events.on('*', (e) => {
      if (e.type === 'event-sourced.journal.written' || e.type === 'event-sourced.persisted') events.push(e);
    });
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = {
      ...persistence,
      journal: new Proxy(persistence.journal, {
        get(target, key, receiver) {
          const value: unknown = Reflect.get(target, key, receiver);
          if (typeof value !== 'function') return value;
          const fn = value as (...args: unknown[]) => Promise<unknown>;
          return key === 'append' ? async (...args: unknown[]) => held.then(() => fn.apply(target, args)) : fn.bind(target);
        },
      }),
    };
    const ref = spawnEventSourced(kit.system, counter, '1', { persistence: slow });
    const added = askWithStatus<CounterCommand, number>(ref, (replyTo) => ({ type: 'add', n: 2, replyTo }), { timeoutMs: 10_000 });
    await kit.advance(250);
    release();
    expect(await added).toBe(2);
    expect(events).toEqual([
      { type: 'event-sourced.journal.written', persistenceId: 'counter-1', events: 1, ok: true, durationMs: 250 },
      { type: 'event-sourced.persisted', persistenceId: 'counter-1', sequenceNr: 1, events: 1 },
    ]);
  });
});

function counterOptions() {
  return {
    persistenceId: counter.persistenceId,
    emptyState: counter.emptyState,
    onCommand: (state: CounterState, command: CounterCommand, ctx: CommandContext<CounterCommand, CounterEvent, CounterState>) => counter.onCommand(state, command, ctx),
    onEvent: (state: CounterState, event: CounterEvent) => counter.onEvent(state, event),
  };
}
