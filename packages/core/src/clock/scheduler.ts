/**
 * Runs a task after a delay. Actor timers, backoff restarts and ask timeouts go
 * through an injected `Scheduler`, so a `TestClock` can fire them
 * deterministically.
 */

/** A handle to something scheduled that can still be cancelled. Cancelling twice, or after it ran, does nothing. */
export interface Cancellable {
  cancel(): void;
}

/** Schedules `task` to run once, `delayMs` from now (a `setTimeout` that returns a cancellable handle). */
export interface Scheduler {
  schedule(delayMs: number, task: () => void): Cancellable;
}

/** Node's timers accept at most 2^31 - 1 ms; longer delays would fire at once. */
const MAX_TIMER_DELAY_MS = 2_147_483_647;

/**
 * The real-time scheduler backed by `setTimeout`, the default of `createActorSystem`.
 *
 * @example
 * ```ts
 * const handle = systemScheduler.schedule(1_000, () => ref.tell({ type: 'tick' }));
 * handle.cancel();
 * ```
 */
export const systemScheduler: Scheduler = {
  schedule(delayMs, task) {
    const timeout = setTimeout(task, Math.min(Math.max(0, delayMs), MAX_TIMER_DELAY_MS));
    return { cancel: () => clearTimeout(timeout) };
  },
};
