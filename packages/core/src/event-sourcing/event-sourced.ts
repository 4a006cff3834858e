/**
 * `eventSourced(...)`: an event-sourced behavior as a plain value (Pekko's
 * `EventSourcedBehavior`). It names its persistence id, its empty state, a
 * command handler that returns an `Effect` and an event handler that folds
 * events into state. `spawnEventSourced` runs it; `decideCommand` and `applyEvents`
 * run its logic without a system.
 */
import type { SpawnOptions, TimerScheduler } from '../actor/actor-context.js';
import type { ActorRef } from '../actor/actor-ref.js';
import type { Behavior } from '../actor/behavior.js';
import { effectsFor, type Effect, type Effects, type ReplyTo } from './effect.js';
import { validateBackoffPolicy } from '../supervision/backoff.js';
import { EntityContextUnavailableError, UnknownEventVersionError } from './event-sourcing-errors.js';
import type { SnapshotPolicy } from './snapshot-policy.js';

/** Structured log lines of an entity; they become `event-sourced.log` instrumentation events (core prints nothing). */
export interface EntityLogger {
  debug(message: string, fields?: Readonly<Record<string, unknown>>): void;
  info(message: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(message: string, fields?: Readonly<Record<string, unknown>>): void;
  error(message: string, fields?: Readonly<Record<string, unknown>>): void;
}

/**
 * What an entity's handlers may know and use besides its state: who it is,
 * its own ref, timers (their messages arrive as commands), children and a
 * logger. In an actor (`spawnEventSourced`) these are the actor's; the test
 * kit gives `self`, `timers` and `log`; pure runs (`decideCommand`,
 * `BehaviorSpec`) give ids and `log` only (the others throw
 * `EntityContextUnavailableError`).
 */
export interface EntityContext<Cmd = unknown> {
  readonly entityId: string;
  readonly persistenceId: string;
  /** Sequence number of the last persisted event (0 before the first). */
  readonly lastSequenceNr: number;
  /** The entity's own ref: a command told to it goes through the stash like any other. */
  readonly self: ActorRef<Cmd>;
  /** Keyed timers whose messages arrive as commands (cancelled when the entity's actor stops). */
  readonly timers: TimerScheduler<Cmd>;
  /** Starts a child actor of the entity's actor. */
  spawn<C, CS>(behavior: Behavior<C, CS>, name: string, options?: SpawnOptions): ActorRef<C>;
  /** The child with this name, typed as the caller knows it, if it is alive. */
  child<C = never>(name: string): ActorRef<C> | undefined;
  readonly log: EntityLogger;
}

/** What a command handler gets besides its state: the entity context and the effect constructors bound to its types. */
export interface CommandContext<Cmd = unknown, Evt = unknown, State = unknown> extends EntityContext<Cmd> {
  /** `persist`, `none`, `unhandled`, `stop`, `reply`, typed for this behavior: no generic arguments needed. */
  readonly effects: Effects<Evt, State>;
}

/** Lifecycle notifications of an entity. */
export type EventSourcedSignal =
  /** Recovery finished (at start and after every restart), before the first command is handled. */
  { readonly type: 'recovery-completed'; readonly sequenceNr: number; readonly eventsReplayed: number };

/**
 * How the entity answers (`replies` option):
 * - `status` (default): every command with a reply address gets exactly one
 *   `StatusReply`: the handler's reply on success, `StatusReply.error(...)`
 *   when the write failed, the handler threw, the command was unhandled, the
 *   stash was full or the entity is unavailable. Pair with `askWithStatus`.
 * - `plain` (deprecated, for callers not migrated yet): the handler's reply
 *   only; a full stash or an unavailable entity tells the error object itself,
 *   a failed write or a throwing handler sends nothing.
 */
export type ReplyStyle = 'status' | 'plain';

/** One upcaster per stored version: `steps[v]` turns a value of schema version `v` into one of version `v + 1`. */
export type UpcastSteps = Readonly<Record<number, (payload: unknown) => unknown>> | ReadonlyMap<number, (payload: unknown) => unknown>;

/**
 * Upgrades stored payloads: `upcasters[eventType][v]` turns a payload of
 * schema version `v` into one of version `v + 1`; they chain up to the
 * current version. A plain object or a `Map`; of an object only its own
 * properties count, so any event type name (`constructor`, `__proto__`,
 * `toString`, ...) is looked up safely.
 */
export type Upcasters = Readonly<Record<string, UpcastSteps>> | ReadonlyMap<string, UpcastSteps>;

/** Restart-with-backoff after a failed journal write or a retriable recovery failure. */
export interface PersistFailureBackoff {
  /** First delay (default 200). */
  readonly minBackoffMs?: number;
  /** Cap of the doubling delay (default 10 000). */
  readonly maxBackoffMs?: number;
  /** Jitter: the delay is multiplied by `1 + random * randomFactor` (default 0.2). */
  readonly randomFactor?: number;
  /**
   * Restarts allowed before the entity fails for good (default unlimited: an
   * outage of any length is waited out); reset by a successful write. A
   * writer lease held elsewhere is always waited out and never counted.
   */
  readonly maxRestarts?: number;
}

export interface EventSourcedOptions<Cmd, Evt, State> {
  /** Maps an entity id to its persistence id, e.g. `(id) => \`counter-${id}\``. */
  readonly persistenceId: (entityId: string) => string;
  readonly emptyState: State;
  /** Decides what a command does; must not mutate `state`. `ctx.effects` builds effects without generic arguments. */
  onCommand(state: State, command: Cmd, ctx: CommandContext<Cmd, Evt, State>): Effect<Evt, State>;
  /** Folds an event into the state; must be pure (it runs again on every recovery). */
  onEvent(state: State, event: Evt): State;
  /** Lifecycle signals (`recovery-completed`), e.g. to start a timer; a throw is reported and ignored. */
  onSignal?(state: State, signal: EventSourcedSignal, ctx: EntityContext<Cmd>): void;
  /** How commands are answered (default `status`: every command gets a `StatusReply`). */
  readonly replies?: ReplyStyle;
  /** Tags stored with each event, for `eventsByTag`. */
  tagger?(event: Evt): readonly string[];
  /** The stored event type name (default: the event's `type` field). */
  eventType?(event: Evt): string;
  /**
   * Schema version events are written with and upcast to (default 1),
   * globally or per event type (a plain object, of which only own properties
   * count, or a `Map`; types not named get 1).
   */
  readonly schemaVersion?: number | Readonly<Record<string, number>> | ReadonlyMap<string, number>;
  readonly upcasters?: Upcasters;
  readonly snapshot?: SnapshotPolicy<Evt, State>;
  /** Schema version snapshots of the state are written with (default 1). */
  readonly stateSchemaVersion?: number;
  /** `snapshotUpcasters[v]` turns a stored state of version `v` into version `v + 1`. */
  readonly snapshotUpcasters?: UpcastSteps;
  /** Commands kept while recovering, writing or backing off (default 1000); more are refused with `StashOverflowError` (an error reply). */
  readonly stashCapacity?: number;
  readonly onPersistFailure?: PersistFailureBackoff;
  /**
   * Group commit: up to this many commands waiting in the stash are decided
   * together (each against the state after the previous ones) and their
   * events written in one atomic append; they succeed or fail together.
   * Default 1: one append per command, as in Pekko.
   */
  readonly maxCommandsPerAppend?: number;
  /** Where a command's reply goes (default: its `replyTo` field when that has a `tell` method). */
  replyToOf?(command: Cmd): ReplyTo<unknown> | undefined;
}

/** A behavior value: the options, validated, with defaults filled in. */
export interface EventSourcedBehavior<Cmd, Evt, State> {
  readonly kind: 'event-sourced';
  readonly persistenceId: (entityId: string) => string;
  readonly emptyState: State;
  onCommand(state: State, command: Cmd, ctx: CommandContext<Cmd, Evt, State>): Effect<Evt, State>;
  onEvent(state: State, event: Evt): State;
  onSignal(state: State, signal: EventSourcedSignal, ctx: EntityContext<Cmd>): void;
  readonly replies: ReplyStyle;
  tagsOf(event: Evt): readonly string[];
  eventTypeOf(event: Evt): string;
  schemaVersionOf(eventType: string): number;
  /** Turns a stored payload into a current event; throws `UnknownEventVersionError` when it cannot. */
  upcast(eventType: string, schemaVersion: number, payload: unknown): Evt;
  readonly snapshot: SnapshotPolicy<Evt, State> | undefined;
  readonly stateSchemaVersion: number;
  /** Turns a stored snapshot state into a current one; throws `UnknownEventVersionError` when it cannot. */
  upcastState(schemaVersion: number, state: unknown): State;
  readonly stashCapacity: number;
  readonly onPersistFailure: Required<PersistFailureBackoff>;
  readonly maxCommandsPerAppend: number;
  replyToOf(command: Cmd): ReplyTo<unknown> | undefined;
}

/**
 * Defines an event-sourced behavior.
 *
 * @example
 * ```ts
 * const counter = eventSourced<Cmd, Evt, State>({
 *   persistenceId: (id) => `counter-${id}`,
 *   emptyState: { total: 0 },
 *   onCommand: (state, cmd) => (cmd.type === 'add' ? persist({ type: 'added', n: cmd.n }) : unhandled()),
 *   onEvent: (state, evt) => ({ total: state.total + evt.n }),
 *   snapshot: every(100, { keep: 2 }),
 * });
 * ```
 */
export function eventSourced<Cmd, Evt, State>(options: EventSourcedOptions<Cmd, Evt, State>): EventSourcedBehavior<Cmd, Evt, State> {
  const stashCapacity = options.stashCapacity ?? 1000;
  if (!Number.isInteger(stashCapacity) || stashCapacity < 0) {
    throw new RangeError(`stashCapacity must be a non-negative integer, got ${stashCapacity}`);
  }
  const maxCommandsPerAppend = options.maxCommandsPerAppend ?? 1;
  if (!Number.isInteger(maxCommandsPerAppend) || maxCommandsPerAppend < 1) {
    throw new RangeError(`maxCommandsPerAppend must be a positive integer, got ${maxCommandsPerAppend}`);
  }
  const backoff = options.onPersistFailure ?? {};
  const onPersistFailure: Required<PersistFailureBackoff> = {
    minBackoffMs: backoff.minBackoffMs ?? 200,
    maxBackoffMs: backoff.maxBackoffMs ?? 10_000,
    randomFactor: backoff.randomFactor ?? 0.2,
    maxRestarts: backoff.maxRestarts ?? Infinity,
  };
  validateBackoffPolicy(onPersistFailure, 'onPersistFailure');
  const replies = options.replies ?? 'status';
  if (replies !== 'status' && replies !== 'plain') throw new RangeError(`replies must be 'status' or 'plain', got ${String(replies)}`);
  const versions = options.schemaVersion ?? 1;
  // Maps, not the option objects: `versions['constructor']` would be a function.
  const versionByType = typeof versions === 'number' ? undefined : toMap(versions);
  if (typeof versions === 'number') validateSchemaVersion(versions, 'schemaVersion');
  for (const [type, version] of versionByType ?? []) validateSchemaVersion(version, `schemaVersion of ${type}`);
  const schemaVersionOf = (eventType: string): number => (versionByType === undefined ? (versions as number) : (versionByType.get(eventType) ?? 1));
  const upcasters = new Map<string, ReadonlyMap<number, (payload: unknown) => unknown>>();
  for (const [type, steps] of toMap(options.upcasters ?? new Map<string, UpcastSteps>())) upcasters.set(type, toStepMap(steps));
  const noSteps: ReadonlyMap<number, (payload: unknown) => unknown> = new Map();
  const snapshotUpcasters = toStepMap(options.snapshotUpcasters ?? noSteps);
  const stateSchemaVersion = options.stateSchemaVersion ?? 1;
  validateSchemaVersion(stateSchemaVersion, 'stateSchemaVersion');

  return {
    kind: 'event-sourced',
    persistenceId: options.persistenceId,
    emptyState: options.emptyState,
    onCommand: (state, command, ctx) => options.onCommand(state, command, ctx),
    onEvent: (state, event) => options.onEvent(state, event),
    onSignal: (state, signal, ctx) => options.onSignal?.(state, signal, ctx),
    replies,
    tagsOf: (event) => (options.tagger === undefined ? [] : options.tagger(event)),
    eventTypeOf: (event) => (options.eventType === undefined ? defaultEventType(event) : options.eventType(event)),
    schemaVersionOf,
    upcast: (type, schemaVersion, payload) => upcastStep(upcasters.get(type) ?? noSteps, type, schemaVersion, schemaVersionOf(type), payload) as Evt,
    snapshot: options.snapshot,
    stateSchemaVersion,
    upcastState: (schemaVersion, state) => upcastStep(snapshotUpcasters, 'snapshot', schemaVersion, stateSchemaVersion, state) as State,
    stashCapacity,
    onPersistFailure,
    maxCommandsPerAppend,
    replyToOf: (command) => (options.replyToOf === undefined ? defaultReplyTo(command) : options.replyToOf(command)),
  };
}

/** The entries of a `Map`, or the own enumerable properties of a plain object (never inherited ones). */
function toMap<V>(source: Readonly<Record<string, V>> | ReadonlyMap<string, V>): ReadonlyMap<string, V> {
  return isReadonlyMap(source) ? new Map(source) : new Map(Object.entries(source));
}

function toStepMap(steps: UpcastSteps): ReadonlyMap<number, (value: unknown) => unknown> {
  if (isReadonlyMap(steps)) return new Map(steps);
  return new Map(Object.entries(steps).map(([version, step]) => [Number(version), step] as const));
}

function isReadonlyMap<K, V>(value: object): value is ReadonlyMap<K, V> {
  return value instanceof Map;
}

function validateSchemaVersion(version: number, what: string): void {
  if (!Number.isInteger(version) || version < 1) throw new RangeError(`${what} must be a positive integer, got ${String(version)}`);
}

function upcastStep(
  steps: ReadonlyMap<number, (value: unknown) => unknown>,
  type: string,
  schemaVersion: number,
  current: number,
  value: unknown,
): unknown {
  let version = schemaVersion;
  let upcast = value;
  while (version < current) {
    const step = steps.get(version);
    if (step === undefined) throw new UnknownEventVersionError(type, schemaVersion, current);
    upcast = step(upcast);
    version++;
  }
  if (version > current) throw new UnknownEventVersionError(type, schemaVersion, current);
  return upcast;
}

function defaultEventType(event: unknown): string {
  const type = typeof event === 'object' && event !== null ? (event as { type?: unknown }).type : undefined;
  if (typeof type !== 'string') {
    throw new TypeError('Event has no string `type` field; give the behavior an `eventType` function');
  }
  return type;
}

function defaultReplyTo(command: unknown): ReplyTo<unknown> | undefined {
  if (typeof command !== 'object' || command === null) return undefined;
  const replyTo = (command as { replyTo?: unknown }).replyTo;
  if (typeof replyTo !== 'object' || replyTo === null) return undefined;
  return typeof (replyTo as { tell?: unknown }).tell === 'function' ? (replyTo as ReplyTo<unknown>) : undefined;
}

/** The outcome of `decideCommand`: the handler's effect and the state after its events. */
export interface Decision<Evt, State> {
  readonly effect: Effect<Evt, State>;
  readonly events: readonly Evt[];
  readonly state: State;
}

/**
 * Runs the command handler and applies its events, without a system or journal.
 *
 * @example
 * ```ts
 * const { events, state } = decideCommand(counter, { total: 1 }, { type: 'add', n: 2 });
 * // events: [{ type: 'added', n: 2 }], state: { total: 3 }
 * ```
 */
export function decideCommand<Cmd, Evt, State>(
  behavior: EventSourcedBehavior<Cmd, Evt, State>,
  state: State,
  command: Cmd,
  ctx: Partial<CommandContext<Cmd, Evt, State>> = {},
): Decision<Evt, State> {
  const entityId = ctx.entityId ?? 'test';
  // Descriptors, not a spread: a spread would call the throwing getters of the detached context.
  const full = Object.defineProperties(
    detachedContext<Cmd, Evt, State>(entityId, behavior.persistenceId(entityId), ctx.lastSequenceNr ?? 0),
    Object.getOwnPropertyDescriptors(ctx),
  );
  const effect = behavior.onCommand(state, command, full);
  return { effect, events: effect.events, state: applyEvents(behavior, state, effect.events) };
}

/** Log lines of a context without a system go nowhere. */
const silentLogger: EntityLogger = Object.freeze({ debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined });

/**
 * A command context outside any actor (pure runs): ids, `effects` and a
 * silent `log`; `self`, `timers`, `spawn` and `child` throw
 * `EntityContextUnavailableError`.
 */
export function detachedContext<Cmd, Evt, State>(entityId: string, persistenceId: string, lastSequenceNr: number): CommandContext<Cmd, Evt, State> {
  const unavailable = (what: string) => (): never => {
    throw new EntityContextUnavailableError(persistenceId, what);
  };
  return {
    entityId,
    persistenceId,
    lastSequenceNr,
    effects: effectsFor<Evt, State>(),
    log: silentLogger,
    get self(): ActorRef<Cmd> {
      return unavailable('self')();
    },
    get timers(): TimerScheduler<Cmd> {
      return unavailable('timers')();
    },
    spawn: unavailable('spawn'),
    child: unavailable('child'),
  };
}

/**
 * Folds `events` into `state` with the behavior's event handler.
 *
 * @example
 * ```ts
 * applyEvents(counter, counter.emptyState, [{ type: 'added', n: 1 }]); // { total: 1 }
 * ```
 */
export function applyEvents<Evt, State>(
  behavior: Pick<EventSourcedBehavior<never, Evt, State>, 'onEvent'>,
  state: State,
  events: readonly Evt[],
): State {
  let current = state;
  for (const event of events) current = behavior.onEvent(current, event);
  return current;
}
