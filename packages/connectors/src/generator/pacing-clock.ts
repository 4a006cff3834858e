/**
 * The time a rate-limited source waits on, injected so tests run on simulated
 * time: `now()` matches core's `Clock`, `sleep()` is the only way the source
 * waits. A sleep ends early when the pipeline's signal aborts.
 */
import { systemClock, type Clock } from '@dataflow/core';

/** Reads and waits on time; the generator source paces itself through it. */
export interface PacingClock extends Clock {
  /** Resolves after `ms` milliseconds, or as soon as `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

/**
 * The wall clock with `setTimeout`.
 *
 * @example
 * ```ts
 * const source = new GeneratorSource({ type: 'generator', rate: 100 }, { clock: systemPacingClock });
 * ```
 */
export const systemPacingClock: PacingClock = {
  now: () => systemClock.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal.aborted || ms <= 0) {
        resolve();
        return;
      }
      const finish = (): void => {
        clearTimeout(timeout);
        signal.removeEventListener('abort', finish);
        resolve();
      };
      const timeout = setTimeout(finish, ms);
      signal.addEventListener('abort', finish, { once: true });
    }),
};
