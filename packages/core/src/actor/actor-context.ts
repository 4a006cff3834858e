/**
 * What a behavior's handlers can do besides computing the next state: know
 * themselves, spawn and stop children, schedule timers and stash messages.
 */
import type { SupervisionPolicy } from '../supervision/supervisor-strategy.js';
import type { ActorRef, AnyActorRef } from './actor-ref.js';
import type { ActorSystem } from './actor-system.js';
import type { Behavior } from './behavior.js';

/** Options of `system.spawn` and `ctx.spawn`. */
export interface SpawnOptions {
  /** What to do when a handler fails; default: stop (as in Pekko typed). */
  readonly supervise?: SupervisionPolicy;
  /** Capacity of `ctx.stash` (default 1000). */
  readonly stashCapacity?: number;
}

/**
 * Timers owned by one actor, keyed so that starting a timer with a key in use
 * replaces it. A cancelled or replaced timer never delivers, even if its
 * message was already due. All timers are cancelled when the actor stops or
 * restarts. Time comes from the system's injected scheduler.
 *
 * @example
 * ```ts
 * ctx.timers.startSingle('batch-timeout', { type: 'batch-timed-out', batchId }, 300_000);
 * ctx.timers.startPeriodic('flush', { type: 'flush' }, 5_000);
 * ctx.timers.cancel('batch-timeout');
 * ```
 */
export interface TimerScheduler<M> {
  /** Delivers `message` once, `delayMs` from now. */
  startSingle(key: string, message: M, delayMs: number): void;
  /** Delivers `message` every `intervalMs`, the first time `intervalMs` from now. */
  startPeriodic(key: string, message: M, intervalMs: number): void;
  cancel(key: string): void;
  cancelAll(): void;
  isActive(key: string): boolean;
}

/**
 * Messages put aside until the actor can handle them (Pekko's `StashBuffer`).
 * Stashed messages are dropped to dead letters when the actor stops or restarts.
 *
 * @example
 * ```ts
 * onMessage: (state, msg, ctx) => {
 *   if (state.status === 'loading') { ctx.stash.stash(msg); return state; }
 *   ...
 * }
 * ```
 */
export interface StashBuffer<M> {
  /** Puts `message` aside; throws `StashOverflowError` when the buffer is full. */
  stash(message: M): void;
  /** Once the current handler is done, handles every stashed message, in order, before anything else in the mailbox. */
  unstashAll(): void;
  readonly size: number;
  readonly capacity: number;
}

/**
 * The context given to every handler of a behavior.
 *
 * @example
 * ```ts
 * onStart: (state, ctx) => {
 *   const worker = ctx.spawn(workerBehavior, 'worker', { supervise: SupervisorStrategy.restart });
 *   return { ...state, worker };
 * }
 * ```
 */
export interface ActorContext<M> {
  readonly self: ActorRef<M>;
  readonly path: string;
  readonly system: ActorSystem;
  readonly timers: TimerScheduler<M>;
  readonly stash: StashBuffer<M>;
  /** Starts a child; it stops when this actor stops or restarts, and this actor gets its signals. Throws on a name in use. */
  spawn<C, CS>(behavior: Behavior<C, CS>, name: string, options?: SpawnOptions): ActorRef<C>;
  /**
   * The child with this name, if it is alive, typed as the caller says
   * (`ctx.child<SinkMsg>('sink')`); the default `never` allows stopping and
   * comparing it, not telling it.
   */
  child<C = never>(name: string): ActorRef<C> | undefined;
  /** Stops a child of this actor (ignores refs that are not children). */
  stop(child: AnyActorRef): void;
  /** Stops this actor once the current handler is done. */
  stopSelf(): void;
  /**
   * Settles `promise` outside the actor and delivers `toMessage(outcome)` to
   * this actor through its mailbox (Pekko's `pipeToSelf`). The mapping runs
   * inside the actor: if it throws, the actor fails as if a handler threw. An
   * outcome arriving after the actor stopped goes to dead letters.
   *
   * @example
   * ```ts
   * ctx.pipeToSelf(sink.write(batch, signal), (outcome) =>
   *   outcome.ok ? { type: 'written', position: outcome.value } : { type: 'write-failed', error: outcome.error });
   * ```
   */
  pipeToSelf<T>(promise: PromiseLike<T>, toMessage: (outcome: Outcome<T>) => M): void;
}

/** How a piped promise settled. */
export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };
