// The examples of docs-actors.md, kept compiling and passing here.
import { describe, expect, it } from 'vitest';
import { SupervisorStrategy } from '../supervision/supervisor-strategy.js';
import { createActorTestKit } from '../testing/actor-test-kit.js';
import type { ActorRef } from './actor-ref.js';
import { createActorSystem } from './actor-system.js';
import { ask } from './ask.js';
import { behavior } from './behavior.js';

type CounterMsg = { type: 'add'; n: number } | { type: 'get'; replyTo: ActorRef<number> };

const counter = behavior<CounterMsg, number>({
  initialState: 0,
  onMessage: (total, msg) => {
    if (msg.type === 'add') return total + msg.n;
    msg.replyTo.tell(total);
    return total;
  },
});

describe('docs-actors.md examples', () => {
  it('counter on a real system', async () => {
    const system = createActorSystem({ name: 'example' });
    const restarts: number[] = [];
    system.events.on('actor.restarted', (e) => restarts.push(e.backoffMs));
    const ref = system.spawn(counter, 'counter', {
      supervise: [{ retriable: true, then: SupervisorStrategy.restartWithBackoff({ minBackoffMs: 1_000, maxBackoffMs: 30_000 }) }],
    });
    ref.tell({ type: 'add', n: 2 });
    const total = await ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 });
    await system.terminate();
    expect(total).toBe(2);
    expect(restarts).toEqual([]);
  });

  it('counter with the test kit', async () => {
    const kit = createActorTestKit();
    const probe = kit.createTestProbe<number>();
    const ref = kit.system.spawn(counter, 'counter');
    ref.tell({ type: 'add', n: 3 });
    ref.tell({ type: 'get', replyTo: probe.ref });
    await probe.expectMessage({ toEqual: 3 });
    await kit.shutdown();
  });
});
