/**
 * The shared state of one actor system (internal): the nact system, injected
 * clock, scheduler and random source, the events, the top-level actors and the
 * count of work in progress behind `settled()`.
 */
import type { Ref } from 'nact';
import { start as nactStart, stop as nactStop } from 'nact';
import type { Clock } from '../clock/clock.js';
import { systemClock } from '../clock/clock.js';
import type { Cancellable, Scheduler } from '../clock/scheduler.js';
import { systemScheduler } from '../clock/scheduler.js';
import type { Instrumentation, InstrumentationEvent } from '../instrumentation/instrumentation.js';
import { createInstrumentation } from '../instrumentation/instrumentation.js';
import type { SpawnOptions } from './actor-context.js';
import { ActorCell, ActorRefImpl } from './actor-cell.js';
import { ActorNotRunningError, TerminateTimeoutError } from './actor-errors.js';
import type { ActorDeadLetterEvent } from './actor-events.js';
import type { ActorRef, AnyActorRef } from './actor-ref.js';
import type { ActorSystem, ActorSystemOptions, ActorSystemStatus, TerminateOptions } from './actor-system.js';
import type { Behavior } from './behavior.js';

/** Default bound of `system.terminate()`: 10 s. */
export const DEFAULT_TERMINATE_TIMEOUT_MS = 10_000;

/** nact keeps systems in a process-wide map by name: make ours unique. */
let nactSystemCount = 0;

export class ActorRuntime {
  readonly name: string;
  readonly nactSystem: Ref<never>;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly random: () => number;
  readonly events: Instrumentation<InstrumentationEvent>;
  readonly topLevel = new Map<string, ActorCell<never, unknown>>();
  readonly api: ActorSystem;
  status: ActorSystemStatus = 'running';
  /** Messages queued or being handled, and stops in progress, across all actors. */
  pending = 0;
  private settleWaiters: (() => void)[] = [];
  private terminating: Promise<void> | undefined;
  private askCount = 0;
  private readonly terminateTimeoutMs: number;

  constructor(options: ActorSystemOptions) {
    this.name = options.name;
    this.clock = options.clock ?? systemClock;
    this.scheduler = options.scheduler ?? systemScheduler;
    this.random = options.random ?? Math.random;
    this.events = options.instrumentation ?? createInstrumentation<InstrumentationEvent>();
    this.terminateTimeoutMs = options.terminateTimeoutMs ?? DEFAULT_TERMINATE_TIMEOUT_MS;
    if (!(this.terminateTimeoutMs >= 0)) throw new RangeError(`terminateTimeoutMs must be >= 0, got ${this.terminateTimeoutMs}`);
    this.nactSystem = nactStart({ name: `dataflow-${options.name}-${++nactSystemCount}` } as unknown as string);
    const status = (): ActorSystemStatus => this.status;
    this.api = {
      name: this.name,
      clock: this.clock,
      scheduler: this.scheduler,
      events: this.events,
      get status() {
        return status();
      },
      spawn: (behavior, name, spawnOptions = {}) => this.spawn(behavior, name, spawnOptions),
      stop: (ref) => this.stop(ref),
      settled: () => this.settled(),
      terminate: (terminateOptions) => this.terminate(terminateOptions),
    };
  }

  spawn<M, S>(behavior: Behavior<M, S>, name: string, options: SpawnOptions): ActorRef<M> {
    if (this.status !== 'running') throw new ActorNotRunningError('/user');
    ActorCell.validateName(name, '/user', this.topLevel);
    const cell = new ActorCell<M, S>(this, undefined, behavior, name, options);
    this.topLevel.set(name, cell as unknown as ActorCell<never, unknown>);
    return cell.ref;
  }

  stop(ref: AnyActorRef): Promise<void> {
    const cell = ActorRefImpl.cellOf(ref);
    if (cell === undefined) return Promise.reject(new TypeError(`${ref.path} is not an actor of system ${this.name}`));
    return cell.stop({ type: 'requested' });
  }

  workDone(count = 1): void {
    this.pending -= count;
    if (this.pending === 0 && this.settleWaiters.length > 0) {
      const waiters = this.settleWaiters;
      this.settleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  settled(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  deadLetter(path: string, message: unknown, reason: ActorDeadLetterEvent['reason']): void {
    this.events.emit({ type: 'actor.dead-letter', path, message, reason });
  }

  nextAskPath(target: string): string {
    return `${target}/$ask-${++this.askCount}`;
  }

  terminate(options: TerminateOptions = {}): Promise<void> {
    this.terminating ??= this.runTerminate(options.timeoutMs ?? this.terminateTimeoutMs);
    return this.terminating;
  }

  private async runTerminate(timeoutMs: number): Promise<void> {
    this.status = 'terminating';
    const cells = [...this.topLevel.values()];
    const timers: Cancellable[] = [];
    const after = (delayMs: number): Promise<void> =>
      new Promise((resolve) => {
        timers.push(this.scheduler.schedule(delayMs, resolve));
      });
    const timedOut = after(timeoutMs).then(() => 'timed-out' as const);
    const phases = (async () => {
      // Phase 1: every pre-stop signal before any actor stops. A tree stuck in it
      // (a handler that never returns) holds the others back for half the budget at most.
      const preStops = cells.map((cell) => cell.preStop());
      await Promise.race([Promise.all(preStops), after(timeoutMs / 2)]);
      // Phase 2: stop, children first (each tree once its own phase 1 is done).
      await Promise.all(cells.map((cell) => cell.stop({ type: 'system-terminated' })));
    })();
    const outcome = await Promise.race([phases.then(() => 'done' as const), timedOut]);
    for (const timer of timers) timer.cancel();
    let error: TerminateTimeoutError | undefined;
    if (outcome === 'timed-out') {
      const notStopped: string[] = [];
      const busy: string[] = [];
      const visit = (cell: ActorCell<never, unknown>): void => {
        if (cell.status === 'stopped') return;
        notStopped.push(cell.path);
        if (cell.isBusy) busy.push(cell.path);
        for (const child of cell.children.values()) visit(child);
      };
      for (const cell of this.topLevel.values()) visit(cell);
      error = new TerminateTimeoutError(this.name, timeoutMs, notStopped, busy);
      this.events.emit({ type: 'actor.terminate.timed-out', system: this.name, timeoutMs, notStopped, busy });
    }
    nactStop(this.nactSystem);
    this.status = 'terminated';
    if (error !== undefined) throw error;
  }
}

/** The runtime of a ref created by an actor system, if it is one. */
export function runtimeOf(ref: AnyActorRef): ActorRuntime | undefined {
  return ActorRefImpl.cellOf(ref)?.runtime;
}
