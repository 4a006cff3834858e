import { describe, expect, it } from 'vitest';
import { TestClock } from './test-clock.js';

describe('TestClock', () => {
  it('runs due tasks in time order, ties in scheduling order, with now() at each due time', () => {
    const clock = new TestClock({ startAt: 1000 });
    const ran: string[] = [];
    clock.schedule(30, () => ran.push(`c@${clock.now()}`));
    clock.schedule(10, () => ran.push(`a@${clock.now()}`));
    clock.schedule(10, () => ran.push(`b@${clock.now()}`));
    clock.schedule(31, () => ran.push('late'));
    clock.advance(30);
    expect(ran).toEqual(['a@1010', 'b@1010', 'c@1030']);
    expect(clock.now()).toBe(1030);
    expect(clock.pendingTasks).toBe(1);
  });

  it('runs tasks scheduled by tasks when they fall due within the same advance', () => {
    const clock = new TestClock();
    const ran: number[] = [];
    const tick = (): void => {
      ran.push(clock.now());
      clock.schedule(10, tick);
    };
    clock.schedule(10, tick);
    clock.advanceTo(35);
    expect(ran).toEqual([10, 20, 30]);
    expect(clock.now()).toBe(35);
  });

  it('never runs cancelled tasks and never goes backwards', () => {
    const clock = new TestClock({ startAt: 50 });
    const ran: string[] = [];
    const handle = clock.schedule(5, () => ran.push('cancelled'));
    handle.cancel();
    clock.advanceTo(10);
    expect(clock.now()).toBe(50);
    clock.advance(100);
    expect(ran).toEqual([]);
    expect(clock.pendingTasks).toBe(0);
  });

  it('settles before the first and after every task in the async variants', async () => {
    const log: string[] = [];
    const clock = new TestClock({
      settle: () => {
        log.push(`settle@${clock.now()}`);
        return Promise.resolve();
      },
    });
    clock.schedule(10, () => log.push('a'));
    clock.schedule(20, () => log.push('b'));
    await clock.advanceAsync(25);
    expect(log).toEqual(['settle@0', 'a', 'settle@10', 'b', 'settle@20']);
    expect(clock.now()).toBe(25);
  });
});
