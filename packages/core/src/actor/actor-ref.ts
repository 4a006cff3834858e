/**
 * The address of an actor: the only way to talk to it. A ref is typed by the
 * messages the actor accepts; it never exposes the actor's state.
 */

/**
 * Sends messages of type `M` to an actor. `tell` never throws and never
 * blocks: messages to a stopped actor become `actor.dead-letter` events.
 * A ref is the same object for the whole life of the actor, so refs can be
 * compared with `===` (e.g. against `signal.ref`).
 *
 * @example
 * ```ts
 * const counter: ActorRef<CounterMsg> = system.spawn(counterBehavior, 'counter');
 * counter.tell({ type: 'add', n: 2 });
 * ```
 */
export interface ActorRef<M> {
  /** Where the actor lives, e.g. `/user/pipelines/orders`. */
  readonly path: string;
  tell(message: M): void;
}

/** A ref whose messages are not known here: it can be compared, stopped or watched, not told. */
export type AnyActorRef = ActorRef<never>;
