/**
 * Typed failures of event-sourced entities: what a caller or an operator sees
 * when an entity cannot accept a command, cannot recover, or was stopped to
 * protect its history.
 */
import { DataflowError, isDataflowError } from '../errors/dataflow-error.js';

export type EventSourcingErrorTag =
  | 'event-sourcing/recovery-failed'
  | 'event-sourcing/unknown-event-version'
  | 'event-sourcing/entity-unavailable'
  | 'event-sourcing/command-unhandled'
  | 'event-sourcing/context-unavailable';

/** Base of every event-sourcing failure. */
export abstract class EventSourcingError<Tag extends EventSourcingErrorTag = EventSourcingErrorTag> extends DataflowError<Tag> {}

/**
 * Recovery (loading the latest snapshot and replaying the events after it)
 * failed: a read failed, an event handler threw, or an event could not be
 * upcast. The entity does not start with a half-applied state.
 */
export class RecoveryFailedError extends EventSourcingError<'event-sourcing/recovery-failed'> {
  constructor(
    readonly persistenceId: string,
    /** The sequence number of the event being applied, when the failure concerns one. */
    readonly sequenceNr: number | undefined,
    message: string,
    options: { retriable: boolean; cause?: unknown },
  ) {
    super(
      'event-sourcing/recovery-failed',
      `Recovery of ${persistenceId} failed${sequenceNr === undefined ? '' : ` at sequence number ${sequenceNr}`}: ${message}`,
      options,
    );
  }
}

/** A stored event (or snapshot, with `eventType` `snapshot`) has a schema version the behavior has no upcaster for. */
export class UnknownEventVersionError extends EventSourcingError<'event-sourcing/unknown-event-version'> {
  constructor(
    readonly eventType: string,
    readonly schemaVersion: number,
    readonly currentSchemaVersion: number,
  ) {
    super(
      'event-sourcing/unknown-event-version',
      `No upcaster for ${eventType}@v${schemaVersion} (current version ${currentSchemaVersion})`,
      { retriable: false },
    );
  }
}

/** The entity has stopped or failed and no longer accepts commands. */
export class EntityUnavailableError extends EventSourcingError<'event-sourcing/entity-unavailable'> {
  constructor(
    readonly persistenceId: string,
    readonly status: 'stopped' | 'failed',
    options: { cause?: unknown } = {},
  ) {
    super('event-sourcing/entity-unavailable', `Entity ${persistenceId} is ${status}`, { retriable: false, ...options });
  }
}

/** The command is not valid in the entity's current state (its handler returned `unhandled()`). Not retriable as is. */
export class CommandUnhandledError extends EventSourcingError<'event-sourcing/command-unhandled'> {
  constructor(
    readonly persistenceId: string,
    /** The command's `type` field, when it has one. */
    readonly commandType: string | undefined,
  ) {
    super('event-sourcing/command-unhandled', `Entity ${persistenceId} cannot handle ${commandType === undefined ? 'this command' : `'${commandType}'`} in its current state`, {
      retriable: false,
    });
  }
}

/** A handler used a part of its context that this run does not provide (e.g. `ctx.spawn` in `decideCommand`). */
export class EntityContextUnavailableError extends EventSourcingError<'event-sourcing/context-unavailable'> {
  constructor(
    readonly persistenceId: string,
    readonly what: string,
  ) {
    super(
      'event-sourcing/context-unavailable',
      `ctx.${what} is not available to ${persistenceId} here: run the behavior in an actor (spawnEventSourced) to use it`,
      { retriable: false },
    );
  }
}

/** True when `value` is a `RecoveryFailedError` (from any copy of this package). */
export function isRecoveryFailed(value: unknown): value is RecoveryFailedError {
  return isDataflowError(value, 'event-sourcing/recovery-failed');
}
