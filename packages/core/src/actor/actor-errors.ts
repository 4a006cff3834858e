/**
 * Failures of the actor runtime.
 */
import { DataflowError } from '../errors/dataflow-error.js';

export type ActorErrorTag =
  | 'actor/ask-timeout'
  | 'actor/invalid-name'
  | 'actor/name-taken'
  | 'actor/not-running'
  | 'actor/stash-overflow'
  | 'actor/terminate-timeout';

/** Base of every actor runtime failure. */
export abstract class ActorError<Tag extends ActorErrorTag = ActorErrorTag> extends DataflowError<Tag> {}

/**
 * No reply arrived in time. Retriable: the target may just be slow, restarting
 * or backing off.
 */
export class AskTimeoutError extends ActorError<'actor/ask-timeout'> {
  constructor(
    readonly path: string,
    readonly timeoutMs: number,
  ) {
    super('actor/ask-timeout', `No reply from ${path} within ${timeoutMs} ms`, { retriable: true });
  }
}

/** An actor name must be non-empty and URL-safe (letters, digits and `-$_.+!*'(),`). */
export class InvalidActorNameError extends ActorError<'actor/invalid-name'> {
  constructor(readonly actorName: string) {
    super('actor/invalid-name', `Invalid actor name ${JSON.stringify(actorName)}: use letters, digits and -$_.+!*'(),`);
  }
}

/** A sibling with the same name is alive. */
export class ActorNameTakenError extends ActorError<'actor/name-taken'> {
  constructor(readonly path: string) {
    super('actor/name-taken', `An actor already lives at ${path}`);
  }
}

/** Spawning under an actor (or a system) that is stopping or stopped. */
export class ActorNotRunningError extends ActorError<'actor/not-running'> {
  constructor(readonly path: string) {
    super('actor/not-running', `${path} is stopping or stopped: it cannot spawn children`);
  }
}

/** `ctx.stash.stash()` on a full buffer. */
export class StashOverflowError extends ActorError<'actor/stash-overflow'> {
  constructor(
    readonly path: string,
    readonly capacity: number,
  ) {
    super('actor/stash-overflow', `Stash of ${path} is full (capacity ${capacity})`);
  }
}

/**
 * `system.terminate()` did not finish within its timeout: some actors did not
 * stop, typically because a handler never returned (it awaits I/O that
 * nothing aborts). The system is terminated anyway; those handlers are
 * abandoned and whatever they do later is ignored. Not retriable.
 */
export class TerminateTimeoutError extends ActorError<'actor/terminate-timeout'> {
  constructor(
    readonly systemName: string,
    readonly timeoutMs: number,
    /** Paths of the actors that had not stopped, parents before children. */
    readonly notStopped: readonly string[],
    /** The subset of `notStopped` whose handler was still running: the likely culprits. */
    readonly busy: readonly string[],
  ) {
    super(
      'actor/terminate-timeout',
      `Actor system ${systemName} did not terminate within ${timeoutMs} ms: ${notStopped.length} actor(s) did not stop` +
        (busy.length === 0 ? '' : `; a handler never returned in ${busy.join(', ')}`) +
        (notStopped.length === busy.length ? '' : `; still stopping: ${notStopped.filter((p) => !busy.includes(p)).join(', ')}`),
    );
  }
}
