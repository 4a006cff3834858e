/**
 * The design items of issue 9 for `eventSourced`: effects bound once to the
 * behavior's types, a command context with self, timers, spawn, child and a
 * logger, and a recovery-completed signal; in an actor, in the test kit and
 * in pure runs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ActorRef } from '../actor/actor-ref.js';
import { receive } from '../actor/behavior.js';
import { askWithStatus, StatusReply } from '../actor/status-reply.js';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import { EventSourcedBehaviorTestKit } from '../testing/event-sourced-behavior-test-kit.js';
import { TestClock } from '../testing/test-clock.js';
import { effectsFor, type ReplyTo } from './effect.js';
import { decideCommand, eventSourced, type EventSourcedSignal } from './event-sourced.js';
import { EntityContextUnavailableError } from './event-sourcing-errors.js';
import { spawnEventSourced } from './spawn-event-sourced.js';

type Cmd =
  | { readonly type: 'add'; readonly n: number; readonly replyTo?: ReplyTo<StatusReply<number>> }
  | { readonly type: 'add-later'; readonly n: number; readonly delayMs: number }
  | { readonly type: 'add-via-self'; readonly n: number }
  | { readonly type: 'echo'; readonly text: string; readonly replyTo: ReplyTo<StatusReply<string>> };
type Evt = { readonly type: 'added'; readonly n: number };
interface State {
  readonly total: number;
}

function behaviorWith(signals: EventSourcedSignal[] = []) {
  return eventSourced<Cmd, Evt, State>({
    persistenceId: (id) => `ctx-${id}`,
    emptyState: { total: 0 },
    // No generic arguments anywhere: ctx.effects is bound to Evt and State.
    onCommand: (state, cmd, ctx) => {
      switch (cmd.type) {
        case 'add': {
          ctx.log.info('adding', { n: cmd.n, after: ctx.lastSequenceNr });
          const added = ctx.effects.persist({ type: 'added', n: cmd.n });
          return cmd.replyTo === undefined ? added : added.thenReply(cmd.replyTo, (s) => StatusReply.success(s.total));
        }
        case 'add-later':
          ctx.timers.startSingle('later', { type: 'add', n: cmd.n }, cmd.delayMs);
          return ctx.effects.none();
        case 'add-via-self':
          ctx.self.tell({ type: 'add', n: cmd.n });
          return ctx.effects.none();
        case 'echo': {
          const child = ctx.child<{ readonly text: string; readonly replyTo: ReplyTo<StatusReply<string>> }>('echo') ?? ctx.spawn(echo, 'echo');
          child.tell({ text: cmd.text, replyTo: cmd.replyTo });
          return ctx.effects.none();
        }
      }
    },
    onEvent: (state, evt) => ({ total: state.total + evt.n }),
    onSignal: (state, signal, ctx) => {
      signals.push(signal);
      ctx.log.debug('recovered', { total: state.total });
    },
  });
}

const echo = receive<{ readonly text: string; readonly replyTo: ReplyTo<StatusReply<string>> }>((msg) => {
  msg.replyTo.tell(StatusReply.success(`echo:${msg.text}`));
});

describe('effects bound to the behavior', () => {
  it('effectsFor gives the same constructors typed for Evt and State', () => {
    const { persist, none, reply, unhandled, stop } = effectsFor<Evt, State>();
    const replies: StatusReply<number>[] = [];
    const effect = persist({ type: 'added', n: 1 }).thenReply({ tell: (r: StatusReply<number>) => replies.push(r) }, (s) => StatusReply.success(s.total));
    expect(effect.kind).toBe('persist');
    expect(effect.events).toEqual([{ type: 'added', n: 1 }]);
    expect(none().kind).toBe('none');
    expect(unhandled().kind).toBe('unhandled');
    expect(stop().sideEffects).toEqual([{ kind: 'stop' }]);
    expect(reply({ tell: () => undefined }, 3).sideEffects).toHaveLength(1);
  });
});

describe('command context in the test kit', () => {
  it('sends the recovery-completed signal after every recovery, before commands', async () => {
    const signals: EventSourcedSignal[] = [];
    const kit = EventSourcedBehaviorTestKit.create(behaviorWith(signals), { entityId: '1' });
    await kit.runCommand({ type: 'add', n: 2 });
    expect(signals).toEqual([{ type: 'recovery-completed', sequenceNr: 0, eventsReplayed: 0 }]);
    await kit.restart();
    expect(signals.at(-1)).toEqual({ type: 'recovery-completed', sequenceNr: 1, eventsReplayed: 1 });
  });

  it('logs through event-sourced.log events', async () => {
    const kit = EventSourcedBehaviorTestKit.create(behaviorWith(), { entityId: '1' });
    await kit.runCommand({ type: 'add', n: 2 });
    expect(kit.reported).toContainEqual({ type: 'event-sourced.log', persistenceId: 'ctx-1', level: 'info', message: 'adding', fields: { n: 2, after: 0 } });
    expect(kit.reported).toContainEqual({ type: 'event-sourced.log', persistenceId: 'ctx-1', level: 'debug', message: 'recovered', fields: { total: 0 } });
  });

  it('delivers ctx.self and ctx.timers messages to the entity as commands (timers on the kit clock)', async () => {
    const clock = new TestClock();
    const kit = EventSourcedBehaviorTestKit.create(behaviorWith(), { entityId: '1', clock });
    await kit.runCommand({ type: 'add-via-self', n: 3 });
    await kit.whenIdle();
    expect(kit.getState()).toEqual({ total: 3 });
    await kit.runCommand({ type: 'add-later', n: 4, delayMs: 1_000 });
    await clock.advanceAsync(999);
    expect(kit.getState()).toEqual({ total: 3 });
    await clock.advanceAsync(1);
    await kit.whenIdle();
    expect(kit.getState()).toEqual({ total: 7 });
  });

  it('refuses ctx.spawn with EntityContextUnavailableError (it needs an actor)', async () => {
    const kit = EventSourcedBehaviorTestKit.create(behaviorWith(), { entityId: '1' });
    await expect(kit.runCommand((replyTo) => ({ type: 'echo', text: 'x', replyTo }))).rejects.toBeInstanceOf(EntityContextUnavailableError);
  });
});

describe('command context in pure runs', () => {
  it('decideCommand gives ids and effects; self, timers and spawn throw EntityContextUnavailableError', () => {
    const behavior = behaviorWith();
    expect(decideCommand(behavior, { total: 1 }, { type: 'add', n: 2 }).state).toEqual({ total: 3 });
    expect(() => decideCommand(behavior, { total: 1 }, { type: 'add-via-self', n: 2 })).toThrow(EntityContextUnavailableError);
    expect(() => decideCommand(behavior, { total: 1 }, { type: 'add-later', n: 2, delayMs: 1 })).toThrow(EntityContextUnavailableError);
    expect(() => decideCommand(behavior, { total: 1 }, { type: 'echo', text: 'x', replyTo: { tell: () => undefined } })).toThrow(EntityContextUnavailableError);
  });
});

describe('command context in an actor', () => {
  let kit: ActorTestKit | undefined;
  afterEach(async () => {
    await kit?.shutdown();
    kit = undefined;
  });

  it('spawns a child of the entity actor and finds it again, typed, with ctx.child', async () => {
    kit = createActorTestKit();
    const ref = spawnEventSourced(kit.system, behaviorWith(), '1', { persistence: createInMemoryPersistence() });
    const echoed = await askWithStatus<Cmd, string>(ref, (replyTo: ActorRef<StatusReply<string>>) => ({ type: 'echo', text: 'a', replyTo }), { timeoutMs: 1_000 });
    expect(echoed).toBe('echo:a');
    // The second echo finds the child instead of spawning it again (which would throw: the name is taken).
    await expect(askWithStatus<Cmd, string>(ref, (replyTo) => ({ type: 'echo', text: 'b', replyTo }), { timeoutMs: 1_000 })).resolves.toBe('echo:b');
  });

  it('runs timers of the entity on the actor (system clock) and ctx.self through the stash', async () => {
    kit = createActorTestKit();
    const ref = spawnEventSourced(kit.system, behaviorWith(), '1', { persistence: createInMemoryPersistence() });
    ref.tell({ type: 'add-later', n: 5, delayMs: 500 });
    ref.tell({ type: 'add-via-self', n: 1 });
    await kit.advance(500);
    await expect(askWithStatus<Cmd, number>(ref, (replyTo) => ({ type: 'add', n: 0, replyTo }), { timeoutMs: 1_000 })).resolves.toBe(6);
  });
});
