/**
 * Rebuild into a shadow table and swap, on the real Postgres journal: the
 * live pipeline_metrics_hourly projection runs while events are appended; the
 * rebuild replays from the start into the shadow, swaps, and the table holds
 * exactly the rows the incremental projection had built. A reader polling
 * the table during the rebuild never sees fewer rows than before (never a
 * half-built table), and progress is reported up to the total.
 */
import { createActorSystem, type NewEvent } from '@dataflow/core';
import { createPostgresPersistence, pgPoolExecutor } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { pipelineMetricsHourlyProjection } from '../read-models/pipeline-read-models.js';
import { spawnProjection } from '../runner/projection-actor.js';
import { migrateProjections } from '../schema/projections-schema.js';
import { rebuildReadModel, type RebuildProgress } from './rebuild.js';

const schema = testNamespace(import.meta.url);
const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 6 });

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const batch = (i: number): NewEvent => ({
  eventType: 'BatchProcessed',
  payload: { type: 'BatchProcessed', at: Date.UTC(2026, 0, 1) + i * 600_000, batchId: `b${i}`, successCount: 10 + (i % 7), failureCount: i % 5 === 0 ? 2 : 0, deadLetterCount: 0, processingMs: 3 },
  tags: ['pipeline-events'],
});

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('rebuildReadModel', () => {
  it('replays into a shadow table and swaps: identical rows, never a half-built table, progress to the total', { timeout: 120_000 }, async () => {
    const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
    const executor = pgPoolExecutor(pool, { ownsPool: false });
    await migrateProjections(executor, schema);
    const store = new ProjectionOffsetStore(executor, schema);
    const seq = [0, 0, 0];
    const append = async (from: number, count: number) => {
      for (let i = from; i < from + count; i++) {
        const p = i % 3;
        await persistence.journal.append(`pipeline-p${p}`, [batch(i)], { expectedSequenceNr: seq[p] ?? 0, writerId: 'test' });
        seq[p] = (seq[p] ?? 0) + 1;
      }
    };
    await append(0, 600);
    const live = pipelineMetricsHourlyProjection({ schema, groupSize: 50, groupWithinMs: 20 });
    const system = createActorSystem({ name: 'rebuild-test' });
    const ref = spawnProjection(system, live, { queries: persistence.queries, store, executor, pauseCheckMs: 200 });
    try {
      await until('the live projection to catch up', async () => (await store.get(live.id)).eventsApplied === 600);
      const before = await pool.query(`SELECT * FROM "${schema}".pipeline_metrics_hourly ORDER BY pipeline_id, hour`);
      expect(before.rows.length).toBeGreaterThan(10);

      let minRows = Number.POSITIVE_INFINITY;
      let reading = true;
      const reader = (async () => {
        while (reading) {
          const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".pipeline_metrics_hourly`);
          minRows = Math.min(minRows, Number(rows[0]?.n));
        }
      })();
      const progress: RebuildProgress[] = [];
      const replayed = await rebuildReadModel({
        queries: persistence.queries,
        store,
        executor,
        schema,
        table: 'pipeline_metrics_hourly',
        live,
        shadow: (table, key) => pipelineMetricsHourlyProjection({ schema, table, key, groupSize: 50, groupWithinMs: 20 }),
        onProgress: (p) => progress.push(p),
      });
      reading = false;
      await reader;
      expect(replayed).toBe(600);
      expect(minRows).toBeGreaterThanOrEqual(before.rows.length);
      expect(progress.at(-1)).toEqual({ done: 600, total: 600 });
      expect((await pool.query(`SELECT * FROM "${schema}".pipeline_metrics_hourly ORDER BY pipeline_id, hour`)).rows).toEqual(before.rows);

      // The live projection goes on from the swapped offset: new events land in the rebuilt table once, not twice.
      ref.tell({ type: 'start' });
      await append(600, 30);
      await until('the live projection to apply the new events', async () => (await store.get(live.id)).eventsApplied === 630);
      const totals = await pool.query<{ r: string; b: string }>(`SELECT sum(records_processed) AS r, sum(batches) AS b FROM "${schema}".pipeline_metrics_hourly`);
      let records = 0;
      for (let i = 0; i < 630; i++) records += 10 + (i % 7);
      expect({ records: Number(totals.rows[0]?.r), batches: Number(totals.rows[0]?.b) }).toEqual({ records, batches: 630 });
    } finally {
      await system.terminate();
      await persistence.close();
    }
  });
});
