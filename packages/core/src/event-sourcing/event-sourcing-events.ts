/**
 * Instrumentation events of event-sourced entities, merged into the system's
 * `InstrumentationEventMap` so `system.events.on('event-sourced.persist.failed', ...)`
 * is typed. Failures are reported here instead of being logged and dropped.
 */
import type { RecoveryFailedError } from './event-sourcing-errors.js';

interface Base<Type extends string> {
  readonly type: Type;
  readonly persistenceId: string;
}

export interface EventSourcingEventMap {
  /** Recovery finished; commands are handled from now on. */
  'event-sourced.recovered': Base<'event-sourced.recovered'> & {
    readonly sequenceNr: number;
    readonly snapshotSequenceNr: number | undefined;
    readonly eventsReplayed: number;
  };
  /** Recovery failed; the entity restarts with backoff when the cause is retriable, or fails. */
  'event-sourced.recovery.failed': Base<'event-sourced.recovery.failed'> & { readonly error: RecoveryFailedError };
  /**
   * A journal append returned (`ok`) or failed, `durationMs` after it was
   * issued (by the entity's clock): the journal's write latency as an entity
   * sees it. Emitted before `persisted` / `persist.failed`.
   */
  'event-sourced.journal.written': Base<'event-sourced.journal.written'> & { readonly events: number; readonly ok: boolean; readonly durationMs: number };
  /** An append succeeded. */
  'event-sourced.persisted': Base<'event-sourced.persisted'> & { readonly sequenceNr: number; readonly events: number };
  /**
   * An append failed; nothing was applied and its commands got an error reply.
   * `outcome` says what the entity does: `restart` (retriable failure or a
   * held writer lease: back off, recover, go on), `rejected` (the store
   * refused the events: the entity goes on at once), `reread-head` (the write
   * may have been stored: the head is read again before any other write).
   */
  'event-sourced.persist.failed': Base<'event-sourced.persist.failed'> & {
    readonly error: unknown;
    readonly commands: readonly unknown[];
    readonly events: number;
    readonly outcome: 'restart' | 'rejected' | 'reread-head';
  };
  /** After a write with an unknown outcome, the head was read again: the write was stored (`applied`) or not. */
  'event-sourced.write-outcome.resolved': Base<'event-sourced.write-outcome.resolved'> & {
    readonly applied: boolean;
    readonly sequenceNr: number;
  };
  /** A line of `ctx.log`. */
  'event-sourced.log': Base<'event-sourced.log'> & {
    readonly level: 'debug' | 'info' | 'warn' | 'error';
    readonly message: string;
    readonly fields: Readonly<Record<string, unknown>> | undefined;
  };
  /** Another writer holds the sequence numbers: the entity stops instead of forking the history. */
  'event-sourced.concurrency-conflict': Base<'event-sourced.concurrency-conflict'> & {
    readonly error: unknown;
    readonly commands: readonly unknown[];
  };
  /** A restart is scheduled `delayMs` after `at` (epoch ms of the injected clock). */
  'event-sourced.restarting': Base<'event-sourced.restarting'> & {
    readonly attempt: number;
    readonly delayMs: number;
    readonly cause: unknown;
    readonly at: number;
  };
  /** The stash was full; the command was refused with `StashOverflowError`. */
  'event-sourced.stash.overflow': Base<'event-sourced.stash.overflow'> & { readonly capacity: number; readonly command: unknown };
  'event-sourced.command.unhandled': Base<'event-sourced.command.unhandled'> & { readonly command: unknown };
  /** The command handler (or the event handler on its new events) threw; nothing was persisted and the entity goes on. */
  'event-sourced.command.failed': Base<'event-sourced.command.failed'> & { readonly command: unknown; readonly error: unknown };
  /** A `thenRun` or `thenReply` callback, or the `onSignal` handler, threw. */
  'event-sourced.side-effect.failed': Base<'event-sourced.side-effect.failed'> & { readonly error: unknown };
  'event-sourced.snapshot.saved': Base<'event-sourced.snapshot.saved'> & { readonly sequenceNr: number };
  /** Saving a snapshot or applying retention failed; the entity goes on (recovery replays more events). */
  'event-sourced.snapshot.failed': Base<'event-sourced.snapshot.failed'> & {
    readonly sequenceNr: number;
    readonly operation: 'save' | 'delete-snapshots' | 'delete-events';
    readonly error: unknown;
  };
  /** Retention deleted the events up to `toSequenceNr`. */
  'event-sourced.events.deleted': Base<'event-sourced.events.deleted'> & { readonly toSequenceNr: number };
  'event-sourced.stopped': Base<'event-sourced.stopped'> & { readonly reason: 'stop-effect' | 'requested' };
  'event-sourced.failed': Base<'event-sourced.failed'> & { readonly error: unknown };
  /** A command reached a stopped or failed entity; its reply address got `EntityUnavailableError`. */
  'event-sourced.dead-letter': Base<'event-sourced.dead-letter'> & { readonly command: unknown; readonly status: 'stopped' | 'failed' };
}

export type EventSourcingInstrumentationEvent = EventSourcingEventMap[keyof EventSourcingEventMap];

declare module '../instrumentation/instrumentation.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- merges the event-sourcing events into the system's map
  interface InstrumentationEventMap extends EventSourcingEventMap {}
}
