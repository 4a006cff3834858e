/**
 * A clock and scheduler that only move when a test says so (xstate's
 * `SimulatedClock`, Effect's `TestClock`). Pass it as both `clock` and
 * `scheduler` of an actor system; actor timers, backoff restarts and ask
 * timeouts then fire, in order, only inside `advance`.
 */
import type { Clock } from '../clock/clock.js';
import type { Cancellable, Scheduler } from '../clock/scheduler.js';

interface PendingTask {
  readonly dueAt: number;
  readonly seq: number;
  readonly task: () => void;
  cancelled: boolean;
}

/** Options of {@link TestClock}. */
export interface TestClockOptions {
  /** The initial `now()` (default 0). */
  readonly startAt?: number;
  /**
   * Awaited by the `*Async` methods before and after each firing so that the
   * work a timer starts completes before the next one fires. Default: one turn
   * of the event loop; `createActorTestKit` uses `system.settled()`.
   */
  readonly settle?: () => Promise<void>;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A manually advanced clock and scheduler.
 *
 * @example
 * ```ts
 * const clock = new TestClock();
 * const system = createActorSystem({ name: 'test', clock, scheduler: clock });
 * clock.settleWith(() => system.settled());
 * ref.tell({ type: 'start-polling' });
 * await clock.advanceAsync(5_000); // every timer due within 5 s fires, in order, and its message is handled
 * ```
 */
export class TestClock implements Clock, Scheduler {
  private current: number;
  private seq = 0;
  private tasks: PendingTask[] = [];
  private settle: () => Promise<void>;

  constructor(options: TestClockOptions = {}) {
    this.current = options.startAt ?? 0;
    this.settle = options.settle ?? nextTurn;
  }

  now(): number {
    return this.current;
  }

  schedule(delayMs: number, task: () => void): Cancellable {
    const entry: PendingTask = { dueAt: this.current + Math.max(0, delayMs), seq: ++this.seq, task, cancelled: false };
    this.tasks.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /** How many scheduled tasks have neither run nor been cancelled. */
  get pendingTasks(): number {
    return this.tasks.filter((t) => !t.cancelled).length;
  }

  /** Replaces the settle function of the `*Async` methods. */
  settleWith(settle: () => Promise<void>): void {
    this.settle = settle;
  }

  /** Moves time forward by `ms`, running due tasks in order, synchronously. */
  advance(ms: number): void {
    this.advanceTo(this.current + ms);
  }

  /** Moves time to `time` (never backwards), running due tasks in order, synchronously. */
  advanceTo(time: number): void {
    for (let task = this.nextDue(time); task !== undefined; task = this.nextDue(time)) this.run(task);
    this.current = Math.max(this.current, time);
  }

  /** Like {@link advance}, settling before the first and after every task. */
  advanceAsync(ms: number): Promise<void> {
    return this.advanceToAsync(this.current + ms);
  }

  /** Like {@link advanceTo}, settling before the first and after every task. */
  async advanceToAsync(time: number): Promise<void> {
    await this.settle();
    for (let task = this.nextDue(time); task !== undefined; task = this.nextDue(time)) {
      this.run(task);
      await this.settle();
    }
    this.current = Math.max(this.current, time);
  }

  private run(task: PendingTask): void {
    this.current = Math.max(this.current, task.dueAt);
    task.cancelled = true;
    task.task();
  }

  /** The earliest live task due at or before `time` (ties in scheduling order); drops cancelled ones. */
  private nextDue(time: number): PendingTask | undefined {
    this.tasks = this.tasks.filter((t) => !t.cancelled);
    let next: PendingTask | undefined;
    for (const task of this.tasks) {
      if (task.dueAt > time) continue;
      if (next === undefined || task.dueAt < next.dueAt || (task.dueAt === next.dueAt && task.seq < next.seq)) next = task;
    }
    return next;
  }
}
