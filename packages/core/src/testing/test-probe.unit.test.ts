import { afterEach, describe, expect, it } from 'vitest';
import { receive } from '../actor/behavior.js';
import { createActorTestKit, type ActorTestKit } from './actor-test-kit.js';
import { TestProbeExpectationError } from './test-probe.js';

let kit: ActorTestKit;
afterEach(async () => {
  await kit.shutdown();
});

describe('test probe', () => {
  it('returns messages in order and checks equality and predicates', async () => {
    kit = createActorTestKit();
    const probe = kit.createTestProbe<{ n: number }>();
    probe.ref.tell({ n: 1 });
    probe.ref.tell({ n: 2 });
    probe.ref.tell({ n: 3 });
    await expect(probe.expectMessage()).resolves.toEqual({ n: 1 });
    await expect(probe.expectMessage({ toEqual: { n: 2 } })).resolves.toEqual({ n: 2 });
    await expect(probe.expectMessage({ toSatisfy: (m) => m.n > 5 })).rejects.toBeInstanceOf(TestProbeExpectationError);
  });

  it('fails expectMessage on a different message', async () => {
    kit = createActorTestKit();
    const probe = kit.createTestProbe<string>();
    probe.ref.tell('actual');
    await expect(probe.expectMessage({ toEqual: 'expected' })).rejects.toThrow(/expected "expected" but received "actual"/);
  });

  it('fails expectMessage when nothing arrives within the real-time bound', async () => {
    kit = createActorTestKit();
    const probe = kit.createTestProbe<string>();
    await expect(probe.expectMessage({ withinMs: 20 })).rejects.toThrow(/received no message within 20 ms/);
  });

  it('expectNoMessage waits for the system to settle, then fails on anything received', async () => {
    kit = createActorTestKit();
    const probe = kit.createTestProbe<string>();
    const relay = kit.system.spawn(receive<string>((msg) => probe.ref.tell(msg)), 'relay');
    await probe.expectNoMessage();
    relay.tell('hop');
    await expect(probe.expectNoMessage()).rejects.toBeInstanceOf(TestProbeExpectationError);
  });

  it('receives several messages', async () => {
    kit = createActorTestKit();
    const probe = kit.createTestProbe<number>('numbers');
    expect(probe.ref.path).toBe('/user/numbers');
    [1, 2, 3].forEach((n) => probe.ref.tell(n));
    await expect(probe.receiveMessages(3)).resolves.toEqual([1, 2, 3]);
  });
});
