/**
 * Behaviors are values: a plain object says how an actor starts, reacts to
 * messages and signals, and stops. It can be unit-tested by calling its
 * functions directly; the actor system runs it.
 */
import type { DirectiveType } from '../supervision/supervisor-strategy.js';
import type { ActorContext } from './actor-context.js';
import type { AnyActorRef } from './actor-ref.js';

/** Why an actor stopped. */
export type StopReason =
  /** `ctx.stop(child)`, `ctx.stopSelf()` or `system.stop(ref)`. */
  | { readonly type: 'requested' }
  /** A failure whose directive was `stop` or `escalate`, or a restart limit was exceeded. */
  | { readonly type: 'failed'; readonly error: unknown }
  /** Its parent stopped. */
  | { readonly type: 'parent-stopped' }
  /** Its parent restarted (children do not survive a restart). */
  | { readonly type: 'parent-restarted' }
  /** `system.terminate()`. */
  | { readonly type: 'system-terminated' };

/**
 * Lifecycle notifications: those about children are delivered to a parent
 * through its mailbox, in order with its messages; `pre-stop` is delivered
 * when the actor's own incarnation ends.
 */
export type Signal =
  /** A child failed; `directive` is what its supervision did about it. */
  | { readonly type: 'child-failed'; readonly ref: AnyActorRef; readonly error: unknown; readonly directive: DirectiveType }
  /** A child stopped for good. Not delivered to a parent that is itself stopping. */
  | { readonly type: 'child-terminated'; readonly ref: AnyActorRef; readonly reason: StopReason }
  /**
   * This incarnation is ending (a stop, or a restart after a failure): sent
   * once its handler in flight has finished and BEFORE its children are
   * stopped, so it can abort in-flight I/O (fire an `AbortController`) that a
   * child's handler waits on. Then the children stop, then `onStop` runs.
   * Not delivered through the mailbox: messages still queued go to dead
   * letters. The returned state is the one `onStop` gets.
   */
  | { readonly type: 'pre-stop' };

/** A handler's result: the next state, now or later. */
export type Next<S> = S | Promise<S>;

/**
 * How an actor with messages `M` and state `S` behaves. Handlers run one at a
 * time: an async handler holds the mailbox until its promise settles. A
 * handler that throws (or rejects) is a failure, handled by the supervision
 * policy given at spawn.
 */
export interface Behavior<M, S> {
  /** The state of a new incarnation (at spawn and at every restart). A function is called each time, so mutable state is never shared between incarnations. */
  readonly initialState: S | (() => S);
  /** Runs before the first message of each incarnation; may replace the state (e.g. after loading it). */
  readonly onStart?: (state: S, ctx: ActorContext<M>) => Next<S>;
  readonly onMessage: (state: S, message: M, ctx: ActorContext<M>) => Next<S>;
  /** Child lifecycle notifications and `pre-stop`; ignored when absent. */
  readonly onSignal?: (state: S, signal: Signal, ctx: ActorContext<M>) => Next<S>;
  /** Runs when an incarnation ends: at stop, and before a restart. Children are already stopped (after the `pre-stop` signal). */
  readonly onStop?: (state: S, ctx: ActorContext<M>) => void | Promise<void>;
}

/**
 * Declares a behavior (an identity function that fixes the type parameters).
 *
 * @example
 * ```ts
 * type CounterMsg = { type: 'add'; n: number } | { type: 'get'; replyTo: ActorRef<number> };
 * const counter = behavior<CounterMsg, number>({
 *   initialState: 0,
 *   onMessage: (total, msg) => {
 *     if (msg.type === 'add') return total + msg.n;
 *     msg.replyTo.tell(total);
 *     return total;
 *   },
 * });
 * ```
 */
export function behavior<M, S>(definition: Behavior<M, S>): Behavior<M, S> {
  return definition;
}

/**
 * A stateless behavior from a message handler (Pekko's `Behaviors.receiveMessage`).
 *
 * @example
 * ```ts
 * const printer = receive<string>((line, ctx) => output.push(`${ctx.self.path}: ${line}`));
 * ```
 */
export function receive<M>(onMessage: (message: M, ctx: ActorContext<M>) => void | Promise<void>): Behavior<M, undefined> {
  return {
    initialState: undefined,
    onMessage: (_state, message, ctx) => {
      const result = onMessage(message, ctx);
      return result === undefined ? undefined : result.then(() => undefined);
    },
  };
}

/** The initial state of `definition` for a new incarnation. */
export function initialStateOf<S>(definition: Behavior<unknown, S> | Behavior<never, S>): S {
  const initial = definition.initialState;
  return typeof initial === 'function' ? (initial as () => S)() : initial;
}
