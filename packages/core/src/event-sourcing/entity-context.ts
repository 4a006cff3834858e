/**
 * The context an entity's handlers get in a running entity (internal): ids,
 * the bound effects, a logger that emits `event-sourced.log` events, and the
 * host's ref, timers and children (an actor's, or the test kit's), falling
 * back to the detached context's `EntityContextUnavailableError` for what the
 * host does not give.
 */
import type { SpawnOptions, TimerScheduler } from '../actor/actor-context.js';
import type { ActorRef } from '../actor/actor-ref.js';
import type { Behavior } from '../actor/behavior.js';
import { effectsFor } from './effect.js';
import { detachedContext, type CommandContext, type EntityLogger } from './event-sourced.js';

/** What hosts the entity: its ref, timers and children (an actor's, or the test kit's). Parts left out throw `EntityContextUnavailableError`. */
export interface EntityHost<Cmd> {
  readonly self?: ActorRef<Cmd>;
  readonly timers?: TimerScheduler<Cmd>;
  spawn?<C, CS>(behavior: Behavior<C, CS>, name: string, options?: SpawnOptions): ActorRef<C>;
  child?<C>(name: string): ActorRef<C> | undefined;
}

type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** A logger handing each line to `write`. */
export function entityLogger(write: (level: LogLevel, message: string, fields: Readonly<Record<string, unknown>> | undefined) => void): EntityLogger {
  return {
    debug: (message, fields) => write('debug', message, fields),
    info: (message, fields) => write('info', message, fields),
    warn: (message, fields) => write('warn', message, fields),
    error: (message, fields) => write('error', message, fields),
  };
}

/** The command context of a hosted entity after `lastSequenceNr`. */
export function entityContext<Cmd, Evt, State>(
  host: EntityHost<Cmd>,
  entityId: string,
  persistenceId: string,
  lastSequenceNr: number,
  log: EntityLogger,
): CommandContext<Cmd, Evt, State> {
  const detached = detachedContext<Cmd, Evt, State>(entityId, persistenceId, lastSequenceNr);
  return {
    entityId,
    persistenceId,
    lastSequenceNr,
    effects: effectsFor<Evt, State>(),
    log,
    get self() {
      return host.self ?? detached.self;
    },
    get timers() {
      return host.timers ?? detached.timers;
    },
    spawn: (behavior, name, options) => (host.spawn === undefined ? detached.spawn(behavior, name, options) : host.spawn(behavior, name, options)),
    child: <C>(name: string) => (host.child === undefined ? detached.child<C>(name) : host.child<C>(name)),
  };
}

/** The `type` field of a command, when it has a string one (named in `CommandUnhandledError`). */
export function commandTypeOf(command: unknown): string | undefined {
  const type = typeof command === 'object' && command !== null ? (command as { type?: unknown }).type : undefined;
  return typeof type === 'string' ? type : undefined;
}
