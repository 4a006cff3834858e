/**
 * The projection runner on the real Postgres server (a schema per test file)
 * and on embedded PGlite, over events written by the real journal: resume
 * from the stored offset after a stop, the recovery strategies, pause and
 * resume, skip ahead and rebuild, a failed group rolled back whole, the
 * at-least-once offset saved on time while idle, and the supervised actor
 * restarting a failed run with backoff.
 */
import { createActorSystem, isDataflowError, type EventEnvelope, type Offset } from '@dataflow/core';
import { type SqlQueryable } from '@dataflow/persistence';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProjectionManagement } from '../offset-store/projection-management.js';
import { ProjectionOffsetStore, type ProjectionId } from '../offset-store/projection-offset-store.js';
import { migrateProjections } from '../schema/projections-schema.js';
import { spawnProjection } from './projection-actor.js';
import type { ProjectionHandlerError } from './projection-errors.js';
import { runProjection, type ProjectionRunDependencies, type ProjectionStatusEvent } from './projection-runner.js';
import { atLeastOnce, exactlyOnce, groupedWithin, HandlerRecoveryStrategy, type Projection } from './projection.js';
import { sqlTestStores, type SqlTestStore } from '../testing/sql-test-stores.test.js';

type Store = SqlTestStore;

const stores = sqlTestStores(import.meta.url, { poolMax: 6 });

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(Object.keys(stores))('projection runner on %s', (storeName) => {
  let store: Store;
  let offsets: ProjectionOffsetStore;
  let management: ProjectionManagement;

  beforeAll(async () => {
    store = await (stores[storeName] as () => Promise<Store>)();
    await migrateProjections(store.executor, store.schema);
    offsets = new ProjectionOffsetStore(store.executor, store.schema);
    management = new ProjectionManagement(offsets);
    await store.executor.query(
      `CREATE TABLE "${store.schema}".applied (projection TEXT NOT NULL, persistence_id TEXT NOT NULL, sequence_nr BIGINT NOT NULL, times INTEGER NOT NULL, PRIMARY KEY (projection, persistence_id, sequence_nr))`,
    );
  }, 60_000);
  afterAll(async () => {
    await store.close();
  }, 60_000);

  /** Appends `count` events with `tag` over three persistence ids; returns their envelopes in tag order. */
  async function append(tag: string, count: number): Promise<EventEnvelope[]> {
    for (let i = 0; i < count; i++) {
      const pid = `${tag}-${i % 3}`;
      await store.persistence.journal.append(pid, [{ eventType: 'Counted', payload: { i }, tags: [tag] }], {
        expectedSequenceNr: await store.persistence.journal.highestSequenceNr(pid),
        writerId: 'test',
      });
    }
    const envelopes: EventEnvelope[] = [];
    for await (const envelope of store.persistence.queries.eventsByTag(tag)) envelopes.push(envelope);
    return envelopes;
  }

  /** Records one application of `envelope` by `projection` (a second one counts up `times`). */
  async function record(projection: string, envelope: EventEnvelope, db: SqlQueryable): Promise<void> {
    await db.query(
      `INSERT INTO "${store.schema}".applied AS a (projection, persistence_id, sequence_nr, times) VALUES ($1, $2, $3, 1)
       ON CONFLICT (projection, persistence_id, sequence_nr) DO UPDATE SET times = a.times + 1`,
      [projection, envelope.persistenceId, envelope.sequenceNr],
    );
  }

  /** `persistenceId#sequenceNr` -> times applied. */
  async function applied(projection: string): Promise<Map<string, number>> {
    const rows = await store.executor.query<{ persistence_id: string; sequence_nr: string | number; times: number }>(
      `SELECT persistence_id, sequence_nr, times FROM "${store.schema}".applied WHERE projection = $1`,
      [projection],
    );
    return new Map(rows.map((r) => [`${r.persistence_id}#${Number(r.sequence_nr)}`, r.times]));
  }

  const key = (envelope: EventEnvelope) => `${envelope.persistenceId}#${envelope.sequenceNr}`;

  function deps(events: ProjectionStatusEvent[] = []): ProjectionRunDependencies {
    return { queries: store.persistence.queries, store: offsets, executor: store.executor, pauseCheckMs: 30, onStatus: (event) => events.push(event) };
  }

  /** Runs until `done` holds, then aborts the run; answers how it ended. */
  async function runUntil(projection: Projection, done: () => Promise<boolean>, events?: ProjectionStatusEvent[]): Promise<'aborted' | 'paused'> {
    const controller = new AbortController();
    const run = runProjection(projection, deps(events), controller.signal);
    const failed = run.then(
      () => undefined,
      (error: unknown) => error,
    );
    await until('the projection to get there', async () => (await Promise.race([failed, Promise.resolve('pending')])) !== 'pending' || (await done()));
    controller.abort();
    return run;
  }

  it('exactlyOnce: stopped mid-stream, it resumes from the stored offset and applies nothing twice', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-eo-resume`;
    const envelopes = await append(tag, 40);
    const name = `${tag}-p`;
    const slow = exactlyOnce({
      name,
      tag,
      handler: async (envelope, tx) => {
        await new Promise((r) => setTimeout(r, 5));
        await record(name, envelope, tx);
      },
    });
    const events: ProjectionStatusEvent[] = [];
    expect(await runUntil(slow, async () => (await offsets.get(slow.id)).eventsApplied >= 10, events)).toBe('aborted');
    const stopped = await offsets.get(slow.id);
    expect(stopped.eventsApplied).toBeLessThan(40);
    expect((await applied(name)).size).toBe(stopped.eventsApplied);
    expect(events[0]).toEqual({ type: 'started', id: slow.id, offset: undefined });
    expect(events.at(-1)).toEqual({ type: 'stopped', id: slow.id, reason: 'aborted' });
    expect(events.filter((e) => e.type === 'progress')).toHaveLength(stopped.eventsApplied);

    const later = await append(tag, 5);
    const resumed: ProjectionStatusEvent[] = [];
    await runUntil(slow, async () => (await applied(name)).size === 45, resumed);
    expect(resumed[0]).toEqual({ type: 'started', id: slow.id, offset: stopped.offset });
    const rows = await applied(name);
    expect([...rows.keys()].sort()).toEqual(later.map(key).sort());
    expect([...rows.values()].every((times) => times === 1)).toBe(true);
    expect(later.slice(0, 40)).toEqual(envelopes);
    expect((await offsets.get(slow.id)).offset).toEqual(later.at(-1)?.offset);
  });

  it('fail: a handler failure fails the run with its writes rolled back; the next run starts at the failed event', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-fail`;
    const envelopes = await append(tag, 12);
    const name = `${tag}-p`;
    const poisoned = key(envelopes[6] as EventEnvelope);
    let failing = true;
    const projection = exactlyOnce({
      name,
      tag,
      handler: async (envelope, tx) => {
        await record(name, envelope, tx);
        if (failing && key(envelope) === poisoned) throw new Error('the handler broke');
      },
    });
    const events: ProjectionStatusEvent[] = [];
    const error: unknown = await runProjection(projection, deps(events), new AbortController().signal).catch((e: unknown) => e);
    expect(isDataflowError(error, 'projection/handler-failed')).toBe(true);
    expect((error as ProjectionHandlerError).retriable).toBe(true);
    expect((error as ProjectionHandlerError).attempts).toBe(1);
    expect((error as Error).cause).toEqual(new Error('the handler broke'));
    expect(events.filter((e) => e.type === 'error').map((e) => e.type === 'error' && e.outcome)).toEqual(['fail']);
    expect(events.at(-1)).toEqual({ type: 'stopped', id: projection.id, reason: 'failed' });
    const afterFailure = await offsets.get(projection.id);
    expect(afterFailure.offset).toEqual(envelopes[5]?.offset);
    expect(afterFailure.lastError).toMatch(/the handler broke/);
    expect((await applied(name)).has(poisoned)).toBe(false);

    failing = false;
    await runUntil(projection, async () => (await applied(name)).size === 12);
    expect([...(await applied(name)).values()].every((times) => times === 1)).toBe(true);
  });

  it('skip: the failing event is passed over, the others applied once', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-skip`;
    const envelopes = await append(tag, 9);
    const name = `${tag}-p`;
    const poisoned = key(envelopes[4] as EventEnvelope);
    let attempts = 0;
    const projection = exactlyOnce({
      name,
      tag,
      recovery: HandlerRecoveryStrategy.skip,
      handler: async (envelope, tx) => {
        if (key(envelope) === poisoned) {
          attempts++;
          throw new Error('cannot apply');
        }
        await record(name, envelope, tx);
      },
    });
    const events: ProjectionStatusEvent[] = [];
    const lastOffset = JSON.stringify(envelopes.at(-1)?.offset);
    await runUntil(projection, async () => JSON.stringify((await offsets.get(projection.id)).offset) === lastOffset, events);
    expect(attempts).toBe(1);
    const rows = await applied(name);
    expect([...rows.keys()].sort()).toEqual(envelopes.map(key).filter((k) => k !== poisoned).sort());
    expect([...rows.values()].every((times) => times === 1)).toBe(true);
    expect(events.filter((e) => e.type === 'error').map((e) => e.type === 'error' && [e.outcome, e.attempt])).toEqual([['skip', 1]]);
  });

  it('skip: the skipped event\'s error stays in the status until a later event is applied', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-skip-last`;
    const envelopes = await append(tag, 3);
    const name = `${tag}-p`;
    const poisoned = envelopes.at(-1) as EventEnvelope;
    const projection = exactlyOnce({
      name,
      tag,
      recovery: HandlerRecoveryStrategy.skip,
      handler: async (envelope, tx) => {
        if (key(envelope) === key(poisoned)) throw new Error('cannot apply');
        await record(name, envelope, tx);
      },
    });
    const lastOffset = JSON.stringify(poisoned.offset);
    await runUntil(projection, async () => JSON.stringify((await offsets.get(projection.id)).offset) === lastOffset);
    const status = await management.status(projection.id, tag);
    expect(status.lastError).toBe(`skipped at ${key(poisoned)} after 1 attempt(s): cannot apply`);
    expect(status.lag).toEqual({ kind: 'known', events: 0, seconds: 0 });
    expect((await applied(name)).size).toBe(2);
  });

  it('retryAndFail: the handler is tried 1 + n times, then the run fails', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-retry-fail`;
    const envelopes = await append(tag, 4);
    const poisoned = key(envelopes[2] as EventEnvelope);
    let attempts = 0;
    const projection = exactlyOnce({
      name: `${tag}-p`,
      tag,
      recovery: HandlerRecoveryStrategy.retryAndFail(2, 10),
      handler: (envelope) => {
        if (key(envelope) !== poisoned) return Promise.resolve();
        attempts++;
        return Promise.reject(new Error('still broken'));
      },
    });
    const events: ProjectionStatusEvent[] = [];
    const error: unknown = await runProjection(projection, deps(events), new AbortController().signal).catch((e: unknown) => e);
    expect(isDataflowError(error, 'projection/handler-failed')).toBe(true);
    expect((error as ProjectionHandlerError).attempts).toBe(3);
    expect(attempts).toBe(3);
    expect(events.filter((e) => e.type === 'error').map((e) => e.type === 'error' && [e.outcome, e.attempt])).toEqual([
      ['retry', 1],
      ['retry', 2],
      ['fail', 3],
    ]);
    expect((await offsets.get(projection.id)).offset).toEqual(envelopes[1]?.offset);
  });

  it('retryAndSkip: a transient failure is retried and applied; a lasting one skipped after 1 + n tries', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-retry-skip`;
    const envelopes = await append(tag, 6);
    const name = `${tag}-p`;
    const transient = key(envelopes[1] as EventEnvelope);
    const lasting = key(envelopes[3] as EventEnvelope);
    const tries = new Map<string, number>();
    const projection = exactlyOnce({
      name,
      tag,
      recovery: HandlerRecoveryStrategy.retryAndSkip(2, 10),
      handler: async (envelope, tx) => {
        const k = key(envelope);
        tries.set(k, (tries.get(k) ?? 0) + 1);
        if (k === lasting || (k === transient && tries.get(k) === 1)) throw new Error(`failure at ${k}`);
        await record(name, envelope, tx);
      },
    });
    await runUntil(projection, async () => (await applied(name)).size === 5 && (await offsets.get(projection.id)).offset?.kind === 'sequence' && JSON.stringify((await offsets.get(projection.id)).offset) === JSON.stringify(envelopes.at(-1)?.offset));
    expect(tries.get(transient)).toBe(2);
    expect(tries.get(lasting)).toBe(3);
    const rows = await applied(name);
    expect(rows.has(lasting)).toBe(false);
    expect(rows.get(transient)).toBe(1);
  });

  it('pause stops a running projection and keeps it stopped; resume lets it catch up', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-pause`;
    await append(tag, 5);
    const name = `${tag}-p`;
    const projection = exactlyOnce({ name, tag, handler: (envelope, tx) => record(name, envelope, tx) });
    const events: ProjectionStatusEvent[] = [];
    const run = runProjection(projection, deps(events), new AbortController().signal);
    await until('the first events', async () => (await applied(name)).size === 5);
    await management.pause(projection.id);
    expect(await run).toBe('paused');
    expect(events.at(-1)).toEqual({ type: 'stopped', id: projection.id, reason: 'paused' });

    await append(tag, 4);
    expect(await runProjection(projection, deps(), new AbortController().signal)).toBe('paused');
    expect((await applied(name)).size).toBe(5);

    await management.resume(projection.id);
    await runUntil(projection, async () => (await applied(name)).size === 9);
    expect([...(await applied(name)).values()].every((times) => times === 1)).toBe(true);
  });

  it('setOffset skips ahead; clearOffset replays from the start', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-offsets`;
    const envelopes = await append(tag, 8);
    const name = `${tag}-p`;
    const projection = exactlyOnce({ name, tag, handler: (envelope, tx) => record(name, envelope, tx) });
    await management.setOffset(projection.id, envelopes[4]?.offset as Offset);
    await runUntil(projection, async () => (await applied(name)).size === 3);
    expect([...(await applied(name)).keys()].sort()).toEqual(envelopes.slice(5).map(key).sort());

    await management.clearOffset(projection.id);
    await runUntil(projection, async () => (await offsets.get(projection.id)).eventsApplied === 8);
    const rows = await applied(name);
    expect(envelopes.map((e) => rows.get(key(e)))).toEqual([1, 1, 1, 1, 1, 2, 2, 2]);
  });

  it('groupedWithin: a failed group is rolled back whole; the retried groups apply every event once', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-grouped`;
    const envelopes = await append(tag, 30);
    const name = `${tag}-p`;
    const poisoned = key(envelopes[17] as EventEnvelope);
    let failing = true;
    const sizes: number[] = [];
    const projection = groupedWithin({
      name,
      tag,
      size: 10,
      withinMs: 50,
      handler: async (group, tx) => {
        sizes.push(group.length);
        for (const envelope of group) {
          await record(name, envelope, tx);
          if (failing && key(envelope) === poisoned) throw new Error('group broke');
        }
      },
    });
    await expect(runProjection(projection, deps(), new AbortController().signal)).rejects.toThrow(/group broke/);
    const afterFailure = await applied(name);
    expect(afterFailure.size % 10).toBe(0);
    expect(afterFailure.size).toBeLessThan(18);
    expect(afterFailure.has(poisoned)).toBe(false);
    expect((await offsets.get(projection.id)).eventsApplied).toBe(afterFailure.size);
    expect(sizes.every((size) => size <= 10)).toBe(true);

    failing = false;
    await runUntil(projection, async () => (await applied(name)).size === 30);
    expect([...(await applied(name)).values()].every((times) => times === 1)).toBe(true);
  });

  it('atLeastOnce saves the offset after saveAfterMs while no further event comes', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-alo-idle`;
    const envelopes = await append(tag, 3);
    const name = `${tag}-p`;
    const projection = atLeastOnce({ name, tag, saveEvery: 100, saveAfterMs: 100, handler: (envelope, db) => record(name, envelope, db) });
    const controller = new AbortController();
    const run = runProjection(projection, deps(), controller.signal);
    await until('the offset to be saved while the run is idle', async () => JSON.stringify((await offsets.get(projection.id)).offset) === JSON.stringify(envelopes.at(-1)?.offset));
    controller.abort();
    expect(await run).toBe('aborted');
    expect((await applied(name)).size).toBe(3);
  });

  it('as a supervised actor: a failed run is restarted with backoff from the stored offset', { timeout: 60_000 }, async () => {
    const tag = `${storeName}-actor`;
    const envelopes = await append(tag, 10);
    const name = `${tag}-p`;
    const poisoned = key(envelopes[5] as EventEnvelope);
    let failures = 0;
    const projection = exactlyOnce({
      name,
      tag,
      handler: async (envelope, tx) => {
        await record(name, envelope, tx);
        if (key(envelope) === poisoned && failures < 2) {
          failures++;
          throw new Error('transient');
        }
      },
    });
    const events: ProjectionStatusEvent[] = [];
    const system = createActorSystem({ name: `projection-actor-${storeName}` });
    try {
      spawnProjection(system, projection, deps(events), { minBackoffMs: 20, maxBackoffMs: 100 });
      await until('the restarted runs to apply everything', async () => (await applied(name)).size === 10);
      expect(failures).toBe(2);
      expect(events.filter((e) => e.type === 'started')).toHaveLength(3);
      expect(events.filter((e) => e.type === 'stopped').map((e) => e.type === 'stopped' && e.reason)).toEqual(['failed', 'failed']);
      expect([...(await applied(name)).values()].every((times) => times === 1)).toBe(true);
    } finally {
      await system.terminate();
    }
    expect(events.at(-1)).toEqual({ type: 'stopped', id: projection.id satisfies ProjectionId, reason: 'aborted' });
  });
});
