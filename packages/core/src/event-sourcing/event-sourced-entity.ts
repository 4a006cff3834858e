/**
 * The engine of one event-sourced entity, independent of how messages reach
 * it: recovery, the bounded stash, atomic persistence (state and sequence
 * number advance only after the append succeeded), side effects, snapshots
 * with retention, and restart with backoff after a failed write. Every
 * command gets an answer (see `ReplyStyle`); after a write whose outcome is
 * unknown the head is read again before any other write.
 * `spawnEventSourced` hosts it in an actor; the test kit drives it directly.
 *
 * Over 400 lines: the write path (decide, append, the outcomes of a failed
 * append) shares the stash, lifecycle and incarnation counter; split apart
 * each piece would need all of them.
 *
 * All methods run synchronously; journal and snapshot promises re-enter it
 * through callbacks guarded by an incarnation counter, so a callback from an
 * incarnation that was restarted or stopped is ignored.
 */
import { randomUUID } from 'node:crypto';
import { StashOverflowError } from '../actor/actor-errors.js';
import { StatusReply } from '../actor/status-reply.js';
import type { Clock } from '../clock/clock.js';
import type { Scheduler, Cancellable } from '../clock/scheduler.js';
import { isDataflowError } from '../errors/dataflow-error.js';
import type { Instrumentation, InstrumentationEvent } from '../instrumentation/instrumentation.js';
import type { AppendResult, NewEvent } from '../persistence/journal.js';
import {
  ConcurrencyConflictError,
  isConcurrencyConflict,
  isWriteOutcomeUnknown,
  isWriterLeaseHeld,
  JournalWriteError,
  SnapshotError,
} from '../persistence/persistence-errors.js';
import { Backoff } from '../supervision/backoff.js';
import type { Effect } from './effect.js';
import { commandTypeOf, entityContext, entityLogger, type EntityHost } from './entity-context.js';
import type { CommandContext, EntityLogger, EventSourcedBehavior } from './event-sourced.js';
import { CommandUnhandledError, EntityUnavailableError, isRecoveryFailed, RecoveryFailedError } from './event-sourcing-errors.js';
import type { EventSourcingInstrumentationEvent } from './event-sourcing-events.js';
import { type EntityPersistence, readHeadAfter, recoverState } from './recovery.js';
import { crossesSnapshotPolicy } from './snapshot-policy.js';

/** Where an entity is in its life. */
export type EntityLifecycle =
  | { readonly status: 'recovering' }
  | { readonly status: 'running' }
  | { readonly status: 'persisting' }
  | { readonly status: 'backing-off'; readonly attempt: number; readonly delayMs: number; readonly cause: unknown }
  | { readonly status: 'stopped'; readonly reason: 'stop-effect' | 'requested' }
  | { readonly status: 'failed'; readonly error: unknown };

export interface EventSourcedEntityOptions {
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly events: Pick<Instrumentation<InstrumentationEvent>, 'emit'>;
  /** The hosting actor's path, named in `StashOverflowError` (default: the persistence id). */
  readonly path?: string;
  /** Uniform random number in [0, 1) for backoff jitter (default `Math.random`). */
  readonly random?: () => number;
  /** Called once when the entity stops or fails for good. */
  readonly onTerminated?: (lifecycle: Extract<EntityLifecycle, { status: 'stopped' | 'failed' }>) => void;
}

type Terminal = Extract<EntityLifecycle, { status: 'stopped' | 'failed' }>;

/** A command decided but not yet persisted: its effect, the events to append and the states after each. */
interface Decided<Cmd, Evt, State> {
  readonly command: Cmd;
  readonly effect: Effect<Evt, State>;
  readonly newEvents: readonly NewEvent[];
  readonly states: readonly State[];
  readonly stateAfter: State;
}

/** Runs one entity of `behavior`. Internal: users spawn behaviors with `spawnEventSourced`. */
export class EventSourcedEntity<Cmd, Evt, State> {
  readonly persistenceId: string;
  private lifecycleValue: EntityLifecycle = { status: 'recovering' };
  private stateValue: State;
  private sequenceNr = 0;
  /** Stashed commands are `stash[stashHead...]`; a moving head keeps unstashing O(1). */
  private stash: Cmd[] = [];
  private stashHead = 0;
  /** Restarts counted against `maxRestarts` since the last successful write. */
  private restarts = 0;
  /** Delays of restarts since the last successful write (held leases included). */
  private readonly backoff: Backoff;
  private readonly log: EntityLogger;
  private incarnation = 0;
  private writerId = '';
  private knownSnapshots: number[] = [];
  private pendingHousekeeping = 0;
  private timer: Cancellable | undefined;
  private idleWaiters: (() => void)[] = [];
  private readonly random: () => number;

  constructor(
    private readonly behavior: EventSourcedBehavior<Cmd, Evt, State>,
    readonly entityId: string,
    private readonly persistence: EntityPersistence,
    private readonly options: EventSourcedEntityOptions,
    private readonly host: EntityHost<Cmd> = {},
  ) {
    this.persistenceId = behavior.persistenceId(entityId);
    this.stateValue = behavior.emptyState;
    this.random = options.random ?? Math.random;
    this.backoff = new Backoff(behavior.onPersistFailure, this.random);
    this.log = entityLogger((level, message, fields) =>
      this.emit({ type: 'event-sourced.log', persistenceId: this.persistenceId, level, message, fields }),
    );
  }

  get lifecycle(): EntityLifecycle {
    return this.lifecycleValue;
  }

  /** The state after the last persisted event. */
  get state(): State {
    return this.stateValue;
  }

  /** Sequence number of the last persisted event. */
  get lastSequenceNr(): number {
    return this.sequenceNr;
  }

  get stashSize(): number {
    return this.stash.length - this.stashHead;
  }

  /** Starts recovery; commands received meanwhile are stashed. */
  start(): void {
    this.recover();
  }

  /** Handles a command now, or stashes it while recovering, writing or backing off. */
  receive(command: Cmd): void {
    const lifecycle = this.lifecycleValue;
    if (lifecycle.status === 'stopped' || lifecycle.status === 'failed') {
      this.refuse(command, lifecycle);
      return;
    }
    if (lifecycle.status === 'running' && this.stashSize === 0) {
      this.handle(command);
      return;
    }
    // Recovering, writing or backing off; or running while older stashed commands drain (they go first).
    if (this.stashSize >= this.behavior.stashCapacity) {
      const error = new StashOverflowError(this.options.path ?? this.persistenceId, this.behavior.stashCapacity);
      this.emit({ type: 'event-sourced.stash.overflow', persistenceId: this.persistenceId, capacity: this.behavior.stashCapacity, command });
      this.replyError(command, error, true);
      return;
    }
    this.stash.push(command);
  }

  /** Stops the entity (the hosting actor stopped); in-flight results are ignored. */
  stop(): void {
    if (this.lifecycleValue.status === 'stopped' || this.lifecycleValue.status === 'failed') return;
    this.terminate({ status: 'stopped', reason: 'requested' });
  }

  /**
   * Resolves once nothing is in flight: not recovering, not writing, and no
   * snapshot or retention operation pending. A scheduled restart counts as idle.
   */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    const { status } = this.lifecycleValue;
    return status !== 'recovering' && status !== 'persisting' && this.pendingHousekeeping === 0;
  }

  private settle(): void {
    if (!this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private recover(): void {
    const incarnation = ++this.incarnation;
    this.lifecycleValue = { status: 'recovering' };
    this.stateValue = this.behavior.emptyState;
    this.sequenceNr = 0;
    this.writerId = randomUUID();
    recoverState(this.behavior, this.persistenceId, this.persistence).then(
      (recovered) => {
        if (incarnation !== this.incarnation) return;
        this.stateValue = recovered.state;
        this.sequenceNr = recovered.sequenceNr;
        this.knownSnapshots = recovered.snapshotSequenceNr === undefined ? [] : [recovered.snapshotSequenceNr];
        this.lifecycleValue = { status: 'running' };
        this.emit({
          type: 'event-sourced.recovered',
          persistenceId: this.persistenceId,
          sequenceNr: recovered.sequenceNr,
          snapshotSequenceNr: recovered.snapshotSequenceNr,
          eventsReplayed: recovered.eventsReplayed,
        });
        try {
          this.behavior.onSignal(
            this.stateValue,
            { type: 'recovery-completed', sequenceNr: recovered.sequenceNr, eventsReplayed: recovered.eventsReplayed },
            this.context(this.sequenceNr),
          );
        } catch (error) {
          this.emit({ type: 'event-sourced.side-effect.failed', persistenceId: this.persistenceId, error });
        }
        if (incarnation !== this.incarnation) return; // the signal handler stopped the entity
        this.drainStash();
        this.settle();
      },
      (error: unknown) => {
        if (incarnation !== this.incarnation) return;
        const failure =
          isRecoveryFailed(error)
            ? error
            : new RecoveryFailedError(this.persistenceId, undefined, 'unexpected failure', { retriable: false, cause: error });
        this.emit({ type: 'event-sourced.recovery.failed', persistenceId: this.persistenceId, error: failure });
        if (failure.retriable) this.restartWithBackoff(failure);
        else this.terminate({ status: 'failed', error: failure });
        this.settle();
      },
    );
  }

  private drainStash(): void {
    while (this.lifecycleValue.status === 'running' && this.stashSize > 0) {
      this.handle(this.unstashOne());
    }
  }

  private unstashOne(): Cmd {
    const command = this.stash[this.stashHead] as Cmd;
    this.stashHead++;
    if (this.stashHead === this.stash.length) {
      this.stash = [];
      this.stashHead = 0;
    } else if (this.stashHead >= 1024 && this.stashHead * 2 >= this.stash.length) {
      this.stash = this.stash.slice(this.stashHead);
      this.stashHead = 0;
    }
    return command;
  }

  /**
   * Decides `first` and, up to `maxCommandsPerAppend`, the stashed commands
   * after it, each against the state after the ones before; writes all their
   * events in one atomic append. State, sequence number and side effects
   * advance only when that append succeeded.
   */
  private handle(first: Cmd): void {
    const group: Decided<Cmd, Evt, State>[] = [];
    let state = this.stateValue;
    let sequenceNr = this.sequenceNr;
    for (let command: Cmd | undefined = first; command !== undefined; ) {
      const decided = this.decide(command, state, sequenceNr);
      if (decided !== undefined) {
        group.push(decided);
        state = decided.stateAfter;
        sequenceNr += decided.newEvents.length;
        if (decided.effect.sideEffects.some((sideEffect) => sideEffect.kind === 'stop')) break;
      }
      command = group.length < this.behavior.maxCommandsPerAppend && this.stashSize > 0 ? this.unstashOne() : undefined;
    }
    const newEvents = group.flatMap((decided) => decided.newEvents);
    if (newEvents.length === 0) {
      for (const decided of group) this.runSideEffects(decided.effect, decided.stateAfter);
      return;
    }
    const incarnation = this.incarnation;
    this.lifecycleValue = { status: 'persisting' };
    const startedAt = this.options.clock.now();
    this.persistence.journal.append(this.persistenceId, newEvents, { expectedSequenceNr: this.sequenceNr, writerId: this.writerId }).then(
      (result) => {
        if (incarnation !== this.incarnation) return;
        this.emit({ type: 'event-sourced.journal.written', persistenceId: this.persistenceId, events: newEvents.length, ok: true, durationMs: this.options.clock.now() - startedAt });
        this.onPersisted(group, result);
        this.settle();
      },
      (error: unknown) => {
        if (incarnation !== this.incarnation) return;
        this.emit({ type: 'event-sourced.journal.written', persistenceId: this.persistenceId, events: newEvents.length, ok: false, durationMs: this.options.clock.now() - startedAt });
        this.onPersistFailed(group, newEvents.length, error);
        this.settle();
      },
    );
  }

  /** Runs the command handler and folds its events; `undefined` (reported) when either throws. */
  private decide(command: Cmd, state: State, lastSequenceNr: number): Decided<Cmd, Evt, State> | undefined {
    let decided: Decided<Cmd, Evt, State>;
    try {
      const effect = this.behavior.onCommand(state, command, this.context(lastSequenceNr));
      const newEvents = effect.events.map((event): NewEvent => {
        const eventType = this.behavior.eventTypeOf(event);
        return { payload: event, eventType, schemaVersion: this.behavior.schemaVersionOf(eventType), tags: this.behavior.tagsOf(event) };
      });
      const states: State[] = [];
      let after = state;
      for (const event of effect.events) {
        after = this.behavior.onEvent(after, event);
        states.push(after);
      }
      decided = { command, effect, newEvents, states, stateAfter: after };
    } catch (error) {
      // Handlers are pure and nothing was written: the state is intact, so the entity goes on with the next command.
      this.emit({ type: 'event-sourced.command.failed', persistenceId: this.persistenceId, command, error });
      this.replyError(command, error, false);
      return undefined;
    }
    if (decided.effect.kind === 'unhandled') {
      this.emit({ type: 'event-sourced.command.unhandled', persistenceId: this.persistenceId, command });
      if (!decided.effect.sideEffects.some((sideEffect) => sideEffect.kind === 'reply')) {
        this.replyError(command, new CommandUnhandledError(this.persistenceId, commandTypeOf(command)), false);
      }
    }
    return decided;
  }

  /** The context handed to the handlers, after `lastSequenceNr`. */
  private context(lastSequenceNr: number): CommandContext<Cmd, Evt, State> {
    return entityContext<Cmd, Evt, State>(this.host, this.entityId, this.persistenceId, lastSequenceNr, this.log);
  }

  /**
   * Answers `command` with an error: a `StatusReply` error in the `status`
   * style; in the deprecated `plain` style only when `plainToo` (the error
   * object itself, as before).
   */
  private replyError(command: Cmd, error: unknown, plainToo: boolean): void {
    const replyTo = this.behavior.replyToOf(command);
    if (replyTo === undefined) return;
    if (this.behavior.replies === 'status') replyTo.tell(StatusReply.error(error));
    else if (plainToo) replyTo.tell(error);
  }

  private replyErrorToAll(group: readonly Decided<Cmd, Evt, State>[], error: unknown): void {
    for (const decided of group) this.replyError(decided.command, error, false);
  }

  private onPersisted(group: readonly Decided<Cmd, Evt, State>[], result: AppendResult): void {
    const first = this.sequenceNr + 1;
    const last = group.at(-1) as Decided<Cmd, Evt, State>;
    const events = group.flatMap((decided) => decided.effect.events);
    const states = group.flatMap((decided) => decided.states);
    this.stateValue = last.stateAfter;
    this.sequenceNr = result.lastSequenceNr;
    this.restarts = 0;
    this.backoff.reset();
    this.lifecycleValue = { status: 'running' };
    this.emit({ type: 'event-sourced.persisted', persistenceId: this.persistenceId, sequenceNr: this.sequenceNr, events: events.length });
    let snapshotDue = false;
    try {
      snapshotDue = crossesSnapshotPolicy(this.behavior.snapshot, events, first, (i) => states[i] as State);
    } catch (error) {
      this.emit({ type: 'event-sourced.snapshot.failed', persistenceId: this.persistenceId, sequenceNr: this.sequenceNr, operation: 'save', error });
    }
    if (snapshotDue) this.saveSnapshot(this.sequenceNr, this.stateValue);
    for (const decided of group) this.runSideEffects(decided.effect, decided.stateAfter);
    this.drainStash();
  }

  private onPersistFailed(group: readonly Decided<Cmd, Evt, State>[], events: number, error: unknown): void {
    const commands = group.map((decided) => decided.command);
    if (isConcurrencyConflict(error)) {
      this.emit({ type: 'event-sourced.concurrency-conflict', persistenceId: this.persistenceId, error, commands });
      this.replyErrorToAll(group, error);
      this.terminate({ status: 'failed', error });
      return;
    }
    if (isWriteOutcomeUnknown(error)) {
      this.emit({ type: 'event-sourced.persist.failed', persistenceId: this.persistenceId, error, commands, events, outcome: 'reread-head' });
      this.rereadHead(group, events, error);
      return;
    }
    // A store that refused the events (serialization, size, a permanent refusal) stored nothing: the state is intact.
    const rejected = isDataflowError(error) && !error.retriable;
    this.emit({ type: 'event-sourced.persist.failed', persistenceId: this.persistenceId, error, commands, events, outcome: rejected ? 'rejected' : 'restart' });
    this.replyErrorToAll(group, error);
    if (rejected) {
      this.lifecycleValue = { status: 'running' };
      this.drainStash();
      return;
    }
    this.restartWithBackoff(error);
  }

  /**
   * After a write whose outcome is unknown: reads the head before anything
   * else is written. Our own events there mean the write was stored (the
   * commands succeed); nothing there means it was not (they get a retriable
   * error); anything else is another writer (a conflict). A failed read
   * restarts with backoff, and recovery reads the head anyway.
   */
  private rereadHead(group: readonly Decided<Cmd, Evt, State>[], events: number, cause: unknown): void {
    const incarnation = this.incarnation;
    const expected = this.sequenceNr;
    readHeadAfter(this.persistence.journal, this.persistenceId, expected).then(
      (head) => {
        if (incarnation !== this.incarnation) return;
        const ours = head.events.length === events && head.events.every((e, i) => e.writerId === this.writerId && e.sequenceNr === expected + 1 + i);
        if (head.highest === expected + events && ours) {
          this.emit({ type: 'event-sourced.write-outcome.resolved', persistenceId: this.persistenceId, applied: true, sequenceNr: head.highest });
          this.onPersisted(group, { lastSequenceNr: head.highest });
        } else if (head.highest === expected) {
          this.emit({ type: 'event-sourced.write-outcome.resolved', persistenceId: this.persistenceId, applied: false, sequenceNr: head.highest });
          const notStored = new JournalWriteError(this.persistenceId, 'not stored (its outcome was unknown; the head was read again)', { retriable: true, cause });
          this.replyErrorToAll(group, notStored);
          this.lifecycleValue = { status: 'running' };
          this.drainStash();
        } else {
          const conflict = new ConcurrencyConflictError(this.persistenceId, expected, head.highest, { cause });
          this.emit({ type: 'event-sourced.concurrency-conflict', persistenceId: this.persistenceId, error: conflict, commands: group.map((d) => d.command) });
          this.replyErrorToAll(group, conflict);
          this.terminate({ status: 'failed', error: conflict });
        }
        this.settle();
      },
      (readError: unknown) => {
        if (incarnation !== this.incarnation) return;
        this.replyErrorToAll(group, cause);
        this.restartWithBackoff(new RecoveryFailedError(this.persistenceId, expected + 1, 'reading the head after an unknown write outcome failed', { retriable: true, cause: readError }));
        this.settle();
      },
    );
  }

  /**
   * Backs off, then recovers from the journal. A held writer lease is waited
   * out (at least its `retryAfterMs`) and never counted against `maxRestarts`.
   */
  private restartWithBackoff(cause: unknown): void {
    const leaseHeld = isWriterLeaseHeld(cause);
    if (!leaseHeld) {
      if (this.restarts >= this.behavior.onPersistFailure.maxRestarts) {
        this.terminate({ status: 'failed', error: cause });
        return;
      }
      this.restarts++;
    }
    let delayMs = this.backoff.next();
    if (leaseHeld && cause.retryAfterMs !== undefined) delayMs = Math.max(delayMs, cause.retryAfterMs);
    const attempt = this.backoff.attempts;
    const incarnation = ++this.incarnation;
    this.lifecycleValue = { status: 'backing-off', attempt, delayMs, cause };
    this.emit({ type: 'event-sourced.restarting', persistenceId: this.persistenceId, attempt, delayMs, cause, at: this.options.clock.now() });
    this.timer = this.options.scheduler.schedule(delayMs, () => {
      if (incarnation === this.incarnation) this.recover();
    });
  }

  private runSideEffects(effect: Effect<Evt, State>, state: State): void {
    for (const sideEffect of effect.sideEffects) {
      switch (sideEffect.kind) {
        case 'run':
          try {
            sideEffect.run(state);
          } catch (error) {
            this.emit({ type: 'event-sourced.side-effect.failed', persistenceId: this.persistenceId, error });
          }
          break;
        case 'reply':
          try {
            sideEffect.replyTo.tell(sideEffect.reply(state) as never);
          } catch (error) {
            this.emit({ type: 'event-sourced.side-effect.failed', persistenceId: this.persistenceId, error });
          }
          break;
        case 'stop':
          this.terminate({ status: 'stopped', reason: 'stop-effect' });
          return;
      }
    }
  }

  private saveSnapshot(sequenceNr: number, state: State): void {
    const { snapshots, journal } = this.persistence;
    const policy = this.behavior.snapshot;
    const incarnation = this.incarnation;
    this.pendingHousekeeping++;
    const finish = (): void => {
      this.pendingHousekeeping--;
      this.settle();
    };
    const failed = (operation: 'save' | 'delete-snapshots' | 'delete-events') => (error: unknown) => {
      this.emit({ type: 'event-sourced.snapshot.failed', persistenceId: this.persistenceId, sequenceNr, operation, error });
    };
    snapshots
      .save({ persistenceId: this.persistenceId, sequenceNr, timestamp: this.options.clock.now() }, state, this.behavior.stateSchemaVersion)
      .then(async () => {
        this.emit({ type: 'event-sourced.snapshot.saved', persistenceId: this.persistenceId, sequenceNr });
        // A restarted incarnation recovered its own view of the snapshots; retention is its job now.
        if (incarnation !== this.incarnation) return;
        this.knownSnapshots = [...this.knownSnapshots.filter((n) => n < sequenceNr), sequenceNr];
        const keep = policy?.keep;
        if (keep === undefined || this.knownSnapshots.length <= keep) return;
        const oldestKept = this.knownSnapshots[this.knownSnapshots.length - keep] as number;
        // Retention deletes what the oldest kept snapshot replaces: only once that snapshot is read back
        // from the store. A snapshot acknowledged but not durable (lost, or written at a weaker consistency)
        // must not take the older snapshots or the events with it: recovery would find neither.
        const covered = await snapshots.loadLatest(this.persistenceId, { minSequenceNr: oldestKept, maxSequenceNr: oldestKept }).then(
          (found) => found !== undefined,
          (error: unknown) => {
            failed(policy?.deleteEvents === true ? 'delete-events' : 'delete-snapshots')(
              new SnapshotError(this.persistenceId, `the snapshot at ${oldestKept} could not be read back; nothing older was deleted`, { retriable: true, cause: error }),
            );
            return undefined;
          },
        );
        if (covered === undefined || incarnation !== this.incarnation) return;
        if (!covered) {
          // Not counted as kept: the next snapshot saved retries retention with the ones still known.
          this.knownSnapshots = this.knownSnapshots.filter((n) => n !== oldestKept);
          failed(policy?.deleteEvents === true ? 'delete-events' : 'delete-snapshots')(
            new SnapshotError(this.persistenceId, `the snapshot at ${oldestKept} is not in the store; nothing older was deleted`, { retriable: false }),
          );
          return;
        }
        this.knownSnapshots = this.knownSnapshots.slice(-keep);
        await snapshots.delete(this.persistenceId, { maxSequenceNr: oldestKept - 1 }).then(undefined, failed('delete-snapshots'));
        if (policy?.deleteEvents === true) {
          await journal.deleteTo(this.persistenceId, oldestKept).then(
            () => this.emit({ type: 'event-sourced.events.deleted', persistenceId: this.persistenceId, toSequenceNr: oldestKept }),
            failed('delete-events'),
          );
        }
      }, failed('save'))
      .then(finish, (error: unknown) => {
        failed('save')(error);
        finish();
      });
  }

  private terminate(lifecycle: Terminal): void {
    this.incarnation++;
    this.timer?.cancel();
    this.timer = undefined;
    this.lifecycleValue = lifecycle;
    this.emit(
      lifecycle.status === 'stopped'
        ? { type: 'event-sourced.stopped', persistenceId: this.persistenceId, reason: lifecycle.reason }
        : { type: 'event-sourced.failed', persistenceId: this.persistenceId, error: lifecycle.error },
    );
    const stashed = this.stash.slice(this.stashHead);
    this.stash = [];
    this.stashHead = 0;
    for (const command of stashed) this.refuse(command, lifecycle);
    this.options.onTerminated?.(lifecycle);
    this.settle();
  }

  private refuse(command: Cmd, lifecycle: Terminal): void {
    this.emit({ type: 'event-sourced.dead-letter', persistenceId: this.persistenceId, command, status: lifecycle.status });
    const cause = lifecycle.status === 'failed' ? lifecycle.error : undefined;
    this.replyError(command, new EntityUnavailableError(this.persistenceId, lifecycle.status, { cause }), true);
  }

  private emit(event: EventSourcingInstrumentationEvent): void {
    this.options.events.emit(event);
  }
}
