import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from './backoff.js';
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
