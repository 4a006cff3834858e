/**
 * What the in-memory store does beyond the shared contract (which runs in
 * `@dataflow/persistence`): the injected clock, the configured payload limit,
 * and how live streams end.
 */
import { describe, expect, it } from 'vitest';
import { isDataflowError } from '../../errors/dataflow-error.js';
import { NoOffset } from '../queries.js';
import { SerializerRegistry } from '../serialization/serializer-registry.js';
import { createInMemoryPersistence } from './in-memory-persistence.js';

describe('createInMemoryPersistence', () => {
  it('stamps events with the injected clock', async () => {
    let now = 1_000;
    const { journal } = createInMemoryPersistence({ now: () => now });
    await journal.append('p', [{ eventType: 'A', payload: 1 }], { expectedSequenceNr: 0, writerId: 'w' });
    now = 5_000;
    await journal.append('p', [{ eventType: 'B', payload: 2 }], { expectedSequenceNr: 1, writerId: 'w' });
    const stamps: number[] = [];
    for await (const e of journal.replay('p', 1)) stamps.push(e.timestamp);
    expect(stamps).toEqual([1_000, 5_000]);
  });

  it('applies the registry payload limit to events and snapshots', async () => {
    const { journal, snapshots } = createInMemoryPersistence({ serializers: new SerializerRegistry({ maxPayloadBytes: 16 }) });
    const tooLarge = await journal.append('p', [{ eventType: 'A', payload: 'x'.repeat(20) }], { expectedSequenceNr: 0, writerId: 'w' }).catch((e: unknown) => e);
    expect(isDataflowError(tooLarge, 'serialization/payload-too-large')).toBe(true);
    const snapshotTooLarge = await snapshots.save({ persistenceId: 'p', sequenceNr: 1, timestamp: 0 }, 'y'.repeat(20)).catch((e: unknown) => e);
    expect(isDataflowError(snapshotTooLarge, 'serialization/payload-too-large')).toBe(true);
  });

  it('fails a waiting live stream when the store closes', async () => {
    const persistence = createInMemoryPersistence();
    const iterator = persistence.queries.eventsByTag('t', NoOffset, { live: true })[Symbol.asyncIterator]();
    const next = iterator.next();
    await persistence.close();
    const error = await next.catch((e: unknown) => e);
    expect(isDataflowError(error, 'journal/read-failed')).toBe(true);
  });

  it('wakes a live stream on append and refuses timestamp offsets', async () => {
    const { journal, queries } = createInMemoryPersistence();
    const controller = new AbortController();
    const iterator = queries.eventsByPersistenceId('p', 1, undefined, { live: true, signal: controller.signal })[Symbol.asyncIterator]();
    const next = iterator.next();
    await journal.append('p', [{ eventType: 'A', payload: 'hello' }], { expectedSequenceNr: 0, writerId: 'w' });
    expect((await next).value).toMatchObject({ sequenceNr: 1, payload: 'hello', offset: { kind: 'sequence', value: 1 } });
    controller.abort();
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    const timestampOffset = queries.eventsByTag('t', { kind: 'timestamp', value: 0, seen: {} })[Symbol.asyncIterator]().next();
    expect(isDataflowError(await timestampOffset.catch((e: unknown) => e), 'journal/read-failed')).toBe(true);
  });
});
