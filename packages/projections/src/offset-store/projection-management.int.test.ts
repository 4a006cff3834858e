/**
 * The offset store and projection management on the real Postgres server
 * (a schema per test file) and on embedded PGlite, with events written by the
 * real journal: offsets saved inside a caller's transaction commit or roll
 * back with it, set / clear / pause / resume, bad input refused by field, and
 * the status' lag counted from the journal.
 */
import { isDataflowError } from '@dataflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateProjections } from '../schema/projections-schema.js';
import { ProjectionManagement } from './projection-management.js';
import { InvalidProjectionInputError } from './projection-management-errors.js';
import { ProjectionOffsetStore } from './projection-offset-store.js';
import { ProjectionOffsetMovedError } from '../runner/projection-errors.js';
import { sqlTestStores, type SqlTestStore } from '../testing/sql-test-stores.test.js';

type Store = SqlTestStore;

const stores = sqlTestStores(import.meta.url);

describe.each(Object.keys(stores))('projection offset store and management on %s', (storeName) => {
  let store: Store;
  let offsets: ProjectionOffsetStore;
  let clock = 0;
  let management: ProjectionManagement;

  beforeAll(async () => {
    store = await (stores[storeName] as () => Promise<Store>)();
    await migrateProjections(store.executor, store.schema);
    offsets = new ProjectionOffsetStore(store.executor, store.schema);
    management = new ProjectionManagement(offsets, { now: () => clock });
  }, 60_000);
  afterAll(async () => {
    await store.close();
  }, 60_000);

  it('migrates once: a second run applies nothing', async () => {
    const again = await migrateProjections(store.executor, store.schema);
    expect(again.applied).toEqual([]);
  });

  it('answers the defaults for a projection that never ran', async () => {
    const id = { name: 'never-ran', key: 'default' };
    expect(await offsets.get(id)).toEqual({ offset: undefined, eventsApplied: 0, lastEventAt: undefined, paused: false, lastError: undefined, updatedAt: undefined });
    expect(await management.getOffset(id)).toBeUndefined();
    expect(await management.isPaused(id)).toBe(false);
  });

  it('saves an offset with the transaction it is given: rolled back, nothing is stored; committed, it is', async () => {
    const id = { name: 'tx', key: 'k1' };
    await expect(
      store.executor.transaction(async (tx) => {
        await offsets.save(id, { kind: 'sequence', value: 7 }, 3, 1_000, tx);
        throw new Error('handler failed after the save');
      }),
    ).rejects.toThrow('handler failed after the save');
    expect(await management.getOffset(id)).toBeUndefined();

    await store.executor.transaction((tx) => offsets.save(id, { kind: 'sequence', value: 7 }, 3, 1_000, tx));
    await offsets.save(id, { kind: 'sequence', value: 9 }, 2, 2_000);
    const row = await offsets.get(id);
    expect(row.offset).toEqual({ kind: 'sequence', value: 9 });
    expect(row.eventsApplied).toBe(5);
    expect(row.lastEventAt).toBe(2_000);
    expect(row.updatedAt).toBeInstanceOf(Date);
  });

  it('saves conditionally on the offset it left: moved by another instance, nothing is saved and the transaction rolls back', async () => {
    const id = { name: 'fenced', key: 'slices-0-511' };
    await offsets.save(id, { kind: 'sequence', value: 3 }, 3, 1, store.executor, { offset: undefined });
    await offsets.save(id, { kind: 'sequence', value: 5 }, 2, 2, store.executor, { offset: { kind: 'sequence', value: 3 } });
    // Another instance took the key over and saved further.
    await offsets.save(id, { kind: 'sequence', value: 9 }, 4, 3);
    const stale = store.executor.transaction(async (tx) => {
      await tx.query(`CREATE TABLE IF NOT EXISTS "${store.schema}".fenced_rows (n int)`);
      await tx.query(`INSERT INTO "${store.schema}".fenced_rows VALUES (1)`);
      await offsets.save(id, { kind: 'sequence', value: 7 }, 2, 4, tx, { offset: { kind: 'sequence', value: 5 } });
    });
    await expect(stale).rejects.toBeInstanceOf(ProjectionOffsetMovedError);
    const error = (await stale.catch((e: unknown) => e)) as ProjectionOffsetMovedError;
    expect(isDataflowError(error, 'projection/offset-moved')).toBe(true);
    expect(error.retriable).toBe(true);
    expect(await offsets.get(id)).toMatchObject({ offset: { kind: 'sequence', value: 9 }, eventsApplied: 9 });
    expect(await store.executor.query(`SELECT to_regclass('"${store.schema}".fenced_rows') AS t`)).toEqual([{ t: null }]);
    // A new instance whose row appeared meanwhile is refused too.
    const fresh = { name: 'fenced', key: 'slices-512-1023' };
    await offsets.save(fresh, { kind: 'sequence', value: 2 }, 1, 1);
    await expect(offsets.save(fresh, { kind: 'sequence', value: 4 }, 1, 1, store.executor, { offset: undefined })).rejects.toBeInstanceOf(ProjectionOffsetMovedError);
  });

  it('keeps projections apart by name and key', async () => {
    await offsets.save({ name: 'apart', key: 'a' }, { kind: 'sequence', value: 1 }, 1, 1);
    await offsets.save({ name: 'apart', key: 'b' }, { kind: 'sequence', value: 2 }, 1, 1);
    await offsets.save({ name: 'apart-2', key: 'a' }, { kind: 'sequence', value: 3 }, 1, 1);
    expect(await management.getOffset({ name: 'apart', key: 'a' })).toEqual({ kind: 'sequence', value: 1 });
    expect(await management.getOffset({ name: 'apart', key: 'b' })).toEqual({ kind: 'sequence', value: 2 });
    expect(await management.getOffset({ name: 'apart-2', key: 'a' })).toEqual({ kind: 'sequence', value: 3 });
    const listed = (await offsets.list()).filter((row) => row.name.startsWith('apart')).map((row) => `${row.name}/${row.key}`);
    // Ordered by the database's collation, which differs between servers: compare as a set.
    expect(listed.toSorted()).toEqual(['apart-2/a', 'apart/a', 'apart/b']);
  });

  it('sets an offset (skip ahead) and clears it (rebuild) without touching the paused flag', async () => {
    const id = { name: 'manage', key: 'default' };
    await offsets.save(id, { kind: 'sequence', value: 4 }, 4, 500);
    await management.pause(id);
    await management.setOffset(id, { kind: 'sequence', value: 40 });
    expect(await management.getOffset(id)).toEqual({ kind: 'sequence', value: 40 });
    expect(await management.isPaused(id)).toBe(true);

    await management.clearOffset(id);
    const cleared = await offsets.get(id);
    expect(cleared.offset).toBeUndefined();
    expect(cleared.eventsApplied).toBe(0);
    expect(cleared.lastEventAt).toBeUndefined();
    expect(cleared.paused).toBe(true);

    await management.resume(id);
    expect(await management.isPaused(id)).toBe(false);
  });

  it('pauses a projection that has no row yet', async () => {
    const id = { name: 'paused-before-first-run', key: 'default' };
    await management.pause(id);
    expect(await management.isPaused(id)).toBe(true);
    expect(await management.getOffset(id)).toBeUndefined();
  });

  it('keeps the last error until the next save', async () => {
    const id = { name: 'errors', key: 'default' };
    await offsets.setError(id, 'handler failed at p#3');
    expect((await offsets.get(id)).lastError).toBe('handler failed at p#3');
    await offsets.save(id, { kind: 'sequence', value: 1 }, 1, 1);
    expect((await offsets.get(id)).lastError).toBeUndefined();
  });

  it('refuses malformed ids, offsets and tags by field, changing nothing', async () => {
    const id = { name: 'refuse', key: 'default' };
    await management.setOffset(id, { kind: 'sequence', value: 5 });
    const attempt = management.setOffset(id, { kind: 'sequence', value: -1 });
    await expect(attempt).rejects.toBeInstanceOf(InvalidProjectionInputError);
    await expect(attempt).rejects.toThrow(/offset\.value/);
    expect(await management.getOffset(id)).toEqual({ kind: 'sequence', value: 5 });

    const noName = management.pause({ name: '', key: 'default' });
    await expect(noName).rejects.toThrow(/id\.name: a projection needs a name/);
    const error: unknown = await management.status(id, '').catch((e: unknown) => e);
    expect(isDataflowError(error, 'projection/invalid-input')).toBe(true);
    expect((error as InvalidProjectionInputError).retriable).toBe(false);
  });

  it('reports the lag behind the tag in events and seconds, from journal events', async () => {
    const tag = `lag-${storeName}`;
    const written: number[] = [];
    for (let i = 0; i < 5; i++) {
      await store.persistence.journal.append(`lag-entity-${i % 2}`, [{ eventType: 'Happened', payload: { i }, tags: [tag] }], {
        expectedSequenceNr: Math.floor(i / 2),
        writerId: 'w',
      });
    }
    await store.persistence.journal.append('other-entity', [{ eventType: 'Other', payload: {}, tags: ['other-tag'] }], { expectedSequenceNr: 0, writerId: 'w' });
    const envelopes = [];
    for await (const envelope of store.persistence.queries.eventsByTag(tag)) {
      envelopes.push(envelope);
      written.push(envelope.timestamp);
    }
    expect(envelopes).toHaveLength(5);
    const id = { name: 'lagging', key: 'default' };
    clock = Math.max(...written) + 10_000;

    const fresh = await management.status(id, tag);
    expect(fresh.lag).toEqual({ kind: 'known', events: 5, seconds: (clock - Math.min(...written)) / 1000 });

    const third = envelopes[2] as (typeof envelopes)[number];
    await offsets.save(id, third.offset, 3, third.timestamp);
    const behind = await management.status(id, tag);
    expect(behind.offset).toEqual(third.offset);
    expect(behind.eventsApplied).toBe(3);
    expect(behind.lag).toEqual({ kind: 'known', events: 2, seconds: (clock - Math.min(...written.slice(3))) / 1000 });

    const last = envelopes[4] as (typeof envelopes)[number];
    await offsets.save(id, last.offset, 2, last.timestamp);
    expect((await management.status(id, tag)).lag).toEqual({ kind: 'known', events: 0, seconds: 0 });
  });

  it('says why the lag of a time-based offset is unknown', async () => {
    const id = { name: 'cassandra-like', key: 'default' };
    await management.setOffset(id, { kind: 'timestamp', value: 1_000, seen: { 'p-1': 3 } });
    const status = await management.status(id, 'any');
    expect(status.lag.kind).toBe('unknown');
    expect(status.lag.kind === 'unknown' && status.lag.reason).toMatch(/time-based/);
  });
});
