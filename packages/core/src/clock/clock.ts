/**
 * The time source of the actor runtime. Everything that reads "now" (backoff
 * windows, instrumentation, timers) asks an injected `Clock`, so tests can run
 * on a `TestClock` from `@dataflow/core/testing` instead of the wall clock.
 */

/** Reads the current time in milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

/**
 * The wall clock (`Date.now()`), the default of `createActorSystem`.
 *
 * @example
 * ```ts
 * const system = createActorSystem({ name: 'app', clock: systemClock });
 * ```
 */
export const systemClock: Clock = { now: () => Date.now() };
