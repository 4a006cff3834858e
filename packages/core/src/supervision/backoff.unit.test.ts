import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelayMs, validateBackoffPolicy } from './backoff.js';
import { SupervisorStrategy } from './supervisor-strategy.js';

describe('backoffDelayMs', () => {
  const options = { minBackoffMs: 100, maxBackoffMs: 10_000, randomFactor: 0.2 };

  it('doubles from the minimum and caps at the maximum', () => {
    expect([0, 1, 2, 3, 7, 8, 50].map((n) => backoffDelayMs(n, options, 0))).toEqual([100, 200, 400, 800, 10_000, 10_000, 10_000]);
  });

  it('stretches the delay by up to randomFactor', () => {
    expect(backoffDelayMs(3, options, 0.5)).toBe(880);
    expect(backoffDelayMs(0, options, 0.999)).toBe(120);
  });

  it('fills defaults and validates the bounds', () => {
    expect(SupervisorStrategy.restartWithBackoff({ minBackoffMs: 1, maxBackoffMs: 2 })).toEqual({
      type: 'restart-with-backoff',
      minBackoffMs: 1,
      maxBackoffMs: 2,
      randomFactor: 0.2,
      maxRestarts: Infinity,
      withinMs: Infinity,
      resetAfterMs: 2,
      stashCapacity: 1000,
    });
    expect(() => SupervisorStrategy.restartWithBackoff({ minBackoffMs: 5, maxBackoffMs: 2 })).toThrow(RangeError);
  });
});

describe('backoff policy options', () => {
  it('grows by the multiplier and caps', () => {
    const policy = { minBackoffMs: 100, maxBackoffMs: 5_000, multiplier: 3, randomFactor: 0 };
    expect([0, 1, 2, 3, 4].map((n) => backoffDelayMs(n, policy, 0.7))).toEqual([100, 300, 900, 2_700, 5_000]);
  });

  it('spreads the delay around the exponential value with jitter spread', () => {
    const policy = { minBackoffMs: 1_000, maxBackoffMs: 60_000, randomFactor: 0.5, jitter: 'spread' as const };
    expect(backoffDelayMs(0, policy, 0)).toBe(500);
    expect(backoffDelayMs(0, policy, 0.5)).toBe(1_000);
    expect(backoffDelayMs(1, policy, 0.75)).toBe(2_500);
  });

  it('does not overflow on a huge retry count', () => {
    expect(backoffDelayMs(10_000, { minBackoffMs: 1, maxBackoffMs: 30_000, randomFactor: 0 }, 0)).toBe(30_000);
  });

  it('validates the bounds', () => {
    expect(() => validateBackoffPolicy({ minBackoffMs: -1, maxBackoffMs: 2, randomFactor: 0 })).toThrow(RangeError);
    expect(() => validateBackoffPolicy({ minBackoffMs: 1, maxBackoffMs: 2, randomFactor: 0, multiplier: 0.5 })).toThrow(RangeError);
    expect(() => validateBackoffPolicy({ minBackoffMs: 1, maxBackoffMs: 2, randomFactor: -0.1 })).toThrow(RangeError);
  });
});

describe('Backoff', () => {
  it('counts retries, hands out growing delays and starts again after reset', () => {
    const backoff = new Backoff({ minBackoffMs: 100, maxBackoffMs: 1_000, randomFactor: 0.2 }, () => 0.5);
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([110, 220, 440]);
    expect(backoff.attempts).toBe(3);
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.next()).toBe(110);
  });
});
