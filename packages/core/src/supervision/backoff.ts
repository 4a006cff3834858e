/**
 * The one backoff of DataFlow: exponential from `minBackoffMs` by
 * `multiplier` (default 2), capped at `maxBackoffMs`, then randomized so that
 * many actors failing together do not retry together. Supervision restarts,
 * the persist-failure restarts of event-sourced entities and pipeline retries
 * all compute their delays here.
 */

/** How delays grow and spread. */
export interface BackoffPolicy {
  /** Delay of the first retry (before jitter). */
  readonly minBackoffMs: number;
  /** Upper bound of the exponential delay (before jitter). */
  readonly maxBackoffMs: number;
  /** Growth per retry (default 2). */
  readonly multiplier?: number;
  /** Size of the random part (0: none). */
  readonly randomFactor: number;
  /**
   * How the random part applies, with `random` in [0, 1):
   * - `stretch` (default, Pekko's): `delay * (1 + random * randomFactor)`, never shorter than the exponential delay;
   * - `spread`: `delay * (1 + randomFactor * (2 * random - 1))`, centred on it (`randomFactor` ≤ 1).
   */
  readonly jitter?: 'stretch' | 'spread';
}

/**
 * Delay before retry number `retryCount + 1` (so `retryCount` 0 gives about
 * `minBackoffMs`). `random` is a number in [0, 1) from the injected random
 * source.
 *
 * @example
 * ```ts
 * backoffDelayMs(3, { minBackoffMs: 100, maxBackoffMs: 10_000, randomFactor: 0.2 }, 0.5); // 880
 * backoffDelayMs(2, { minBackoffMs: 1_000, maxBackoffMs: 60_000, multiplier: 3, randomFactor: 0.1, jitter: 'spread' }, 0.5); // 9000
 * ```
 */
export function backoffDelayMs(retryCount: number, policy: BackoffPolicy, random: number): number {
  const multiplier = policy.multiplier ?? 2;
  const growth = multiplier ** Math.max(0, retryCount);
  const exponential = Number.isFinite(growth) ? policy.minBackoffMs * growth : policy.maxBackoffMs;
  const capped = Math.min(policy.maxBackoffMs, Math.max(policy.minBackoffMs, exponential));
  const factor = policy.jitter === 'spread' ? 1 + policy.randomFactor * (2 * random - 1) : 1 + random * policy.randomFactor;
  return Math.max(0, Math.round(capped * factor));
}

/** Checks a policy; throws `RangeError` on bounds that cannot work. */
export function validateBackoffPolicy(policy: BackoffPolicy, what = 'Backoff'): void {
  if (!(policy.minBackoffMs >= 0) || !(policy.maxBackoffMs >= policy.minBackoffMs)) {
    throw new RangeError(`${what} needs 0 <= minBackoffMs <= maxBackoffMs, got ${policy.minBackoffMs} and ${policy.maxBackoffMs}`);
  }
  if (policy.multiplier !== undefined && !(policy.multiplier >= 1)) throw new RangeError(`${what} needs multiplier >= 1, got ${policy.multiplier}`);
  if (!(policy.randomFactor >= 0)) throw new RangeError(`${what} needs randomFactor >= 0, got ${policy.randomFactor}`);
}

/**
 * A running backoff: counts retries and hands out the next delay; `reset()`
 * after a success starts again at `minBackoffMs`.
 *
 * @example
 * ```ts
 * const backoff = new Backoff({ minBackoffMs: 200, maxBackoffMs: 10_000, randomFactor: 0.2 }, Math.random);
 * scheduler.schedule(backoff.next(), retry); // 200..240 ms, then 400..480 ms, ...
 * backoff.reset(); // after a success
 * ```
 */
export class Backoff {
  private retries = 0;

  constructor(
    readonly policy: BackoffPolicy,
    private readonly random: () => number,
  ) {
    validateBackoffPolicy(policy);
  }

  /** Retries handed out since the last reset. */
  get attempts(): number {
    return this.retries;
  }

  /** The delay before the next retry; counts it. */
  next(): number {
    return backoffDelayMs(this.retries++, this.policy, this.random());
  }

  reset(): void {
    this.retries = 0;
  }
}
