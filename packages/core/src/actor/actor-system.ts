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

export { DEFAULT_TERMINATE_TIMEOUT_MS } from './actor-runtime.js';

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
  /** Default bound of `terminate()`, measured on `scheduler` (default {@link DEFAULT_TERMINATE_TIMEOUT_MS}). */
  readonly terminateTimeoutMs?: number;
}

/** Options of `system.terminate()`. */
export interface TerminateOptions {
  /** How long the stop phases may take before `terminate()` gives up (default: the system's `terminateTimeoutMs`). */
  readonly timeoutMs?: number;
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
  /**
   * Stops every actor in phases, like Pekko's coordinated shutdown:
   * 1. pre-stop, top-down: each actor stops taking messages, its handler in
   *    flight finishes, it gets the `pre-stop` signal (to abort in-flight I/O),
   *    then its children do the same. Every actor gets it before any actor
   *    stops, except that a tree stuck in this phase holds the others back
   *    for half of `timeoutMs` at most;
   * 2. stop, children first: `onStop` runs, `actor.stopped` is emitted;
   * 3. the underlying actor system stops.
   *
   * Resolves when all phases are done. When they take longer than `timeoutMs`
   * (a handler that never returns), the system is terminated anyway and the
   * promise rejects with `TerminateTimeoutError` naming the actors that did
   * not stop. A second call returns the first call's promise.
   */
  terminate(options?: TerminateOptions): Promise<void>;
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
