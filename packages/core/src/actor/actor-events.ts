/**
 * Instrumentation events of the actor runtime, merged into the open
 * `InstrumentationEventMap`.
 */
import type { DirectiveType } from '../supervision/supervisor-strategy.js';
import type { StopReason } from './behavior.js';

/** An actor's incarnation started (at spawn and after each restart). */
export interface ActorStartedEvent {
  readonly type: 'actor.started';
  readonly path: string;
}

/** A handler threw or rejected; `directive` is what supervision decided. `during: 'escalation'` means a child escalated its failure; `during: 'stop'` failures do not change anything: the actor stops anyway. */
export interface ActorFailedEvent {
  readonly type: 'actor.failed';
  readonly path: string;
  readonly error: unknown;
  readonly during: 'start' | 'message' | 'signal' | 'escalation' | 'stop';
  readonly directive: DirectiveType;
}

/** A backoff restart is scheduled `backoffMs` from now; `attempt` counts restarts since the last reset (from 1). */
export interface ActorBackoffScheduledEvent {
  readonly type: 'actor.backoff.scheduled';
  readonly path: string;
  readonly attempt: number;
  readonly backoffMs: number;
}

/** The actor restarted with a fresh state (`backoffMs` 0 for an immediate restart). */
export interface ActorRestartedEvent {
  readonly type: 'actor.restarted';
  readonly path: string;
  readonly attempt: number;
  readonly backoffMs: number;
}

/** The actor stopped for good. */
export interface ActorStoppedEvent {
  readonly type: 'actor.stopped';
  readonly path: string;
  readonly reason: StopReason;
}

/**
 * A message that no actor will handle: sent to a stopped actor, left in the
 * mailbox or stash when it stopped, dropped when a backoff stash overflowed,
 * or a reply that came after its ask timed out.
 */
export interface ActorDeadLetterEvent {
  readonly type: 'actor.dead-letter';
  readonly path: string;
  readonly message: unknown;
  readonly reason: 'stopped' | 'backoff-stash-overflow' | 'ask-completed';
}

/** `system.terminate()` gave up after `timeoutMs`: these actors had not stopped (`busy`: their handler was still running). */
export interface ActorTerminateTimedOutEvent {
  readonly type: 'actor.terminate.timed-out';
  readonly system: string;
  readonly timeoutMs: number;
  readonly notStopped: readonly string[];
  readonly busy: readonly string[];
}

declare module '../instrumentation/instrumentation.js' {
  interface InstrumentationEventMap {
    'actor.started': ActorStartedEvent;
    'actor.failed': ActorFailedEvent;
    'actor.backoff.scheduled': ActorBackoffScheduledEvent;
    'actor.restarted': ActorRestartedEvent;
    'actor.stopped': ActorStoppedEvent;
    'actor.dead-letter': ActorDeadLetterEvent;
    'actor.terminate.timed-out': ActorTerminateTimedOutEvent;
  }
}
