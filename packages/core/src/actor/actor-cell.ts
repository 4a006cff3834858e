/**
 * One running actor (internal): runs a behavior inside a nact actor and adds
 * what nact lacks for typed actors: per-error supervision with backoff and a
 * bounded stash, keyed timers, lifecycle signals to the parent, graceful stop
 * (children first, handlers in flight awaited) and dead letters.
 *
 * Stopping has two phases (see `preStop` and `stop`): pre-stop top-down
 * (no more messages, the handler in flight finishes, the `pre-stop` signal,
 * then the children's pre-stop), then stop bottom-up (children, `onStop`).
 *
 * Over 400 lines: mailbox, supervision and stopping share the cell's status
 * and counters; split apart they would each need the cell's private state.
 *
 * nact gives the mailbox, one-at-a-time processing (it awaits a handler's
 * promise before the next message) and the actor tree. Its own supervision is
 * not used: its `reset` stops children behind our back and its default policy
 * prints to the console. Handler errors are therefore caught here.
 */
import type { Ref } from 'nact';
import { dispatch, spawn as nactSpawn, stop as nactStop } from 'nact';
import type { Cancellable } from '../clock/scheduler.js';
import { backoffDelayMs } from '../supervision/backoff.js';
import {
  decide,
  DEFAULT_BACKOFF_STASH_CAPACITY,
  type Directive,
  type RestartWithBackoffDirective,
  SupervisorStrategy,
} from '../supervision/supervisor-strategy.js';
import type { ActorContext, Outcome, SpawnOptions } from './actor-context.js';
import { ActorNameTakenError, ActorNotRunningError, InvalidActorNameError } from './actor-errors.js';
import type { ActorFailedEvent } from './actor-events.js';
import type { ActorRef, AnyActorRef } from './actor-ref.js';
import type { ActorRuntime } from './actor-runtime.js';
import { ActorStash } from './actor-stash.js';
import { ActorTimers } from './actor-timers.js';
import { type Behavior, initialStateOf, type Signal, type StopReason } from './behavior.js';
import {
  EscalationEnvelope,
  PipedEnvelope,
  SignalEnvelope,
  StartEnvelope,
  SystemEnvelope,
  TimerEnvelope,
  userMessageOf,
} from './envelopes.js';

/** Default capacity of `ctx.stash`. */
export const DEFAULT_STASH_CAPACITY = 1000;

const VALID_NAME = /^[a-z0-9\-$_.+!*'(),]+$/i;
const START = new StartEnvelope();

type CellStatus = 'running' | 'backing-off' | 'stopping' | 'stopped';
type FailurePhase = ActorFailedEvent['during'];

/** The public face of a cell: only `path` and `tell` are visible through `ActorRef`. */
export class ActorRefImpl<M> implements ActorRef<M> {
  readonly #cell: ActorCell<M, unknown>;
  readonly path: string;

  constructor(cell: ActorCell<M, unknown>) {
    this.#cell = cell;
    this.path = cell.path;
  }

  tell(message: M): void {
    this.#cell.tell(message);
  }

  /** The cell behind a ref of this runtime, or undefined for any other object. */
  static cellOf(ref: AnyActorRef): ActorCell<never, unknown> | undefined {
    return ref instanceof ActorRefImpl ? (ref as unknown as ActorRefImpl<never>).#cell : undefined;
  }
}

export class ActorCell<M, S> {
  readonly path: string;
  readonly ref: ActorRefImpl<M>;
  readonly children = new Map<string, ActorCell<never, unknown>>();
  status: CellStatus = 'running';

  private state: S;
  /** True once `onStart` of the current incarnation succeeded (so `onStop` is due). */
  private started = false;
  /** Bumped at each restart, so work of an old incarnation can tell it is stale. */
  private incarnation = 0;
  /** A handler (or failure handling) is running. */
  private busy = false;
  /** Messages handed to nact and not yet taken out of its mailbox. */
  private queued = 0;
  private drainWaiters: (() => void)[] = [];
  private stopping: Promise<void> | undefined;
  private preStopping: Promise<void> | undefined;
  /** Set when this actor escalated: its parent fails instead of getting `child-terminated`. */
  private escalatedError: { readonly error: unknown } | undefined;

  private readonly nactRef: Ref<unknown>;
  private readonly ctx: ActorContext<M>;
  private readonly timers: ActorTimers<M>;
  private readonly stash: ActorStash<M>;

  // Supervision bookkeeping.
  private restartTimes: number[] = [];
  private backoffRestarts = 0;
  private lastRestartAt: number | undefined;
  private restartingImmediately = false;
  private backoffStash: unknown[] = [];
  private backoffStashCapacity = DEFAULT_BACKOFF_STASH_CAPACITY;
  private backoffTimer: Cancellable | undefined;
  private wakeFromBackoff: ((restart: boolean) => void) | undefined;

  constructor(
    readonly runtime: ActorRuntime,
    private readonly parent: ActorCell<never, unknown> | undefined,
    private readonly behavior: Behavior<M, S>,
    readonly name: string,
    private readonly options: SpawnOptions,
  ) {
    this.path = `${parent === undefined ? '/user' : parent.path}/${name}`;
    this.ref = new ActorRefImpl<M>(this as unknown as ActorCell<M, unknown>);
    this.state = initialStateOf(behavior);
    this.timers = new ActorTimers<M>(runtime.scheduler, (envelope) => this.enqueueSystem(envelope));
    this.stash = new ActorStash<M>(this.path, options.stashCapacity ?? DEFAULT_STASH_CAPACITY);
    this.ctx = this.createContext();
    this.nactRef = nactSpawn(parent === undefined ? runtime.nactSystem : parent.nactRef, this.receive, name, {
      onCrash: (_message, error, nactCtx) => {
        this.onRuntimeCrash(error);
        return nactCtx.resume;
      },
      afterStop: (_state, nactCtx) => this.afterNactStop(nactCtx.mailbox),
    });
    this.enqueueSystem(START);
  }

  /** Checks a child name before anything is created. */
  static validateName(name: string, parentPath: string, siblings: ReadonlyMap<string, unknown>): void {
    if (!VALID_NAME.test(name)) throw new InvalidActorNameError(name);
    if (siblings.has(name)) throw new ActorNameTakenError(`${parentPath}/${name}`);
  }

  // ---- Mailbox -------------------------------------------------------------

  tell(message: M): void {
    if (this.status === 'running') {
      this.queued++;
      this.runtime.pending++;
      dispatch(this.nactRef, message);
    } else if (this.status === 'backing-off') {
      if (this.backoffStash.length < this.backoffStashCapacity) this.backoffStash.push(message);
      else this.runtime.deadLetter(this.path, message, 'backoff-stash-overflow');
    } else {
      this.runtime.deadLetter(this.path, message, 'stopped');
    }
  }

  /**
   * Runtime messages go to running actors only: an actor that backs off or
   * stops has already stopped its children and cancelled its timers, so their
   * signals and ticks belong to an incarnation that is gone.
   */
  private enqueueSystem(envelope: SystemEnvelope): void {
    if (this.status !== 'running') return;
    this.queued++;
    this.runtime.pending++;
    dispatch(this.nactRef, envelope);
  }

  /** The nact actor function: one message at a time, nact awaits the returned promise. */
  private readonly receive = (_nactState: unknown, message: unknown): Promise<void> | undefined => {
    this.queued--;
    if (this.status === 'stopping' || this.status === 'stopped') {
      const user = userMessageOf(message);
      if (user !== undefined) this.runtime.deadLetter(this.path, user.message, 'stopped');
      this.settle();
      return undefined;
    }
    this.busy = true;
    const outcome = message instanceof SystemEnvelope ? this.receiveSystem(message) : this.invokeMessage(message as M);
    if (outcome === undefined && !this.stash.unstashRequested) {
      // The hot path: a synchronous handler, nothing to unstash.
      this.busy = false;
      if (this.drainWaiters.length > 0) this.settle();
      else this.runtime.workDone();
      return undefined;
    }
    return this.followUp(outcome);
  };

  /** `onMessage`, kept separate from {@link invoke} so the per-message path does no extra branching. */
  private invokeMessage(message: M): Promise<void> | undefined {
    let result: S | Promise<S>;
    try {
      result = this.behavior.onMessage(this.state, message, this.ctx);
    } catch (error) {
      return this.fail(error, 'message');
    }
    if (result instanceof Promise) {
      return result.then(
        (next: S) => {
          this.state = next;
        },
        (error: unknown) => this.fail(error, 'message'),
      );
    }
    this.state = result;
    return undefined;
  }

  private async followUp(outcome: Promise<void> | undefined): Promise<void> {
    try {
      if (outcome !== undefined) await outcome;
      while (this.stash.unstashRequested && this.status === 'running') {
        const incarnation = this.incarnation;
        const batch = this.stash.takeAll();
        for (let i = 0; i < batch.length; i++) {
          if (this.status !== 'running' || this.incarnation !== incarnation) {
            for (const rest of batch.slice(i)) this.runtime.deadLetter(this.path, rest, 'stopped');
            break;
          }
          const next = this.invokeMessage(batch[i] as M);
          if (next !== undefined) await next;
        }
      }
    } finally {
      this.settle();
    }
  }

  /** Marks the current message as done. */
  private settle(): void {
    this.busy = false;
    if (this.queued === 0 && this.drainWaiters.length > 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const wake of waiters) wake();
    }
    this.runtime.workDone();
  }

  /** A handler (or failure handling) of this actor is running. */
  get isBusy(): boolean {
    return this.busy;
  }

  /** Resolves when no handler runs and nact's mailbox is empty. */
  private drained(): Promise<void> {
    if (!this.busy && this.queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private receiveSystem(envelope: SystemEnvelope): Promise<void> | undefined {
    if (envelope instanceof TimerEnvelope) {
      return this.timers.accept(envelope) ? this.invokeMessage(envelope.message as M) : undefined;
    }
    if (envelope instanceof SignalEnvelope) {
      return this.behavior.onSignal === undefined ? undefined : this.invokeSignal(this.behavior.onSignal, envelope.signal);
    }
    if (envelope instanceof EscalationEnvelope) return this.fail(envelope.error, 'escalation');
    if (envelope instanceof PipedEnvelope) {
      let message: M;
      try {
        message = envelope.toMessage() as M;
      } catch (error) {
        return this.fail(error, 'message');
      }
      return this.invokeMessage(message);
    }
    return this.runStart();
  }

  private invokeSignal(onSignal: NonNullable<Behavior<M, S>['onSignal']>, signal: Signal): Promise<void> | undefined {
    let result: S | Promise<S>;
    try {
      result = onSignal(this.state, signal, this.ctx);
    } catch (error) {
      return this.fail(error, 'signal');
    }
    if (result instanceof Promise) {
      return result.then(
        (next: S) => {
          this.state = next;
        },
        (error: unknown) => this.fail(error, 'signal'),
      );
    }
    this.state = result;
    return undefined;
  }

  private runStart(): Promise<void> | undefined {
    const onStart = this.behavior.onStart;
    if (onStart === undefined) {
      this.markStarted();
      return undefined;
    }
    let result: S | Promise<S>;
    try {
      result = onStart(this.state, this.ctx);
    } catch (error) {
      return this.fail(error, 'start');
    }
    if (result instanceof Promise) {
      return result.then(
        (next: S) => {
          this.state = next;
          this.markStarted();
        },
        (error: unknown) => this.fail(error, 'start'),
      );
    }
    this.state = result;
    this.markStarted();
    return undefined;
  }

  private markStarted(): void {
    this.started = true;
    this.runtime.events.emit({ type: 'actor.started', path: this.path });
  }

  // ---- Supervision ---------------------------------------------------------

  private fail(error: unknown, during: FailurePhase): Promise<void> | undefined {
    if (this.status !== 'running') {
      this.emitFailed(error, during, 'stop');
      return undefined;
    }
    let directive: Directive;
    try {
      directive = decide(this.options.supervise, error);
    } catch (policyError) {
      this.emitFailed(policyError, during, 'stop');
      directive = SupervisorStrategy.stop;
    }
    // A restart whose own start fails would loop at once: stop instead (backoff restarts are delayed and counted).
    if (during === 'start' && this.restartingImmediately && directive.type === 'restart') directive = SupervisorStrategy.stop;

    switch (directive.type) {
      case 'resume':
        this.reportFailure(error, during, 'resume');
        return undefined;
      case 'stop':
        this.reportFailure(error, during, 'stop');
        void this.stop({ type: 'failed', error });
        return undefined;
      case 'escalate':
        this.emitFailed(error, during, 'escalate');
        this.escalatedError = { error };
        void this.stop({ type: 'failed', error });
        return undefined;
      case 'restart': {
        const now = this.runtime.clock.now();
        if (this.restartLimitReached(now, directive.maxRestarts, directive.withinMs)) {
          this.reportFailure(error, during, 'stop');
          void this.stop({ type: 'failed', error });
          return undefined;
        }
        this.restartTimes.push(now);
        this.reportFailure(error, during, 'restart');
        return this.restartNow(this.restartTimes.length);
      }
      case 'restart-with-backoff':
        return this.restartWithBackoff(error, during, directive);
    }
  }

  private restartLimitReached(now: number, maxRestarts: number, withinMs: number): boolean {
    this.restartTimes = this.restartTimes.filter((at) => now - at < withinMs);
    return this.restartTimes.length >= maxRestarts;
  }

  private reportFailure(error: unknown, during: FailurePhase, directive: Directive['type']): void {
    this.emitFailed(error, during, directive);
    this.parent?.enqueueSystem(new SignalEnvelope({ type: 'child-failed', ref: this.ref, error, directive }));
  }

  private emitFailed(error: unknown, during: FailurePhase, directive: Directive['type']): void {
    this.runtime.events.emit({ type: 'actor.failed', path: this.path, error, during, directive });
  }

  private async restartNow(attempt: number): Promise<void> {
    await this.endIncarnation();
    if (this.status !== 'running') return;
    this.beginIncarnation();
    this.runtime.events.emit({ type: 'actor.restarted', path: this.path, attempt, backoffMs: 0 });
    this.restartingImmediately = true;
    try {
      await this.runStart();
    } finally {
      this.restartingImmediately = false;
    }
  }

  private async restartWithBackoff(error: unknown, during: FailurePhase, directive: RestartWithBackoffDirective): Promise<void> {
    const now = this.runtime.clock.now();
    if (this.lastRestartAt !== undefined && now - this.lastRestartAt >= directive.resetAfterMs) {
      this.backoffRestarts = 0;
      this.restartTimes = [];
    }
    if (this.restartLimitReached(now, directive.maxRestarts, directive.withinMs)) {
      this.reportFailure(error, during, 'stop');
      void this.stop({ type: 'failed', error });
      return;
    }
    const backoffMs = backoffDelayMs(this.backoffRestarts, directive, this.runtime.random());
    const attempt = ++this.backoffRestarts;
    this.restartTimes.push(now);
    this.reportFailure(error, during, 'restart-with-backoff');

    // While backing off, messages held in nact's mailbox are not work in progress either.
    this.status = 'backing-off';
    this.runtime.workDone(this.queued);
    this.backoffStash = [];
    this.backoffStashCapacity = directive.stashCapacity;
    this.runtime.events.emit({ type: 'actor.backoff.scheduled', path: this.path, attempt, backoffMs });
    await this.endIncarnation();
    if (this.status !== 'backing-off') {
      this.runtime.pending += this.queued;
      return;
    }

    // Waiting on the scheduler is not work in progress: `settled()` must not wait for the clock.
    this.runtime.workDone();
    const restart = await new Promise<boolean>((resolve) => {
      this.wakeFromBackoff = resolve;
      this.backoffTimer = this.runtime.scheduler.schedule(backoffMs, () => resolve(true));
    });
    this.runtime.pending += 1 + this.queued;
    this.wakeFromBackoff = undefined;
    this.backoffTimer = undefined;
    if (!restart || this.status !== 'backing-off') return;

    this.status = 'running';
    this.lastRestartAt = this.runtime.clock.now();
    this.beginIncarnation();
    this.runtime.events.emit({ type: 'actor.restarted', path: this.path, attempt, backoffMs });
    // Stashed messages go behind those that were already in the mailbox when the actor failed.
    const stashed = this.backoffStash;
    this.backoffStash = [];
    for (const message of stashed) this.tell(message as M);
    await this.runStart();
  }

  /** Ends the current incarnation before a restart: timers, stash and children go, `onStop` runs. */
  private async endIncarnation(): Promise<void> {
    this.timers.cancelAll();
    for (const message of this.stash.takeAll()) this.runtime.deadLetter(this.path, message, 'stopped');
    await this.signalPreStop();
    await this.stopChildren({ type: 'parent-restarted' });
    await this.runOnStop();
  }

  private beginIncarnation(): void {
    this.incarnation++;
    this.state = initialStateOf(this.behavior);
  }

  /** Only reached when the runtime's own code throws: report it and stop. */
  private onRuntimeCrash(error: unknown): void {
    this.emitFailed(error, 'message', 'stop');
    void this.stop({ type: 'failed', error });
  }

  // ---- Stopping ------------------------------------------------------------

  /**
   * Phase 1 of a stop, top-down: no more messages (later ones are dead
   * letters), timers and backoff cancelled, the handler in flight finishes,
   * the `pre-stop` signal runs, then the children's phase 1. Idempotent.
   */
  preStop(): Promise<void> {
    this.preStopping ??= this.runPreStop();
    return this.preStopping;
  }

  private async runPreStop(): Promise<void> {
    this.runtime.pending++;
    try {
      this.status = 'stopping';
      this.timers.cancelAll();
      this.backoffTimer?.cancel();
      this.wakeFromBackoff?.(false);
      for (const message of this.backoffStash) this.runtime.deadLetter(this.path, message, 'stopped');
      this.backoffStash = [];
      await this.drained();
      await this.signalPreStop();
      if (this.children.size > 0) await Promise.all([...this.children.values()].map((child) => child.preStop()));
    } finally {
      this.runtime.workDone();
    }
  }

  /** Delivers `pre-stop` to the current incarnation, outside the mailbox; a failure is reported, the stop goes on. */
  private async signalPreStop(): Promise<void> {
    const onSignal = this.behavior.onSignal;
    if (!this.started || onSignal === undefined) return;
    try {
      this.state = await onSignal(this.state, { type: 'pre-stop' }, this.ctx);
    } catch (error) {
      this.emitFailed(error, 'stop', 'stop');
    }
  }

  /** Phase 2, after {@link preStop}: children stop, `onStop` runs, the parent is told. Idempotent. */
  stop(reason: StopReason): Promise<void> {
    this.stopping ??= this.runStop(reason);
    return this.stopping;
  }

  private async runStop(reason: StopReason): Promise<void> {
    this.runtime.pending++;
    try {
      await this.preStop();
      await this.stopChildren({ type: 'parent-stopped' });
      await this.runOnStop();
      for (const message of this.stash.takeAll()) this.runtime.deadLetter(this.path, message, 'stopped');
      nactStop(this.nactRef);
      this.status = 'stopped';
      if (this.parent === undefined) this.runtime.topLevel.delete(this.name);
      else this.parent.children.delete(this.name);
      this.runtime.events.emit({ type: 'actor.stopped', path: this.path, reason });
      this.notifyParent(reason);
    } finally {
      this.runtime.workDone();
    }
  }

  private notifyParent(reason: StopReason): void {
    const parent = this.parent;
    if (parent === undefined) return;
    if (this.escalatedError !== undefined) {
      parent.enqueueSystem(new EscalationEnvelope(this.escalatedError.error));
      return;
    }
    // A parent that stops or restarts its children already knows.
    if (reason.type === 'requested' || reason.type === 'failed') {
      parent.enqueueSystem(new SignalEnvelope({ type: 'child-terminated', ref: this.ref, reason }));
    }
  }

  private async stopChildren(reason: StopReason): Promise<void> {
    if (this.children.size === 0) return;
    await Promise.all([...this.children.values()].map((child) => child.stop(reason)));
  }

  private async runOnStop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    const onStop = this.behavior.onStop;
    if (onStop === undefined) return;
    try {
      await onStop(this.state, this.ctx);
    } catch (error) {
      this.emitFailed(error, 'stop', 'stop');
    }
  }

  /** Whatever nact still held when it stopped (normally nothing: the mailbox is drained first). */
  private afterNactStop(mailbox: readonly unknown[]): void {
    for (const entry of mailbox) {
      const user = userMessageOf((entry as { message?: unknown }).message);
      if (user !== undefined) this.runtime.deadLetter(this.path, user.message, 'stopped');
      this.queued--;
      this.runtime.workDone();
    }
  }

  // ---- Children and context ------------------------------------------------

  spawnChild<C, CS>(behavior: Behavior<C, CS>, name: string, options: SpawnOptions): ActorRef<C> {
    if (this.status !== 'running') throw new ActorNotRunningError(this.path);
    ActorCell.validateName(name, this.path, this.children);
    const child = new ActorCell<C, CS>(this.runtime, this as unknown as ActorCell<never, unknown>, behavior, name, options);
    this.children.set(name, child as unknown as ActorCell<never, unknown>);
    return child.ref;
  }

  private createContext(): ActorContext<M> {
    return {
      self: this.ref,
      path: this.path,
      system: this.runtime.api,
      timers: this.timers,
      stash: this.stash,
      spawn: (behavior, name, options = {}) => this.spawnChild(behavior, name, options),
      child: (name: string) => this.children.get(name)?.ref,
      stop: (child) => {
        const target = ActorRefImpl.cellOf(child);
        if (target !== undefined && this.children.get(target.name) === target) void target.stop({ type: 'requested' });
      },
      stopSelf: () => {
        void this.stop({ type: 'requested' });
      },
      pipeToSelf: <T>(promise: PromiseLike<T>, toMessage: (outcome: Outcome<T>) => M) => {
        const deliver = (outcome: Outcome<T>): void => {
          if (this.status !== 'running') this.runtime.deadLetter(this.path, outcome, 'stopped');
          else this.enqueueSystem(new PipedEnvelope(() => toMessage(outcome)));
        };
        Promise.resolve(promise).then(
          (value) => deliver({ ok: true, value }),
          (error: unknown) => deliver({ ok: false, error }),
        );
      },
    };
  }
}
