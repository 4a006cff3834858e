/**
 * The actor system: owns the top-level actors, the injected clock, scheduler
 * and random source, and the instrumentation events. It runs on nact, which
 * stays an implementation detail.
 */
import type { Clock } from '../clock/clock.js';
import type { Scheduler } from '../clock/scheduler.js';
import type { Instrumentation, InstrumentationEvent } from '../instrumentation/instrumentation.js';
import type { SpawnOptions } from './actor-context.js';
import type { ActorRef, AnyActorRef } from './actor-ref.js';
import type { Behavior } from './behavior.js';
import './actor-events.js';
import { ActorRuntime } from './actor-runtime.js';

/** Options of {@link createActorSystem}. */
export interface ActorSystemOptions {
  readonly name: string;
  /** Default: the wall clock. */
  readonly clock?: Clock;
  /** Runs actor timers, backoff restarts and ask timeouts; default: `setTimeout`. */
  readonly scheduler?: Scheduler;
  /** Where events go; default: a new emitter, available as `system.events`. */
  readonly instrumentation?: Instrumentation<InstrumentationEvent>;
  /** Random numbers in [0, 1) for backoff jitter; default `Math.random`. */
  readonly random?: () => number;
}

/** The lifecycle of an actor system. */
export type ActorSystemStatus = 'running' | 'terminating' | 'terminated';

/**
 * A running actor system.
 *
 * @example
 * ```ts
 * const system = createActorSystem({ name: 'pipelines' });
 * const counter = system.spawn(counterBehavior, 'counter');
 * counter.tell({ type: 'add', n: 1 });
 * const total = await ask<CounterMsg, number>(counter, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 });
 * await system.terminate();
 * ```
 */
export interface ActorSystem {
  readonly name: string;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly events: Instrumentation<InstrumentationEvent>;
  readonly status: ActorSystemStatus;
  /** Starts a top-level actor at `/user/<name>`. Throws on a name in use or after `terminate()`. */
  spawn<M, S>(behavior: Behavior<M, S>, name: string, options?: SpawnOptions): ActorRef<M>;
  /** Stops an actor (its children first); resolves once it has stopped. */
  stop(ref: AnyActorRef): Promise<void>;
  /**
   * Resolves once no message is queued or being handled anywhere in the
   * system. Work that waits on the scheduler (timers, backoffs) does not
   * count, so with a test clock this is "everything due has happened".
   */
  settled(): Promise<void>;
  /** Stops every actor (children first), cancels their timers and waits for handlers in flight. */
  terminate(): Promise<void>;
}

/**
 * Starts an actor system.
 *
 * @example
 * ```ts
 * const clock = new TestClock();
 * const system = createActorSystem({ name: 'test', clock, scheduler: clock, random: () => 0.5 });
 * ```
 */
export function createActorSystem(options: ActorSystemOptions): ActorSystem {
  return new ActorRuntime(options).api;
}
