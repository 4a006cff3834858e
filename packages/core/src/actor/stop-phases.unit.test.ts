import { afterEach, describe, expect, it } from 'vitest';
import type { InstrumentationEvent } from '../instrumentation/instrumentation.js';
import { SupervisorStrategy } from '../supervision/supervisor-strategy.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import { TestClock } from '../testing/test-clock.js';
import { createTestProbe } from '../testing/test-probe.js';
import { isDataflowError } from '../errors/dataflow-error.js';
import { TerminateTimeoutError } from './actor-errors.js';
import type { ActorRef } from './actor-ref.js';
import { createActorSystem } from './actor-system.js';
import { behavior, receive } from './behavior.js';

/** A sink-like child: its handler returns only when the signal it was given is aborted (as ADR 0004 asks sinks to do). */
type SinkMsg = { readonly type: 'write'; readonly signal: AbortSignal; readonly started: ActorRef<string> };

function abortAwaitingSink(log: string[]) {
  return behavior<SinkMsg, undefined>({
    initialState: undefined,
    onMessage: async (state, msg) => {
      msg.started.tell('writing');
      await new Promise<void>((resolve) => {
        if (msg.signal.aborted) resolve();
        else msg.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      log.push('sink:write-aborted');
      return state;
    },
    onStop: () => {
      log.push('sink:post-stop');
    },
  });
}

type PipelineMsg = { readonly type: 'write'; readonly started: ActorRef<string> } | { readonly type: 'fail' };

/** A pipeline-like parent: it owns an AbortController and fires it in `pre-stop`, as the pipeline actor does. */
function abortingParent(log: string[]) {
  return behavior<PipelineMsg, { readonly abort: AbortController; readonly sink: ActorRef<SinkMsg> | undefined }>({
    initialState: () => ({ abort: new AbortController(), sink: undefined }),
    onStart: (state, ctx) => ({ ...state, sink: ctx.spawn(abortAwaitingSink(log), 'sink') }),
    onMessage: (state, msg) => {
      if (msg.type === 'fail') throw new Error('parent failed');
      state.sink?.tell({ type: 'write', signal: state.abort.signal, started: msg.started });
      return state;
    },
    onSignal: (state, signal) => {
      if (signal.type === 'pre-stop') {
        log.push('parent:pre-stop');
        state.abort.abort();
      }
      return state;
    },
    onStop: () => {
      log.push('parent:post-stop');
    },
  });
}

let kit: ActorTestKit | undefined;
const events: InstrumentationEvent[] = [];

function startKit(): ActorTestKit {
  kit = createActorTestKit();
  events.length = 0;
  kit.system.events.on('*', (e) => events.push(e));
  return kit;
}

/** Fails instead of hanging when `promise` never settles (a deadlock), like a probe's real-time bound. */
function notHanging<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung (deadlock)`)), 3_000);
  });
  return Promise.race([promise, hung]).finally(() => clearTimeout(timer));
}

/** Resolves with the first event (already seen or still to come) that matches. */
function eventMatching(predicate: (event: InstrumentationEvent) => boolean): Promise<InstrumentationEvent> {
  const seen = events.find(predicate);
  if (seen !== undefined) return Promise.resolve(seen);
  return new Promise((resolve) => {
    const off = kit!.system.events.on('*', (event) => {
      if (!predicate(event)) return;
      off();
      resolve(event);
    });
  });
}

afterEach(async () => {
  if (kit !== undefined && kit.system.status === 'running') await notHanging(kit.shutdown(), 'shutdown');
  kit = undefined;
});

describe('pre-stop phase', () => {
  it('lets a parent abort the I/O its child waits on, so terminate() completes', async () => {
    const { system } = startKit();
    const log: string[] = [];
    const started = kit!.createTestProbe<string>();
    const pipeline = system.spawn(abortingParent(log), 'pipeline');
    pipeline.tell({ type: 'write', started: started.ref });
    await started.expectMessage({ toEqual: 'writing' });
    await notHanging(system.terminate(), 'terminate()');
    expect(log).toEqual(['parent:pre-stop', 'sink:write-aborted', 'sink:post-stop', 'parent:post-stop']);
    expect(system.status).toBe('terminated');
  });

  it('runs before the children stop when the parent is stopped with system.stop', async () => {
    const { system } = startKit();
    const log: string[] = [];
    const started = kit!.createTestProbe<string>();
    const pipeline = system.spawn(abortingParent(log), 'pipeline');
    pipeline.tell({ type: 'write', started: started.ref });
    await started.expectMessage({ toEqual: 'writing' });
    await notHanging(system.stop(pipeline), 'system.stop()');
    expect(log).toEqual(['parent:pre-stop', 'sink:write-aborted', 'sink:post-stop', 'parent:post-stop']);
  });

  it('runs before the children stop when the parent stops through ctx.stop of its own parent', async () => {
    const { system } = startKit();
    const log: string[] = [];
    const started = kit!.createTestProbe<string>();
    type Msg = { readonly type: 'start'; readonly replyTo: ActorRef<ActorRef<PipelineMsg>> } | { readonly type: 'stop' };
    const supervisor = system.spawn(
      behavior<Msg, undefined>({
        initialState: undefined,
        onMessage: (state, msg, ctx) => {
          if (msg.type === 'start') msg.replyTo.tell(ctx.spawn(abortingParent(log), 'pipeline'));
          else ctx.stop(ctx.child('pipeline')!);
          return state;
        },
      }),
      'supervisor',
    );
    const refs = kit!.createTestProbe<ActorRef<PipelineMsg>>();
    supervisor.tell({ type: 'start', replyTo: refs.ref });
    const pipeline = await refs.expectMessage();
    pipeline.tell({ type: 'write', started: started.ref });
    await started.expectMessage({ toEqual: 'writing' });
    supervisor.tell({ type: 'stop' });
    await notHanging(system.settled(), 'ctx.stop');
    expect(log).toEqual(['parent:pre-stop', 'sink:write-aborted', 'sink:post-stop', 'parent:post-stop']);
    expect(events).toContainEqual({ type: 'actor.stopped', path: '/user/supervisor/pipeline', reason: { type: 'requested' } });
  });

  it('is delivered before a restart stops the children too', async () => {
    const { system } = startKit();
    const log: string[] = [];
    const started = kit!.createTestProbe<string>();
    const pipeline = system.spawn(abortingParent(log), 'pipeline', { supervise: SupervisorStrategy.restart });
    pipeline.tell({ type: 'write', started: started.ref });
    await started.expectMessage({ toEqual: 'writing' });
    pipeline.tell({ type: 'fail' });
    await notHanging(system.settled(), 'the restart');
    expect(log).toEqual(['parent:pre-stop', 'sink:write-aborted', 'sink:post-stop', 'parent:post-stop']);
    expect(events).toContainEqual(expect.objectContaining({ type: 'actor.restarted', path: '/user/pipeline' }));
  });

  it('reports a pre-stop handler that throws and still stops the actor and its children', async () => {
    const { system } = startKit();
    const log: string[] = [];
    const failing = behavior<string, undefined>({
      initialState: undefined,
      onStart: (state, ctx) => {
        ctx.spawn(receive<string>(() => undefined), 'kid');
        return state;
      },
      onMessage: (state) => state,
      onSignal: (state, signal) => {
        if (signal.type === 'pre-stop') throw new Error('pre-stop broke');
        return state;
      },
      onStop: () => {
        log.push('post-stop');
      },
    });
    const ref = system.spawn(failing, 'failing');
    await system.settled();
    await system.stop(ref);
    expect(log).toEqual(['post-stop']);
    expect(events).toContainEqual(expect.objectContaining({ type: 'actor.failed', path: '/user/failing', during: 'stop' }));
    expect(events).toContainEqual(expect.objectContaining({ type: 'actor.stopped', path: '/user/failing/kid' }));
  });
});

describe('terminate timeout', () => {
  it('ends with a TerminateTimeoutError naming the actors that did not stop when a handler never returns', async () => {
    const { system, clock } = startKit();
    const started = kit!.createTestProbe<string>();
    const stuck = behavior<ActorRef<string>, undefined>({
      initialState: undefined,
      onMessage: (_state, replyTo) => {
        replyTo.tell('stuck');
        return new Promise<undefined>(() => undefined);
      },
    });
    const parent = system.spawn(
      behavior<ActorRef<string>, ActorRef<ActorRef<string>> | undefined>({
        initialState: undefined,
        onStart: (_state, ctx) => ctx.spawn(stuck, 'stuck'),
        onMessage: (child, msg) => {
          child?.tell(msg);
          return child;
        },
      }),
      'parent',
    );
    system.spawn(receive<string>(() => undefined), 'idle');
    parent.tell(started.ref);
    await started.expectMessage({ toEqual: 'stuck' });

    const outcome = system.terminate({ timeoutMs: 5_000 }).then(
      () => 'terminated',
      (error: unknown) => error,
    );
    // Phase 1 gives up on the stuck tree after half the budget: the other actors stop meanwhile.
    clock.advance(2_500);
    await eventMatching((e) => e.type === 'actor.stopped' && e.path === '/user/idle');
    clock.advance(2_499);
    expect(system.status).toBe('terminating');
    clock.advance(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(TerminateTimeoutError);
    expect(isDataflowError(error, 'actor/terminate-timeout')).toBe(true);
    const timeout = error as TerminateTimeoutError;
    expect(timeout.retriable).toBe(false);
    expect(timeout.notStopped).toEqual(['/user/parent', '/user/parent/stuck']);
    expect(timeout.busy).toEqual(['/user/parent/stuck']);
    expect(timeout.message).toContain('/user/parent/stuck');
    expect(system.status).toBe('terminated');
    expect(events).toContainEqual(expect.objectContaining({ type: 'actor.terminate.timed-out', notStopped: timeout.notStopped, busy: timeout.busy }));
    expect(events).toContainEqual({ type: 'actor.stopped', path: '/user/idle', reason: { type: 'system-terminated' } });
  });

  it('uses the system option terminateTimeoutMs by default', async () => {
    const clock = new TestClock();
    const system = createActorSystem({ name: 'bounded', clock, scheduler: clock, terminateTimeoutMs: 100 });
    const started = createTestProbe<string>(system);
    const ref = system.spawn(
      behavior<ActorRef<string>, undefined>({
        initialState: undefined,
        onMessage: (_state, replyTo) => {
          replyTo.tell('stuck');
          return new Promise<undefined>(() => undefined);
        },
      }),
      'stuck',
    );
    ref.tell(started.ref);
    await started.expectMessage({ toEqual: 'stuck' });
    const outcome = system.terminate().catch((e: unknown) => e);
    clock.advance(100);
    const error = await outcome;
    expect(error).toBeInstanceOf(TerminateTimeoutError);
    expect((error as TerminateTimeoutError).timeoutMs).toBe(100);
    expect((error as TerminateTimeoutError).busy).toEqual(['/user/stuck']);
  });

  it('rejects a negative terminateTimeoutMs', () => {
    expect(() => createActorSystem({ name: 'negative', terminateTimeoutMs: -1 })).toThrow(RangeError);
  });
});
