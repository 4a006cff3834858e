/**
 * The slices done-criterion of issue 12 on a Cassandra journal (read models
 * in Postgres): two instances of each pipeline read model over disjoint slice
 * ranges read their slices through `eventsBySlices` (never the whole tag) and
 * together build exactly the rows one instance builds from the tag.
 */
import { createActorSystem, supportsEventsBySlices, type NewEvent, type ReadJournal, type SliceQueries } from '@dataflow/core';
import { createCassandraPersistence, pgPoolExecutor } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { pipelineMetricsHourlyProjection, pipelineStatusProjection } from '../read-models/pipeline-read-models.js';
import { spawnProjection } from '../runner/projection-actor.js';
import { migrateProjections } from '../schema/projections-schema.js';
import { sliceForPersistenceId, sliceRanges } from './slices.js';

const services = serviceSettings();
const schema = testNamespace(import.meta.url);
const pool = new pg.Pool({ connectionString: services.postgresUrl, max: 8 });

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const definition = (i: number) => ({ name: `p${i}`, source: { type: 'generator' }, sink: { type: 'console' } });
/** Pipeline ids spread over the slices. */
const pipelineId = (i: number): string => `c${((i * 2654435761) >>> 0).toString(36)}`;

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

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('projections over slices on a Cassandra journal', () => {
  it('two instances over disjoint slice ranges read by eventsBySlices and together produce exactly the single-instance rows', { timeout: 120_000 }, async () => {
    // The keyspace is the file's own for this run (created here; the package has no Cassandra driver to drop it with).
    const persistence = await createCassandraPersistence({
      contactPoints: [...services.cassandraContactPoints],
      localDataCenter: services.cassandraLocalDataCenter,
      keyspace: testNamespace(import.meta.url),
      autoCreate: true,
      eventualConsistencyDelayMs: 400,
      pollIntervalMs: 100,
    });
    const executor = pgPoolExecutor(pool, { ownsPool: false });
    await migrateProjections(executor, schema);
    for (const table of ['pipeline_status', 'pipeline_metrics_hourly']) await pool.query(`CREATE TABLE "${schema}".${table}_sliced (LIKE "${schema}".${table} INCLUDING ALL)`);
    const store = new ProjectionOffsetStore(executor, schema);
    const { queries } = persistence;
    if (!supportsEventsBySlices(queries)) throw new Error('the Cassandra read journal should offer eventsBySlices');
    // Which query each instance asks for.
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
    const ids = Array.from({ length: 40 }, (_, i) => i);
    const ranges = sliceRanges(2);
    const inRange = (i: number, slices: { min: number; max: number } | undefined): boolean => {
      const s = sliceForPersistenceId(`pipeline-${pipelineId(i)}`);
      return slices === undefined || (s >= slices.min && s <= slices.max);
    };
    // Both ranges must hold pipelines, or the test proves nothing.
    expect(ranges.every((r) => ids.some((i) => inRange(i, r)))).toBe(true);

    const system = createActorSystem({ name: 'slices-cassandra-test' });
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
      for (const p of projections) spawnProjection(system, p, { queries: counting, store, executor, pauseCheckMs: 200 });
      // Events arrive while the projections run: interleaved across pipelines.
      await Promise.all(ids.map((i) => persistence.journal.append(`pipeline-${pipelineId(i)}`, eventsOf(i), { expectedSequenceNr: 0, writerId: 'test' })));
      const expectedPerInstance = (slices: { min: number; max: number } | undefined): number =>
        ids.filter((i) => inRange(i, slices)).reduce((sum, i) => sum + eventsOf(i).length, 0);
      await until('every instance to apply its events', async () => {
        for (const p of projections) if ((await store.get(p.id)).eventsApplied !== expectedPerInstance(p.slices)) return false;
        return true;
      });
      expect(sliceReads.sort()).toEqual(['pipeline:0-511', 'pipeline:0-511', 'pipeline:512-1023', 'pipeline:512-1023']);
      expect(tagReads).toEqual(['pipeline-events', 'pipeline-events']);
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
});
