import { describe, expect, it } from 'vitest';
import { systemClock } from './clock.js';
import { systemScheduler } from './scheduler.js';

describe('system clock and scheduler', () => {
  it('runs a scheduled task, and never a cancelled one', async () => {
    const ran: string[] = [];
    const cancelled = systemScheduler.schedule(0, () => ran.push('cancelled'));
    cancelled.cancel();
    await new Promise<void>((resolve) => systemScheduler.schedule(1, () => resolve(void ran.push('kept'))));
    cancelled.cancel();
    expect(ran).toEqual(['kept']);
  });

  it('reads the wall clock', () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });
});
