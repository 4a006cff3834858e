import { AssertionError } from 'node:assert';
import { describe, expect, it } from 'vitest';
import { StatusReply } from '../actor/status-reply.js';
import { persist } from '../event-sourcing/effect.js';
import { eventSourced } from '../event-sourcing/event-sourced.js';
import { counter } from '../event-sourcing/examples/counter.js';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';
import { BehaviorSpec } from './behavior-spec.js';
import { EventSourcedBehaviorTestKit } from './event-sourced-behavior-test-kit.js';
import { PersistenceTestKit } from './persistence-test-kit.js';

describe('EventSourcedBehaviorTestKit', () => {
  it('reports events, state and reply per command', async () => {
    const kit = EventSourcedBehaviorTestKit.create(counter, { entityId: '1' });
    expect(await kit.runCommand({ type: 'add', n: 2 })).toEqual({ events: [{ type: 'added', n: 2 }], state: { total: 2 }, reply: undefined });
    const result = await kit.runCommand<StatusReply<number>>((replyTo) => ({ type: 'add', n: 3, replyTo }));
    expect(result.reply).toEqual(StatusReply.success(5));
    expect(kit.persistenceId).toBe('counter-1');
  });

  it('clear forgets the history; initialize seeds it', async () => {
    const kit = EventSourcedBehaviorTestKit.create(counter, { entityId: '1' });
    await kit.runCommand({ type: 'add', n: 2 });
    await kit.clear();
    expect(kit.getState()).toEqual({ total: 0 });
    expect((await kit.restart()).state).toEqual({ total: 0 });
    expect((await kit.initialize([{ type: 'added', n: 4 }, { type: 'reset' }, { type: 'added', n: 1 }])).state).toEqual({ total: 1 });
  });

  it('clear with a fixed persistence object is refused', async () => {
    const kit = EventSourcedBehaviorTestKit.create(counter, { persistence: createInMemoryPersistence() });
    await expect(kit.clear()).rejects.toThrow(TypeError);
  });
});

describe('PersistenceTestKit', () => {
  it('fails or rejects the next writes with typed errors and records the others', async () => {
    const faults = PersistenceTestKit.wrap(createInMemoryPersistence()).failNextWrites(1).rejectNextWrites(1);
    const append = () => faults.journal.append('p', [{ eventType: 'e', payload: { n: 1 } }], { expectedSequenceNr: 0, writerId: 'w' });
    await expect(append()).rejects.toMatchObject({ tag: 'journal/write-failed', retriable: true });
    await expect(append()).rejects.toMatchObject({ tag: 'journal/write-failed', retriable: false });
    await append();
    expect(faults.writes.map((w) => w.lastSequenceNr)).toEqual([1]);
    expect(faults.writtenEvents('p')).toEqual([{ n: 1 }]);
  });

  it('fails the next reads and snapshot operations', async () => {
    const faults = PersistenceTestKit.wrap(createInMemoryPersistence()).failNextReads(1).rejectNextReads(1).failNextSnapshotLoads(1);
    await expect(faults.journal.highestSequenceNr('p')).rejects.toMatchObject({ tag: 'journal/read-failed', retriable: true });
    const replay = async () => {
      for await (const _ of faults.journal.replay('p', 1)) return;
    };
    await expect(replay()).rejects.toMatchObject({ tag: 'journal/read-failed', retriable: false });
    await expect(faults.journal.highestSequenceNr('p')).resolves.toBe(0);
    await expect(faults.snapshots.loadLatest('p')).rejects.toMatchObject({ tag: 'snapshot/failed' });
    faults.failNextSnapshotSaves(2);
    faults.reset();
    await faults.snapshots.save({ persistenceId: 'p', sequenceNr: 1, timestamp: 0 }, { s: 1 });
    expect((await faults.snapshots.loadLatest('p'))?.state).toEqual({ s: 1 });
  });
});

describe('BehaviorSpec', () => {
  it('given events, when a command, then events and state', () => {
    BehaviorSpec.for(counter)
      .given([{ type: 'added', n: 1 }])
      .when({ type: 'add', n: 2 })
      .expectEvents([{ type: 'added', n: 2 }])
      .expectState({ total: 3 });
    BehaviorSpec.for(counter).given().when({ type: 'add', n: -1 }).expectUnhandled().expectEvents([]);
  });

  it('fails with an AssertionError on a mismatch', () => {
    expect(() => BehaviorSpec.for(counter).given().when({ type: 'add', n: 2 }).expectEvents([])).toThrow(AssertionError);
    expect(() => BehaviorSpec.for(counter).given().when({ type: 'add', n: 2 }).expectUnhandled()).toThrow(AssertionError);
  });
});

describe('EventSourcedBehaviorTestKit failures', () => {
  it('rejects runCommand with the error of a command handler that threw, and goes on', async () => {
    const kit = EventSourcedBehaviorTestKit.create(
      eventSourced<{ type: 'boom' } | { type: 'ok' }, { type: 'done' }, number>({
        persistenceId: (id) => `boom-${id}`,
        emptyState: 0,
        onCommand: (_s, cmd) => {
          if (cmd.type === 'boom') throw new RangeError('bad command');
          return persist({ type: 'done' });
        },
        onEvent: (s) => s + 1,
      }),
    );
    await expect(kit.runCommand({ type: 'boom' })).rejects.toThrow(RangeError);
    expect((await kit.runCommand({ type: 'ok' })).state).toBe(1);
  });
});
