import { afterEach, describe, expect, it } from 'vitest';
import { SupervisorStrategy } from '../supervision/supervisor-strategy.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import type { ActorRef } from './actor-ref.js';
import { behavior } from './behavior.js';

type TimerMsg =
  | { type: 'single'; key: string; delayMs: number; label: string }
  | { type: 'periodic'; key: string; intervalMs: number; label: string }
  | { type: 'cancel'; key: string }
  | { type: 'tick'; label: string }
  | { type: 'cancel-later'; key: string; started: () => void; gate: Promise<void> }
  | { type: 'crash' }
  | { type: 'stop' };

const timed = (out: ActorRef<string>) =>
  behavior<TimerMsg, undefined>({
    initialState: undefined,
    onMessage: (state, msg, ctx) => {
      switch (msg.type) {
        case 'single':
          ctx.timers.startSingle(msg.key, { type: 'tick', label: msg.label }, msg.delayMs);
          break;
        case 'periodic':
          ctx.timers.startPeriodic(msg.key, { type: 'tick', label: msg.label }, msg.intervalMs);
          break;
        case 'cancel':
          ctx.timers.cancel(msg.key);
          break;
        case 'tick':
          out.tell(`${msg.label}@${ctx.system.clock.now()}`);
          break;
        case 'cancel-later':
          msg.started();
          return msg.gate.then(() => {
            ctx.timers.cancel(msg.key);
            return state;
          });
        case 'crash':
          throw new Error('crash');
        case 'stop':
          ctx.stopSelf();
          break;
      }
      return state;
    },
  });

let kit: ActorTestKit;
afterEach(async () => {
  await kit.shutdown();
});

describe('actor timers', () => {
  it('fire single and periodic timers in time order on the test clock', async () => {
    kit = createActorTestKit();
    const probe = kit.createTestProbe<string>();
    const ref = kit.system.spawn(timed(probe.ref), 'timed');
    ref.tell({ type: 'periodic', key: 'p', intervalMs: 100, label: 'p' });
    ref.tell({ type: 'single', key: 's', delayMs: 250, label: 's' });
    await kit.advance(99);
    await probe.expectNoMessage();
    await kit.advance(301);
    expect(await probe.receiveMessages(5)).toEqual(['p@100', 'p@200', 's@250', 'p@300', 'p@400']);
    await probe.expectNoMessage();
  });

  it('cancel stops a timer, and starting a key in use replaces the timer', async () => {
    kit = createActorTestKit();
    const probe = kit.createTestProbe<string>();
    const ref = kit.system.spawn(timed(probe.ref), 'timed');
    ref.tell({ type: 'single', key: 'a', delayMs: 100, label: 'first' });
    ref.tell({ type: 'single', key: 'a', delayMs: 200, label: 'second' });
    ref.tell({ type: 'periodic', key: 'p', intervalMs: 50, label: 'p' });
    await kit.advance(50);
    ref.tell({ type: 'cancel', key: 'p' });
    await kit.advance(1000);
    expect(await probe.receiveMessages(2)).toEqual(['p@50', 'second@200']);
    await probe.expectNoMessage();
  });

  it('a timer cancelled after it fired but before its message was handled does not deliver', async () => {
    kit = createActorTestKit();
    const probe = kit.createTestProbe<string>();
    const ref = kit.system.spawn(timed(probe.ref), 'timed');
    ref.tell({ type: 'single', key: 'a', delayMs: 100, label: 'late' });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    await new Promise<void>((started) => ref.tell({ type: 'cancel-later', key: 'a', started, gate }));
    kit.clock.advance(100); // fires now: the tick waits in the mailbox behind the handler that will cancel it
    expect(kit.clock.pendingTasks).toBe(0);
    release();
    await probe.expectNoMessage();
  });

  it('cancels all timers when the actor stops or restarts', async () => {
    kit = createActorTestKit();
    const probe = kit.createTestProbe<string>();
    const restarting = kit.system.spawn(timed(probe.ref), 'restarting', { supervise: SupervisorStrategy.restart });
    const stopping = kit.system.spawn(timed(probe.ref), 'stopping');
    restarting.tell({ type: 'periodic', key: 'p', intervalMs: 10, label: 'r' });
    stopping.tell({ type: 'periodic', key: 'p', intervalMs: 10, label: 's' });
    restarting.tell({ type: 'crash' });
    stopping.tell({ type: 'stop' });
    await kit.advance(100);
    await probe.expectNoMessage();
    expect(kit.clock.pendingTasks).toBe(0);
  });
});
