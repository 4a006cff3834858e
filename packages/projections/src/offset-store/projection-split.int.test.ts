/**
 * A read model's split changing (one node joining a cluster, another range
 * count, back to one node) on the real Postgres server and on embedded
 * PGlite: the new keys take the old keys' offset when it is one offset over
 * every slice, and refuse (asking for a rebuild) when it is not, changing
 * nothing; nodes adopting at once adopt once.
 */
import { PGlite } from '@electric-sql/pglite';
import { isDataflowError, type Offset } from '@dataflow/core';
import { pgliteExecutor, pgPoolExecutor, type SqlExecutor } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrateProjections } from '../schema/projections-schema.js';
import { sliceRanges } from '../slices/slices.js';
import { ProjectionOffsetStore } from './projection-offset-store.js';
import { adoptSplit, forgetOtherSplits, rangeOfKey, splitKeys, UNSPLIT_KEY } from './projection-split.js';

interface Store {
  readonly schema: string;
  readonly executor: SqlExecutor;
  close(): Promise<void>;
}

let opened = 0;
const open: Record<string, () => Promise<Store>> = {
  postgres: async () => {
    const schema = testNamespace(import.meta.url, String(++opened));
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 4 });
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.query(`CREATE SCHEMA "${schema}"`);
    return {
      schema,
      executor: pgPoolExecutor(pool, { ownsPool: false }),
      close: async () => {
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await pool.end();
      },
    };
  },
  pglite: async () => {
    const db = await PGlite.create();
    await db.query('CREATE SCHEMA dataflow');
    return { schema: 'dataflow', executor: pgliteExecutor(db), close: () => db.close() };
  },
};

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
});

const at = (value: number): Offset => ({ kind: 'sequence', value });
const NAME = 'pipeline_metrics_hourly';
const four = splitKeys(sliceRanges(4));
const two = splitKeys(sliceRanges(2));
const unsplit = splitKeys(undefined);

describe.each(Object.keys(open))('projection split changes on %s', (storeName) => {
  async function setup() {
    const store = await open[storeName]!();
    closers.push(() => store.close());
    await migrateProjections(store.executor, store.schema);
    const offsets = new ProjectionOffsetStore(store.executor, store.schema);
    const keys = async () => (await offsets.list()).filter((r) => r.name === NAME).map((r) => ({ key: r.key, offset: r.offset ?? null, paused: r.paused }));
    return { store, offsets, keys };
  }

  it('a first start adopts nothing; one node joining a cluster hands its offset and pause to every range, once', async () => {
    const { store, offsets, keys } = await setup();
    expect(await adoptSplit(store.executor, store.schema, NAME, unsplit)).toEqual({ kind: 'unchanged' });
    await offsets.save({ name: NAME, key: UNSPLIT_KEY }, at(500), 500, Date.now());
    await offsets.setPaused({ name: NAME, key: UNSPLIT_KEY }, true);
    await offsets.save({ name: NAME, key: 'bulk' }, at(7), 7, Date.now()); // not part of a split: left alone
    // Three nodes start their ranges at the same moment: one adopts, the others find it done.
    const results = await Promise.all([1, 2, 3].map(() => adoptSplit(store.executor, store.schema, NAME, four)));
    expect(results.filter((r) => r.kind === 'adopted')).toEqual([{ kind: 'adopted', from: [UNSPLIT_KEY], offset: at(500), paused: true }]);
    expect(await keys()).toEqual([
      { key: 'bulk', offset: at(7), paused: false },
      ...four.map(({ key }) => ({ key, offset: at(500), paused: true })),
    ].sort((a, b) => a.key.localeCompare(b.key)));
    expect(await adoptSplit(store.executor, store.schema, NAME, four)).toEqual({ kind: 'unchanged' });
  });

  it('ranges stopped at one offset go back to one node; ranges at different offsets are refused, changing nothing, until a rebuild forgets them', async () => {
    const { store, offsets, keys } = await setup();
    for (const { key } of four) await offsets.save({ name: NAME, key }, at(900), 10, Date.now());
    expect(await adoptSplit(store.executor, store.schema, NAME, unsplit)).toMatchObject({ kind: 'adopted', offset: at(900), paused: false });
    expect(await keys()).toEqual([{ key: UNSPLIT_KEY, offset: at(900), paused: false }]);

    // A split of two whose ranges stand at different offsets: no single offset is right for four ranges.
    await store.executor.query(`DELETE FROM "${store.schema}".projection_offset`);
    await offsets.save({ name: NAME, key: two[0]!.key }, at(100), 1, Date.now());
    await offsets.save({ name: NAME, key: two[1]!.key }, at(120), 1, Date.now());
    const before = await keys();
    const refused = await adoptSplit(store.executor, store.schema, NAME, four).catch((error: unknown) => error);
    expect(isDataflowError(refused, 'projection/split-changed')).toBe(true);
    expect((refused as Error).message).toMatch(/slices-0-511 at .*100.*slices-512-1023 at .*120.*rebuild/);
    expect(await keys()).toEqual(before);
    // On one ordering, with no event of the behind range's slices between its offset and the furthest: every slice is built up to 120.
    const asked: unknown[] = [];
    const behind = await adoptSplit(store.executor, store.schema, NAME, four, (range, after, upTo) => {
      asked.push([range, after, upTo]);
      return Promise.resolve(false);
    }).catch((error: unknown) => error);
    expect((behind as Error).message).toContain('slices-0-511 is behind in its own slices');
    expect(asked).toEqual([[{ min: 0, max: 511 }, 100, 120]]);
    expect(await keys()).toEqual(before);
    expect(await adoptSplit(store.executor, store.schema, NAME, unsplit, () => Promise.resolve(true))).toMatchObject({ kind: 'adopted', offset: at(120) });
    expect(await keys()).toEqual([{ key: UNSPLIT_KEY, offset: at(120), paused: false }]);
    await store.executor.query(`DELETE FROM "${store.schema}".projection_offset`);
    await offsets.save({ name: NAME, key: two[0]!.key }, at(100), 1, Date.now());
    await offsets.save({ name: NAME, key: two[1]!.key }, at(120), 1, Date.now());
    expect(await forgetOtherSplits(store.executor, store.schema, NAME, four)).toEqual(two.map((k) => k.key));
    expect(await adoptSplit(store.executor, store.schema, NAME, four)).toEqual({ kind: 'unchanged' });
  });

  it('refuses old ranges that leave slices unbuilt (a range that never ran), and does not count keys of no split', async () => {
    const { store, offsets } = await setup();
    await offsets.save({ name: NAME, key: four[0]!.key }, at(50), 1, Date.now());
    await offsets.save({ name: NAME, key: four[1]!.key }, at(50), 1, Date.now());
    await offsets.setPaused({ name: NAME, key: four[2]!.key }, true); // a flag, no offset
    const refused = await adoptSplit(store.executor, store.schema, NAME, unsplit).catch((error: unknown) => error);
    expect(isDataflowError(refused, 'projection/split-changed')).toBe(true);
    expect((refused as Error).message).toContain('slice 512 is covered by no key');
    expect(rangeOfKey('slices-0-1024')).toBeUndefined();
    expect(rangeOfKey('slices-9-3')).toBeUndefined();
    expect(rangeOfKey('shadow-1')).toBeUndefined();
    expect(rangeOfKey('slices-256-511')).toEqual({ min: 256, max: 511 });
  });
});
