/**
 * The testing part of docs-event-sourcing.md, quoted there verbatim: the
 * counter under the pure spec, the test kit, and injected journal faults.
 */
import { describe, expect, it } from 'vitest';
import { StatusReply } from '../../actor/status-reply.js';
import { createInMemoryPersistence } from '../../persistence/in-memory/in-memory-persistence.js';
import { BehaviorSpec, EventSourcedBehaviorTestKit, PersistenceTestKit, TestClock } from '../../testing/index.js';
import { counter } from './counter.js';

describe('the counter', () => {
  it('passes the spec, runs in the test kit and survives injected faults', async () => {
    // Given / when / then, pure (no journal):
    BehaviorSpec.for(counter).given([{ type: 'added', n: 1 }]).when({ type: 'reset' }).expectEvents([{ type: 'reset' }]).expectState({ total: 0 });

    // One entity on an in-memory journal: events (read back through serialization), state, reply.
    const kit = EventSourcedBehaviorTestKit.create(counter, { entityId: '1' });
    const { events, state } = await kit.runCommand({ type: 'add', n: 2 });
    expect([events, state]).toEqual([[{ type: 'added', n: 2 }], { total: 2 }]);
    const { reply } = await kit.runCommand<StatusReply<number>>((replyTo) => ({ type: 'get', replyTo }));
    expect(reply).toEqual(StatusReply.success(2));
    expect((await kit.restart()).state).toEqual({ total: 2 }); // recovered from the journal

    // Fault injection and backoff on a test clock:
    const clock = new TestClock();
    const faults = PersistenceTestKit.wrap(createInMemoryPersistence()).failNextWrites(1);
    const flaky = EventSourcedBehaviorTestKit.create(counter, { persistence: faults, clock });
    await expect(flaky.runCommand({ type: 'add', n: 1 })).rejects.toMatchObject({ tag: 'journal/write-failed', retriable: true });
    await clock.advanceAsync(200); // the restart is due; the entity recovers

    // A write whose answer was lost after it was stored: the entity re-reads its head, the command succeeds once.
    faults.writeOutcomeUnknownNextWrites(1, { applied: true });
    const { reply: total } = await flaky.runCommand<StatusReply<number>>((replyTo) => ({ type: 'add', n: 1, replyTo }));
    expect(total).toEqual(StatusReply.success(1));
    expect(faults.writtenEvents(flaky.persistenceId)).toEqual([{ type: 'added', n: 1 }]);
  });
});
