/**
 * The delay of a backoff restart, Pekko's formula: exponential from
 * `minBackoffMs`, capped at `maxBackoffMs`, then stretched by a random factor
 * so that many actors failing together do not restart together.
 */

/**
 * Delay before restart number `restartCount + 1` (so `restartCount` 0 gives
 * about `minBackoffMs`). `random` is a number in [0, 1) from the injected
 * random source.
 *
 * @example
 * ```ts
 * backoffDelayMs(3, { minBackoffMs: 100, maxBackoffMs: 10_000, randomFactor: 0.2 }, 0.5); // 880
 * ```
 */
export function backoffDelayMs(
  restartCount: number,
  options: { readonly minBackoffMs: number; readonly maxBackoffMs: number; readonly randomFactor: number },
  random: number,
): number {
  const exponential = restartCount >= 30 ? options.maxBackoffMs : options.minBackoffMs * 2 ** restartCount;
  const capped = Math.min(options.maxBackoffMs, Math.max(options.minBackoffMs, exponential));
  return Math.round(capped * (1 + random * options.randomFactor));
}
