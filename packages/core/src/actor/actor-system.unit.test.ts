import { afterEach, describe, expect, it } from 'vitest';
import type { InstrumentationEvent } from '../instrumentation/instrumentation.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import { ActorNameTakenError, ActorNotRunningError, AskTimeoutError, InvalidActorNameError, StashOverflowError } from './actor-errors.js';
import type { ActorRef } from './actor-ref.js';
import { ask } from './ask.js';
import { behavior, receive, type Signal } from './behavior.js';
import { isDataflowError } from '../errors/dataflow-error.js';

type CounterMsg = { type: 'add'; n: number } | { type: 'get'; replyTo: ActorRef<number> };

const counter = behavior<CounterMsg, number>({
  initialState: 0,
  onMessage: (total, msg) => {
    if (msg.type === 'add') return total + msg.n;
    msg.replyTo.tell(total);
    return total;
  },
});

let kit: ActorTestKit;
const events: InstrumentationEvent[] = [];

function startKit(): ActorTestKit {
  kit = createActorTestKit();
  events.length = 0;
  kit.system.events.on('*', (e) => events.push(e));
  return kit;
}

afterEach(async () => {
  await kit.shutdown();
});

describe('actor system', () => {
  it('delivers messages in order and answers an ask', async () => {
    const { system } = startKit();
    const ref = system.spawn(counter, 'counter');
    ref.tell({ type: 'add', n: 2 });
    ref.tell({ type: 'add', n: 3 });
    await expect(ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1000 })).resolves.toBe(5);
    const getTotal = (replyTo: ActorRef<number>): CounterMsg => ({ type: 'get', replyTo });
    await expect(ask(ref, getTotal, { timeoutMs: 1000 })).resolves.toBe(5);
    expect(ref.path).toBe('/user/counter');
  });

  it('rejects an unanswered ask with a retriable AskTimeoutError when the clock passes the timeout', async () => {
    const { system, clock } = startKit();
    const silent = system.spawn(receive<{ replyTo: ActorRef<string> }>(() => undefined), 'silent');
    const reply = ask(silent, (replyTo: ActorRef<string>) => ({ replyTo }), { timeoutMs: 500 });
    const outcome = reply.then(
      () => 'resolved',
      (e: unknown) => e,
    );
    await kit.advance(499);
    clock.advance(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(AskTimeoutError);
    expect(isDataflowError(error, 'actor/ask-timeout')).toBe(true);
    expect((error as AskTimeoutError).retriable).toBe(true);
  });

  it('sends a reply that comes after the ask completed to dead letters', async () => {
    const { system } = startKit();
    const twice = system.spawn(
      receive<{ replyTo: ActorRef<string> }>((msg) => {
        msg.replyTo.tell('first');
        msg.replyTo.tell('second');
      }),
      'twice',
    );
    await expect(ask(twice, (replyTo: ActorRef<string>) => ({ replyTo }), { timeoutMs: 100 })).resolves.toBe('first');
    expect(events).toContainEqual(expect.objectContaining({ type: 'actor.dead-letter', message: 'second', reason: 'ask-completed' }));
  });

  it('handles async handlers one at a time', async () => {
    const { system } = startKit();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let handling!: () => void;
    const aIsHandled = new Promise<void>((resolve) => (handling = resolve));
    const slow = system.spawn(
      behavior<string, number>({
        initialState: 0,
        onMessage: async (n, msg) => {
          log.push(`start ${msg}`);
          if (msg === 'a') {
            handling();
            await gate;
          }
          log.push(`end ${msg}`);
          return n + 1;
        },
      }),
      'slow',
    );
    slow.tell('a');
    slow.tell('b');
    await aIsHandled;
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual(['start a']);
    release();
    await system.settled();
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b']);
  });

  it('runs onStart before the first message and gives the context', async () => {
    const { system } = startKit();
    const probe = kit.createTestProbe<string>();
    system.spawn(
      behavior<string, string>({
        initialState: 'new',
        onStart: (_state, ctx) => `started at ${ctx.self.path}`,
        onMessage: (state, msg) => {
          probe.ref.tell(`${state}: ${msg}`);
          return state;
        },
      }),
      'greeter',
    ).tell('hello');
    await probe.expectMessage({ toEqual: 'started at /user/greeter: hello' });
  });

  it('refuses invalid and duplicate names, and spawning after terminate', async () => {
    const { system } = startKit();
    expect(() => system.spawn(counter, 'a/b')).toThrow(InvalidActorNameError);
    system.spawn(counter, 'one');
    expect(() => system.spawn(counter, 'one')).toThrow(ActorNameTakenError);
    await system.terminate();
    expect(system.status).toBe('terminated');
    expect(() => system.spawn(counter, 'two')).toThrow(ActorNotRunningError);
  });

  it('frees a name once its actor has stopped, and refuses refs of other systems', async () => {
    const { system } = startKit();
    const first = system.spawn(counter, 'counter');
    await system.stop(first);
    const second = system.spawn(counter, 'counter');
    second.tell({ type: 'add', n: 1 });
    await expect(ask<CounterMsg, number>(second, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 100 })).resolves.toBe(1);
    await expect(system.stop({ path: '/elsewhere', tell: () => undefined })).rejects.toBeInstanceOf(TypeError);
  });

  it('sends messages to a stopped actor to dead letters', async () => {
    const { system } = startKit();
    const ref = system.spawn(counter, 'counter');
    await system.stop(ref);
    ref.tell({ type: 'add', n: 1 });
    expect(events).toContainEqual({ type: 'actor.dead-letter', path: '/user/counter', message: { type: 'add', n: 1 }, reason: 'stopped' });
    expect(events).toContainEqual({ type: 'actor.stopped', path: '/user/counter', reason: { type: 'requested' } });
  });

  it('sends messages still queued when an actor stops itself to dead letters', async () => {
    const { system } = startKit();
    const quitter = system.spawn(
      receive<string>((msg, ctx) => {
        if (msg === 'quit') ctx.stopSelf();
      }),
      'quitter',
    );
    quitter.tell('quit');
    quitter.tell('late-1');
    quitter.tell('late-2');
    await system.settled();
    const dead = events.filter((e) => e.type === 'actor.dead-letter').map((e) => (e.type === 'actor.dead-letter' ? e.message : undefined));
    expect(dead).toEqual(['late-1', 'late-2']);
  });
});

describe('children and signals', () => {
  type ParentMsg = { type: 'spawn'; name: string } | { type: 'stop'; name: string } | { type: 'crash-child'; name: string };

  const child = receive<string>((msg) => {
    if (msg === 'crash') throw new Error('child crashed');
  });

  const parent = (signals: ActorRef<Signal>) =>
    behavior<ParentMsg, undefined>({
      initialState: undefined,
      onMessage: (state, msg, ctx) => {
        if (msg.type === 'spawn') ctx.spawn(child, msg.name);
        if (msg.type === 'stop') {
          const ref = ctx.child(msg.name);
          if (ref !== undefined) ctx.stop(ref);
        }
        if (msg.type === 'crash-child') ctx.child<string>(msg.name)?.tell('crash');
        return state;
      },
      onSignal: (state, signal) => {
        signals.tell(signal);
        return state;
      },
    });

  it('tells the parent when a child stops', async () => {
    const { system } = startKit();
    const signals = kit.createTestProbe<Signal>();
    const p = system.spawn(parent(signals.ref), 'parent');
    p.tell({ type: 'spawn', name: 'kid' });
    p.tell({ type: 'stop', name: 'kid' });
    const signal = await signals.expectMessage();
    expect(signal).toMatchObject({ type: 'child-terminated', reason: { type: 'requested' } });
    expect(signal.type === 'child-terminated' && signal.ref.path).toBe('/user/parent/kid');
  });

  it('tells the parent when a child fails and is stopped (the default policy)', async () => {
    const { system } = startKit();
    const signals = kit.createTestProbe<Signal>();
    const p = system.spawn(parent(signals.ref), 'parent');
    p.tell({ type: 'spawn', name: 'kid' });
    p.tell({ type: 'crash-child', name: 'kid' });
    const [failed, terminated] = await signals.receiveMessages(2);
    expect(failed).toMatchObject({ type: 'child-failed', directive: 'stop', error: new Error('child crashed') });
    expect(terminated).toMatchObject({ type: 'child-terminated', reason: { type: 'failed', error: new Error('child crashed') } });
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'actor.failed', path: '/user/parent/kid', during: 'message', directive: 'stop' }),
    );
  });

  it('stops children before their parent and waits for handlers in flight on terminate', async () => {
    const { system } = startKit();
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let handling!: () => void;
    const childIsHandling = new Promise<void>((resolve) => (handling = resolve));
    const leaf = (name: string) =>
      behavior<string, undefined>({
        initialState: undefined,
        onMessage: async () => {
          handling();
          await gate;
          order.push(`${name} handled`);
          return undefined;
        },
        onStop: () => {
          order.push(`${name} stopped`);
        },
      });
    const root = system.spawn(
      behavior<string, undefined>({
        initialState: undefined,
        onStart: (state, ctx) => {
          ctx.spawn(leaf('child'), 'child').tell('work');
          return state;
        },
        onMessage: (state) => state,
        onStop: () => {
          order.push('root stopped');
        },
      }),
      'root',
    );
    await childIsHandling;
    const terminated = system.terminate();
    root.tell('after terminate');
    release();
    await terminated;
    expect(order).toEqual(['child handled', 'child stopped', 'root stopped']);
    expect(events).toContainEqual(expect.objectContaining({ type: 'actor.stopped', path: '/user/root', reason: { type: 'system-terminated' } }));
    expect(events).toContainEqual(expect.objectContaining({ type: 'actor.dead-letter', path: '/user/root', message: 'after terminate' }));
  });
});

describe('stash', () => {
  it('holds messages until unstashAll, then handles them before newer ones', async () => {
    const { system } = startKit();
    const probe = kit.createTestProbe<string>();
    const gated = system.spawn(
      behavior<string, boolean>({
        initialState: false,
        onMessage: (open, msg, ctx) => {
          if (msg === 'open') {
            ctx.stash.unstashAll();
            return true;
          }
          if (!open) {
            ctx.stash.stash(msg);
            return open;
          }
          probe.ref.tell(msg);
          return open;
        },
      }),
      'gated',
    );
    gated.tell('a');
    gated.tell('b');
    gated.tell('open');
    gated.tell('c');
    expect(await probe.receiveMessages(3)).toEqual(['a', 'b', 'c']);
  });

  it('throws StashOverflowError when full (a failure handled by supervision)', async () => {
    const { system } = startKit();
    const ref = system.spawn(
      receive<string>((msg, ctx) => ctx.stash.stash(msg)),
      'hoarder',
      { stashCapacity: 1 },
    );
    ref.tell('a');
    ref.tell('b');
    await system.settled();
    const failed = events.find((e) => e.type === 'actor.failed');
    expect(failed).toMatchObject({ directive: 'stop' });
    expect((failed as { error: unknown }).error).toBeInstanceOf(StashOverflowError);
    expect(events).toContainEqual(expect.objectContaining({ type: 'actor.dead-letter', message: 'a' }));
  });
});
