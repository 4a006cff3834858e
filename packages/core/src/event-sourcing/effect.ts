/**
 * Effects: what a command handler decides. A handler returns a plain value
 * (`persist`, `none`, `unhandled`, `stop`, `reply`) that the runtime carries
 * out, so handlers stay pure and testable without an actor system.
 */

/** Anything a reply can be sent to: an actor reference, a test probe, a callback wrapper. */
export interface ReplyTo<Reply> {
  tell(message: Reply): void;
}

/** An action run after the effect's events are persisted, with the state after them. */
export type SideEffect<State> =
  | { readonly kind: 'run'; run(state: State): void }
  | { readonly kind: 'reply'; readonly replyTo: ReplyTo<never>; reply(state: State): unknown }
  | { readonly kind: 'stop' };

/**
 * The decision of a command handler.
 * - `persist`: append `events` atomically (one journal write), then apply them and run the side effects;
 * - `none`: nothing to persist, run the side effects now;
 * - `unhandled`: the command is not valid in this state (reported as an instrumentation event).
 *
 * Chain side effects with `thenRun`, `thenReply` and `thenStop`.
 *
 * @example
 * ```ts
 * const effect = persist<Evt, State>({ type: 'added', n: 2 })
 *   .thenReply(cmd.replyTo, (state) => StatusReply.success(state.total));
 * ```
 */
export interface Effect<Evt, State> {
  readonly kind: 'persist' | 'none' | 'unhandled';
  readonly events: readonly Evt[];
  readonly sideEffects: readonly SideEffect<State>[];
  /** Runs `callback` with the state after the events are applied. */
  thenRun(callback: (state: State) => void): Effect<Evt, State>;
  /**
   * Replies to `replyTo` with a value computed from the state after the events
   * are applied: a `StatusReply` in the default reply style (`StatusReply.success(...)`).
   */
  thenReply<Reply>(replyTo: ReplyTo<Reply>, reply: (state: State) => Reply): Effect<Evt, State>;
  /** Stops the entity after the events are persisted and the earlier side effects ran. */
  thenStop(): Effect<Evt, State>;
}

class EffectValue<Evt, State> implements Effect<Evt, State> {
  constructor(
    readonly kind: 'persist' | 'none' | 'unhandled',
    readonly events: readonly Evt[],
    readonly sideEffects: readonly SideEffect<State>[],
  ) {}

  thenRun(callback: (state: State) => void): Effect<Evt, State> {
    return this.with({ kind: 'run', run: callback });
  }

  thenReply<Reply>(replyTo: ReplyTo<Reply>, reply: (state: State) => Reply): Effect<Evt, State> {
    return this.with({ kind: 'reply', replyTo, reply });
  }

  thenStop(): Effect<Evt, State> {
    return this.with({ kind: 'stop' });
  }

  private with(sideEffect: SideEffect<State>): Effect<Evt, State> {
    return new EffectValue(this.kind, this.events, [...this.sideEffects, sideEffect]);
  }
}

/**
 * Persists one event, or several atomically (one journal append: all or none).
 *
 * @example
 * ```ts
 * onCommand: (state, cmd) => persist([{ type: 'reserved', id: cmd.id }, { type: 'charged', id: cmd.id }]),
 * ```
 */
export function persist<Evt, State = never>(events: Evt | readonly Evt[]): Effect<Evt, State> {
  const list: readonly Evt[] = Array.isArray(events) ? (events as readonly Evt[]) : [events as Evt];
  return new EffectValue<Evt, State>(list.length === 0 ? 'none' : 'persist', list, []);
}

/**
 * Persists nothing; side effects chained on it run at once.
 *
 * @example
 * ```ts
 * onCommand: (state, cmd) => none<Evt, State>().thenReply(cmd.replyTo, (s) => StatusReply.success(s.total)),
 * ```
 */
export function none<Evt = never, State = never>(): Effect<Evt, State> {
  return new EffectValue<Evt, State>('none', [], []);
}

/**
 * The command is not valid in the current state; the runtime reports it as
 * `event-sourced.command.unhandled` and persists nothing.
 *
 * @example
 * ```ts
 * onCommand: (state, cmd) => (state.open ? persist({ type: 'closed' }) : unhandled()),
 * ```
 */
export function unhandled<Evt = never, State = never>(): Effect<Evt, State> {
  return new EffectValue<Evt, State>('unhandled', [], []);
}

/**
 * Stops the entity without persisting anything.
 *
 * @example
 * ```ts
 * onCommand: (state, cmd) => (cmd.type === 'passivate' ? stop() : none()),
 * ```
 */
export function stop<Evt = never, State = never>(): Effect<Evt, State> {
  return none<Evt, State>().thenStop();
}

/**
 * Replies with `value` and persists nothing.
 *
 * @example
 * ```ts
 * onCommand: (state, cmd) => reply(cmd.replyTo, StatusReply.success(state.total)),
 * ```
 */
export function reply<Reply, Evt = never, State = never>(replyTo: ReplyTo<Reply>, value: Reply): Effect<Evt, State> {
  return none<Evt, State>().thenReply(replyTo, () => value);
}

/**
 * The effect constructors bound to one behavior's event and state types, so a
 * command handler needs no generic arguments: `ctx.effects.persist(evt).thenReply(...)`.
 * The command context carries them; `effectsFor<Evt, State>()` gives the same
 * object outside a handler. They are plain functions: destructuring is fine.
 */
export interface Effects<Evt, State> {
  /** {@link persist}: one event, or several atomically. */
  readonly persist: (events: Evt | readonly Evt[]) => Effect<Evt, State>;
  /** {@link none}: nothing to persist. */
  readonly none: () => Effect<Evt, State>;
  /** {@link unhandled}: not valid in this state. */
  readonly unhandled: () => Effect<Evt, State>;
  /** {@link stop}: stop without persisting. */
  readonly stop: () => Effect<Evt, State>;
  /** {@link reply}: reply with `value`, persist nothing. */
  readonly reply: <Reply>(replyTo: ReplyTo<Reply>, value: Reply) => Effect<Evt, State>;
}

const boundEffects: Effects<unknown, unknown> = Object.freeze({
  persist: (events: unknown) => persist<unknown, unknown>(events),
  none: () => none<unknown, unknown>(),
  unhandled: () => unhandled<unknown, unknown>(),
  stop: () => stop<unknown, unknown>(),
  reply: <Reply>(replyTo: ReplyTo<Reply>, value: Reply) => reply<Reply, unknown, unknown>(replyTo, value),
});

/**
 * The effect constructors typed for `Evt` and `State` (one shared object: the
 * types exist only at compile time).
 *
 * @example
 * ```ts
 * const { persist, none } = effectsFor<Evt, State>();
 * const effect = persist({ type: 'added', n: 2 }).thenReply(cmd.replyTo, (s) => StatusReply.success(s.total));
 * ```
 */
export function effectsFor<Evt, State>(): Effects<Evt, State> {
  return boundEffects as Effects<Evt, State>;
}
