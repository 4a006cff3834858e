/**
 * Two projection instances over disjoint slice ranges, on the real Postgres
 * journal, together build exactly the rows one instance builds alone, each
 * with its own offset (issue 12's done-criterion for slices).
 */
import { createActorSystem, supportsEventsBySlices, type NewEvent, type ReadJournal, type SliceQueries } from '@dataflow/core';
import { createPostgresPersistence, pgPoolExecutor } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { pipelineMetricsHourlyProjection, pipelineStatusProjection } from '../read-models/pipeline-read-models.js';
import { exactlyOnce, type EventHandler } from '../runner/projection.js';
import { spawnProjection } from '../runner/projection-actor.js';
import { migrateProjections } from '../schema/projections-schema.js';
import { sliceForPersistenceId, sliceRanges } from './slices.js';

const schema = testNamespace(import.meta.url);
const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 8 });

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const definition = (i: number) => ({ name: `p${i}`, source: { type: 'generator' }, sink: { type: 'console' } });
/** Pipeline ids spread over the slices (ids differing only in a last digit hash to neighbouring slices). */
const pipelineId = (i: number): string => `p${((i * 2654435761) >>> 0).toString(36)}`;

function eventsOf(i: number): NewEvent[] {
  const at = Date.UTC(2026, 0, 1) + i * 1000;
  const events: NewEvent[] = [
    { eventType: 'PipelineCreated', payload: { type: 'PipelineCreated', at, pipelineId: pipelineId(i), definition: definition(i) }, tags: ['pipeline-events'] },
    { eventType: 'PipelineStarted', payload: { type: 'PipelineStarted', at: at + 1 }, tags: ['pipeline-events'] },
  ];
  for (let b = 0; b < 5 + (i % 4); b++) {
    events.push({ eventType: 'BatchProcessed', payload: { type: 'BatchProcessed', at: at + 2 + b * 900_000, batchId: `b${b}`, successCount: 10 + b, failureCount: b % 2, deadLetterCount: 0, processingMs: 1 }, tags: ['pipeline-events'] });
  }
  if (i % 3 === 0) events.push({ eventType: 'PipelineStopped', payload: { type: 'PipelineStopped', at: at + 9_000_000, reason: 'done' }, tags: ['pipeline-events'] });
  return events;
}

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('projections over slices', () => {
  it('two instances over disjoint slice ranges together produce exactly the single-instance rows', { timeout: 90_000 }, async () => {
    const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
    const executor = pgPoolExecutor(pool, { ownsPool: false });
    await migrateProjections(executor, schema);
    for (const table of ['pipeline_status', 'pipeline_metrics_hourly']) await pool.query(`CREATE TABLE "${schema}".${table}_sliced (LIKE "${schema}".${table} INCLUDING ALL)`);
    const store = new ProjectionOffsetStore(executor, schema);
    const ids = Array.from({ length: 40 }, (_, i) => i);
    const ranges = sliceRanges(2);
    // Both ranges must hold pipelines, or the test proves nothing.
    const perRange = ranges.map((r) => ids.filter((i) => { const s = sliceForPersistenceId(`pipeline-${pipelineId(i)}`); return s >= r.min && s <= r.max; }).length);
    expect(perRange.every((n) => n > 0)).toBe(true);

    const system = createActorSystem({ name: 'slices-test' });
    const deps = { queries: persistence.queries, store, executor, pauseCheckMs: 200 };
    const options = { schema, groupSize: 20, groupWithinMs: 20 };
    const projections = [
      pipelineStatusProjection(options),
      pipelineMetricsHourlyProjection(options),
      ...ranges.flatMap((slices) => [
        pipelineStatusProjection({ ...options, table: 'pipeline_status_sliced', slices }),
        pipelineMetricsHourlyProjection({ ...options, table: 'pipeline_metrics_hourly_sliced', slices }),
      ]),
    ];
    try {
      for (const p of projections) spawnProjection(system, p, deps);
      // Events arrive while the projections run: interleaved across pipelines.
      await Promise.all(ids.map((i) => persistence.journal.append(`pipeline-${pipelineId(i)}`, eventsOf(i), { expectedSequenceNr: 0, writerId: 'test' })));
      const total = ids.reduce((sum, i) => sum + eventsOf(i).length, 0);
      const expectedPerInstance = (slices: { min: number; max: number } | undefined) =>
        ids.filter((i) => { const s = sliceForPersistenceId(`pipeline-${pipelineId(i)}`); return slices === undefined || (s >= slices.min && s <= slices.max); }).reduce((sum, i) => sum + eventsOf(i).length, 0);
      await until('every instance to apply its events', async () => {
        for (const p of projections) if ((await store.get(p.id)).eventsApplied !== expectedPerInstance(p.slices)) return false;
        return true;
      });
      expect(expectedPerInstance(undefined)).toBe(total);
      expect(projections.slice(2).map((p) => p.id.key)).toEqual(['slices-0-511', 'slices-0-511', 'slices-512-1023', 'slices-512-1023']);
      for (const table of ['pipeline_status', 'pipeline_metrics_hourly']) {
        const order = table === 'pipeline_status' ? 'pipeline_id' : 'pipeline_id, hour';
        const single = (await pool.query(`SELECT * FROM "${schema}".${table} ORDER BY ${order}`)).rows;
        const sliced = (await pool.query(`SELECT * FROM "${schema}".${table}_sliced ORDER BY ${order}`)).rows;
        expect(single.length).toBeGreaterThanOrEqual(40);
        expect(sliced).toEqual(single);
      }
    } finally {
      await system.terminate();
      await persistence.close();
    }
  });

  it('reads only its slices through eventsBySlices when given the entity type, with the same result as one instance over the tag', { timeout: 90_000 }, async () => {
    const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
    const executor = pgPoolExecutor(pool, { ownsPool: false });
    await migrateProjections(executor, schema);
    await pool.query(`CREATE TABLE "${schema}".seen_events (projection TEXT NOT NULL, persistence_id TEXT NOT NULL, sequence_nr BIGINT NOT NULL, PRIMARY KEY (projection, persistence_id, sequence_nr))`);
    const store = new ProjectionOffsetStore(executor, schema);
    const { queries } = persistence;
    if (!supportsEventsBySlices(queries)) throw new Error('the Postgres read journal should offer eventsBySlices');
    // The sliced instances must not read the whole tag: count what each query is asked for.
    const tagReads: string[] = [];
    const sliceReads: string[] = [];
    const counting: ReadJournal & SliceQueries = {
      eventsByPersistenceId: (...args) => queries.eventsByPersistenceId(...args),
      persistenceIds: (options) => queries.persistenceIds(options),
      eventsByTag: (tag, offset, options) => {
        tagReads.push(tag);
        return queries.eventsByTag(tag, offset, options);
      },
      eventsBySlices: (type, min, max, offset, options) => {
        sliceReads.push(`${type}:${min}-${max}`);
        return queries.eventsBySlices(type, min, max, offset, options);
      },
    };
    const tag = `sliced-${Date.now()}`;
    const projections = [
      exactlyOnce({ name: 'whole', tag, handler: recordInto('whole') }),
      ...sliceRanges(2).map((slices) => exactlyOnce({ name: 'sliced', tag, slices, entityType: 'pipeline', handler: recordInto('sliced') })),
    ];
    const system = createActorSystem({ name: 'slices-query-test' });
    try {
      for (const p of projections) spawnProjection(system, p, { queries: counting, store, executor, pauseCheckMs: 200 });
      const ids = Array.from({ length: 30 }, (_, i) => i + 100);
      // Pipeline events with the tag, untagged ones, and another entity type's tagged events the sliced instances must not see.
      await Promise.all(ids.map((i) => persistence.journal.append(`pipeline-${pipelineId(i)}`, [{ eventType: 'A', payload: i, tags: [tag] }, { eventType: 'B', payload: i, tags: [] }, { eventType: 'C', payload: i, tags: [tag] }], { expectedSequenceNr: 0, writerId: 'test' })));
      await persistence.journal.append('other-1', [{ eventType: 'A', payload: 0, tags: [tag] }], { expectedSequenceNr: 0, writerId: 'test' });
      const count = async (name: string) => Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".seen_events WHERE projection = $1`, [name])).rows[0]?.n);
      await until('both sources to apply their events', async () => (await count('whole')) === ids.length * 2 + 1 && (await count('sliced')) === ids.length * 2);
      const rows = async (name: string) => (await pool.query<{ persistence_id: string; sequence_nr: string }>(`SELECT persistence_id, sequence_nr FROM "${schema}".seen_events WHERE projection = $1 AND persistence_id LIKE 'pipeline-%' ORDER BY 1, 2`, [name])).rows;
      expect(await rows('sliced')).toEqual(await rows('whole'));
      expect(sliceReads.sort()).toEqual(['pipeline:0-511', 'pipeline:512-1023']);
      expect(tagReads).toEqual([tag]);
    } finally {
      await system.terminate();
      await persistence.close();
    }
  });
});

/** A handler that records each event it is given under `name`. */
function recordInto(name: string): EventHandler {
  return async (envelope, tx) => {
    await tx.query(`INSERT INTO "${schema}".seen_events (projection, persistence_id, sequence_nr) VALUES ($1, $2, $3)`, [name, envelope.persistenceId, envelope.sequenceNr]);
  };
}
