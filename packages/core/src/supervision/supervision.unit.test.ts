import { afterEach, describe, expect, it } from 'vitest';
import type { ActorRef } from '../actor/actor-ref.js';
import { behavior, type Signal } from '../actor/behavior.js';
import { DataflowError } from '../errors/dataflow-error.js';
import type { InstrumentationEvent } from '../instrumentation/instrumentation.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import { decide, type SupervisionPolicy, SupervisorStrategy } from './supervisor-strategy.js';

class Transient extends DataflowError<'test/transient'> {
  constructor() {
    super('test/transient', 'transient', { retriable: true });
  }
}

type Msg = { type: 'add'; n: number } | { type: 'fail'; error: unknown } | { type: 'report' };

/** Adds numbers; reports its total and incarnation to `out`; fails on request. */
const worker = (out: ActorRef<string>) => {
  let incarnations = 0;
  return behavior<Msg, { total: number; incarnation: number }>({
    initialState: () => ({ total: 0, incarnation: 0 }),
    onStart: (state) => ({ ...state, incarnation: ++incarnations }),
    onMessage: (state, msg) => {
      if (msg.type === 'fail') throw msg.error;
      if (msg.type === 'add') return { ...state, total: state.total + msg.n };
      out.tell(`total ${state.total} incarnation ${state.incarnation}`);
      return state;
    },
  });
};

let kit: ActorTestKit;
let events: InstrumentationEvent[];

function start(random?: () => number): ActorTestKit {
  kit = createActorTestKit(random === undefined ? {} : { random });
  events = [];
  kit.system.events.on('*', (e) => events.push(e));
  return kit;
}

const ofType = <T extends InstrumentationEvent['type']>(type: T) =>
  events.filter((e): e is Extract<InstrumentationEvent, { type: T }> => e.type === type);

afterEach(async () => {
  await kit.shutdown();
});

describe('supervision directives', () => {
  it('stops by default (Pekko typed)', async () => {
    const { system } = start();
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(worker(probe.ref), 'w');
    ref.tell({ type: 'fail', error: new Error('boom') });
    ref.tell({ type: 'report' });
    await system.settled();
    expect(ofType('actor.failed')).toMatchObject([{ path: '/user/w', directive: 'stop', during: 'message' }]);
    expect(ofType('actor.stopped')).toMatchObject([{ path: '/user/w', reason: { type: 'failed', error: new Error('boom') } }]);
    expect(ofType('actor.dead-letter')).toMatchObject([{ message: { type: 'report' } }]);
  });

  it('resume keeps the state and drops the failing message', async () => {
    const { system } = start();
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: () => SupervisorStrategy.resume });
    ref.tell({ type: 'add', n: 2 });
    ref.tell({ type: 'fail', error: new Error('boom') });
    ref.tell({ type: 'add', n: 3 });
    ref.tell({ type: 'report' });
    await probe.expectMessage({ toEqual: 'total 5 incarnation 1' });
  });

  it('resume also applies to async handlers that reject', async () => {
    const { system } = start();
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(
      behavior<string, number>({
        initialState: 0,
        onMessage: async (n, msg) => {
          await Promise.resolve();
          if (msg === 'bad') throw new Error('async boom');
          probe.ref.tell(`${msg} ${n + 1}`);
          return n + 1;
        },
      }),
      'async',
      { supervise: () => SupervisorStrategy.resume },
    );
    ref.tell('a');
    ref.tell('bad');
    ref.tell('b');
    expect(await probe.receiveMessages(2)).toEqual(['a 1', 'b 2']);
    expect(ofType('actor.failed')).toMatchObject([{ directive: 'resume', error: new Error('async boom') }]);
  });

  it('restart starts over from a fresh initial state', async () => {
    const { system } = start();
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: () => SupervisorStrategy.restart });
    ref.tell({ type: 'add', n: 2 });
    ref.tell({ type: 'fail', error: new Error('boom') });
    ref.tell({ type: 'add', n: 3 });
    ref.tell({ type: 'report' });
    await probe.expectMessage({ toEqual: 'total 3 incarnation 2' });
    expect(ofType('actor.restarted')).toEqual([{ type: 'actor.restarted', path: '/user/w', attempt: 1, backoffMs: 0 }]);
  });

  it('restartWithLimit stops after too many restarts within the window', async () => {
    const { system, clock } = start();
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(worker(probe.ref), 'w', {
      supervise: () => SupervisorStrategy.restartWithLimit({ maxRestarts: 2, withinMs: 1000 }),
    });
    ref.tell({ type: 'fail', error: new Error('1') });
    ref.tell({ type: 'fail', error: new Error('2') });
    await system.settled();
    clock.advance(1000); // the first two restarts leave the window
    ref.tell({ type: 'fail', error: new Error('3') });
    ref.tell({ type: 'fail', error: new Error('4') });
    ref.tell({ type: 'fail', error: new Error('5') });
    await system.settled();
    expect(ofType('actor.failed').map((e) => e.directive)).toEqual(['restart', 'restart', 'restart', 'restart', 'stop']);
    expect(ofType('actor.stopped')).toMatchObject([{ reason: { type: 'failed', error: new Error('5') } }]);
  });

  it('stops instead of looping when the start of an immediate restart fails', async () => {
    const { system } = start();
    let starts = 0;
    const fragile = behavior<string, undefined>({
      initialState: undefined,
      onStart: (state) => {
        if (++starts > 1) throw new Error('cannot start again');
        return state;
      },
      onMessage: () => {
        throw new Error('boom');
      },
    });
    system.spawn(fragile, 'fragile', { supervise: SupervisorStrategy.restart }).tell('go');
    await system.settled();
    expect(ofType('actor.failed').map((e) => [e.during, e.directive])).toEqual([
      ['message', 'restart'],
      ['start', 'stop'],
    ]);
    expect(ofType('actor.stopped')).toMatchObject([{ path: '/user/fragile', reason: { type: 'failed', error: new Error('cannot start again') } }]);
  });

  it('chooses the directive per error with declarative rules', async () => {
    const { system } = start();
    const probe = kit.createTestProbe<string>();
    const policy: SupervisionPolicy = [
      { retriable: true, then: SupervisorStrategy.restart },
      { when: (e) => e instanceof RangeError, then: SupervisorStrategy.resume },
    ];
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: policy });
    ref.tell({ type: 'add', n: 1 });
    ref.tell({ type: 'fail', error: new RangeError('skip') });
    ref.tell({ type: 'report' });
    await probe.expectMessage({ toEqual: 'total 1 incarnation 1' });
    ref.tell({ type: 'fail', error: new Transient() });
    ref.tell({ type: 'report' });
    await probe.expectMessage({ toEqual: 'total 0 incarnation 2' });
    ref.tell({ type: 'fail', error: new Error('other') });
    await system.settled();
    expect(ofType('actor.failed').map((e) => e.directive)).toEqual(['resume', 'restart', 'stop']);
  });

  it('decide matches tags and falls back to stop', () => {
    const policy: SupervisionPolicy = [{ tag: 'test/transient', then: SupervisorStrategy.restart }];
    expect(decide(policy, new Transient())).toBe(SupervisorStrategy.restart);
    expect(decide(policy, new Error('x'))).toBe(SupervisorStrategy.stop);
    expect(decide(undefined, new Transient())).toBe(SupervisorStrategy.stop);
  });

  it('escalate fails the parent with the child error, then the parent policy applies', async () => {
    const { system } = start();
    const probe = kit.createTestProbe<string>();
    let parentIncarnations = 0;
    const parent = behavior<Msg, undefined>({
      initialState: undefined,
      onStart: (state, ctx) => {
        parentIncarnations++;
        ctx.spawn(worker(probe.ref), 'child', { supervise: () => SupervisorStrategy.escalate });
        return state;
      },
      onMessage: (state, msg, ctx) => {
        ctx.child<Msg>('child')?.tell(msg);
        return state;
      },
    });
    const error = new Error('child broke');
    const ref = system.spawn(parent, 'parent', { supervise: (e) => (e === error ? SupervisorStrategy.restart : SupervisorStrategy.stop) });
    ref.tell({ type: 'add', n: 4 });
    ref.tell({ type: 'fail', error });
    await system.settled();
    ref.tell({ type: 'report' });
    await probe.expectMessage({ toEqual: 'total 0 incarnation 1' }); // a new child of the new parent incarnation
    expect(parentIncarnations).toBe(2);
    expect(ofType('actor.failed')).toMatchObject([
      { path: '/user/parent/child', directive: 'escalate', error },
      { path: '/user/parent', directive: 'restart', during: 'escalation', error },
    ]);
  });

  it('a top-level actor that escalates stops', async () => {
    const { system } = start();
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: () => SupervisorStrategy.escalate });
    ref.tell({ type: 'fail', error: new Error('up') });
    await system.settled();
    expect(ofType('actor.stopped')).toMatchObject([{ path: '/user/w', reason: { type: 'failed' } }]);
  });

  it('tells the parent about a child failure with the directive applied', async () => {
    const { system } = start();
    const signals = kit.createTestProbe<Signal>();
    const probe = kit.createTestProbe<string>();
    const parent = behavior<Msg, undefined>({
      initialState: undefined,
      onStart: (state, ctx) => {
        ctx.spawn(worker(probe.ref), 'child', { supervise: () => SupervisorStrategy.restart });
        return state;
      },
      onMessage: (state, msg, ctx) => {
        ctx.child<Msg>('child')?.tell(msg);
        return state;
      },
      onSignal: (state, signal) => {
        signals.ref.tell(signal);
        return state;
      },
    });
    system.spawn(parent, 'parent').tell({ type: 'fail', error: new Error('oops') });
    await signals.expectMessage({ toSatisfy: (s) => s.type === 'child-failed' && s.directive === 'restart' && s.ref.path === '/user/parent/child' });
    await signals.expectNoMessage();
  });
});

describe('restart with backoff', () => {
  const backoff = SupervisorStrategy.restartWithBackoff({ minBackoffMs: 100, maxBackoffMs: 1000, randomFactor: 0.5, resetAfterMs: 5000 });

  it('waits an exponentially growing, capped, jittered delay before each restart', async () => {
    const { system } = start(() => 0.5);
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: () => backoff });
    for (let i = 0; i < 6; i++) {
      ref.tell({ type: 'fail', error: new Error(`f${i}`) });
      await kit.advance(2000);
    }
    // min * 2^n capped at 1000, times 1 + 0.5 * 0.5
    expect(ofType('actor.backoff.scheduled').map((e) => [e.attempt, e.backoffMs])).toEqual([
      [1, 125],
      [2, 250],
      [3, 500],
      [4, 1000],
      [5, 1250],
      [6, 1250],
    ]);
    expect(ofType('actor.restarted').map((e) => e.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('restarts only when the delay has passed on the injected clock', async () => {
    const { system } = start(() => 0);
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: () => backoff });
    ref.tell({ type: 'fail', error: new Transient() });
    await kit.advance(99);
    expect(ofType('actor.restarted')).toEqual([]);
    await kit.advance(1);
    expect(ofType('actor.restarted')).toEqual([{ type: 'actor.restarted', path: '/user/w', attempt: 1, backoffMs: 100 }]);
  });

  it('stashes messages that arrive during the backoff and delivers them in order after the restart', async () => {
    const { system } = start(() => 0);
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: () => backoff });
    ref.tell({ type: 'fail', error: new Transient() });
    ref.tell({ type: 'add', n: 1 }); // already in the mailbox when the actor fails
    await system.settled();
    ref.tell({ type: 'add', n: 10 }); // during the backoff: stashed
    ref.tell({ type: 'report' });
    await probe.expectNoMessage();
    await kit.advance(100);
    await probe.expectMessage({ toEqual: 'total 11 incarnation 2' });
    expect(ofType('actor.dead-letter')).toEqual([]);
  });

  it('sends stash overflow to dead letters', async () => {
    const { system } = start(() => 0);
    const probe = kit.createTestProbe<string>();
    const small = SupervisorStrategy.restartWithBackoff({ minBackoffMs: 100, maxBackoffMs: 100, stashCapacity: 2 });
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: () => small });
    ref.tell({ type: 'fail', error: new Transient() });
    await system.settled();
    ref.tell({ type: 'add', n: 1 });
    ref.tell({ type: 'add', n: 2 });
    ref.tell({ type: 'add', n: 4 });
    expect(ofType('actor.dead-letter')).toEqual([
      { type: 'actor.dead-letter', path: '/user/w', message: { type: 'add', n: 4 }, reason: 'backoff-stash-overflow' },
    ]);
    await kit.advance(100);
    ref.tell({ type: 'report' });
    await probe.expectMessage({ toEqual: 'total 3 incarnation 2' });
  });

  it('stops after maxRestarts within the window', async () => {
    const { system } = start(() => 0);
    const probe = kit.createTestProbe<string>();
    const limited = SupervisorStrategy.restartWithBackoff({ minBackoffMs: 10, maxBackoffMs: 10, maxRestarts: 2, withinMs: 10_000 });
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: () => limited });
    for (let i = 0; i < 3; i++) {
      ref.tell({ type: 'fail', error: new Transient() });
      await kit.advance(10);
    }
    expect(ofType('actor.restarted')).toHaveLength(2);
    expect(ofType('actor.failed').map((e) => e.directive)).toEqual(['restart-with-backoff', 'restart-with-backoff', 'stop']);
    expect(ofType('actor.stopped')).toMatchObject([{ reason: { type: 'failed' } }]);
  });

  it('resets the delay after resetAfterMs without failures', async () => {
    const { system } = start(() => 0);
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: () => backoff });
    ref.tell({ type: 'fail', error: new Transient() });
    await kit.advance(100);
    ref.tell({ type: 'fail', error: new Transient() });
    await kit.advance(200);
    await kit.advance(5000); // quiet
    ref.tell({ type: 'fail', error: new Transient() });
    await kit.advance(100);
    expect(ofType('actor.backoff.scheduled').map((e) => [e.attempt, e.backoffMs])).toEqual([
      [1, 100],
      [2, 200],
      [1, 100],
    ]);
  });

  it('a failing start during a backoff restart backs off again', async () => {
    const { system } = start(() => 0);
    let starts = 0;
    const flaky = behavior<string, undefined>({
      initialState: undefined,
      onStart: (state) => {
        starts++;
        if (starts <= 2) throw new Transient();
        return state;
      },
      onMessage: (state) => state,
    });
    system.spawn(flaky, 'flaky', { supervise: () => backoff });
    await kit.advance(100);
    await kit.advance(200);
    expect(starts).toBe(3);
    expect(ofType('actor.failed').map((e) => e.during)).toEqual(['start', 'start']);
    expect(ofType('actor.started')).toHaveLength(1);
    expect(ofType('actor.restarted').map((e) => e.backoffMs)).toEqual([100, 200]);
  });

  it('terminate during a backoff cancels it and drops the stash to dead letters', async () => {
    const { system } = start(() => 0);
    const probe = kit.createTestProbe<string>();
    const ref = system.spawn(worker(probe.ref), 'w', { supervise: () => backoff });
    ref.tell({ type: 'fail', error: new Transient() });
    await system.settled();
    ref.tell({ type: 'add', n: 1 });
    await system.terminate();
    expect(ofType('actor.restarted')).toEqual([]);
    expect(ofType('actor.dead-letter')).toMatchObject([{ message: { type: 'add', n: 1 }, reason: 'stopped' }]);
    expect(kit.clock.pendingTasks).toBe(0);
  });
});
