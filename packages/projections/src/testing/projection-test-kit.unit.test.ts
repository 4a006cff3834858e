/**
 * The test kit, used on the pipeline read models: hostile delivery (every
 * event twice, ids interleaved) shows which handlers are idempotent. The
 * `pipeline_status` model is not (a duplicated BatchProcessed counts twice):
 * it must run exactly once, which its projection does.
 */
import { describe, expect, it } from 'vitest';
import { atLeastOnce } from '../runner/projection.js';
import { applyPipelineStatus, pipelineMetricsHourlyProjection, pipelineStatusProjection } from '../read-models/pipeline-read-models.js';
import { deliveryOrder, ProjectionTestKit, testEnvelope } from './projection-test-kit.js';

const definition = { name: 'orders', source: { type: 'file' }, sink: { type: 'console' } };
const events = [
  testEnvelope('pipeline-a', 1, { type: 'PipelineCreated', at: 1_700_000_000_000, pipelineId: 'a', definition }),
  testEnvelope('pipeline-a', 2, { type: 'PipelineStarted', at: 1_700_000_001_000 }),
  testEnvelope('pipeline-a', 3, { type: 'BatchProcessed', at: 1_700_000_002_000, batchId: 'a-1', successCount: 90, failureCount: 10, deadLetterCount: 0, processingMs: 5 }),
  testEnvelope('pipeline-b', 1, { type: 'PipelineCreated', at: 1_700_000_000_500, pipelineId: 'b', definition: { ...definition, name: 'clicks' } }),
  testEnvelope('pipeline-b', 2, { type: 'PipelineStarted', at: 1_700_000_001_500 }),
  testEnvelope('pipeline-a', 4, { type: 'BatchProcessed', at: 1_700_003_700_000, batchId: 'a-2', successCount: 50, failureCount: 0, deadLetterCount: 0, processingMs: 5 }),
  testEnvelope('pipeline-b', 3, { type: 'PipelinePaused', at: 1_700_000_003_000, reason: 'maintenance' }),
];

describe('ProjectionTestKit', () => {
  it('keeps each id in order while interleaving ids, and duplicates when asked', () => {
    const order = deliveryOrder(events, { shuffle: true, duplicates: true, seed: 7 });
    expect(order).toHaveLength(events.length * 2);
    for (const id of ['pipeline-a', 'pipeline-b']) {
      const seqs = order.filter((e) => e.persistenceId === id).map((e) => e.sequenceNr);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
  });

  it('given pipeline events, then pipeline_status and pipeline_metrics_hourly rows (in any interleaving of ids)', async () => {
    const kit = await ProjectionTestKit.create();
    try {
      await kit.run(pipelineStatusProjection({ schema: kit.schema }), events, { shuffle: true, seed: 3, groupSize: 2 });
      await kit.run(pipelineMetricsHourlyProjection({ schema: kit.schema }), events, { shuffle: true, seed: 5, groupSize: 3 });
      expect(await kit.query('SELECT pipeline_id, pipeline_name, status, total_records, total_batches, total_failures FROM dataflow.pipeline_status ORDER BY pipeline_id')).toEqual([
        { pipeline_id: 'a', pipeline_name: 'orders', status: 'running', total_records: 140, total_batches: 2, total_failures: 10 },
        { pipeline_id: 'b', pipeline_name: 'clicks', status: 'paused', total_records: 0, total_batches: 0, total_failures: 0 },
      ]);
      expect(await kit.query('SELECT pipeline_id, hour, records_processed, avg_batch_size, error_rate FROM dataflow.pipeline_metrics_hourly ORDER BY hour')).toEqual([
        { pipeline_id: 'a', hour: new Date('2023-11-14T22:00:00Z'), records_processed: 90, avg_batch_size: 100, error_rate: 0.1 },
        { pipeline_id: 'a', hour: new Date('2023-11-14T23:00:00Z'), records_processed: 50, avg_batch_size: 50, error_rate: 0 },
      ]);
    } finally {
      await kit.close();
    }
  });

  it('drops the status row of a deleted pipeline and starts a re-created one from zero, keeping its hourly history', async () => {
    const kit = await ProjectionTestKit.create();
    try {
      const lifecycle = [
        ...events,
        testEnvelope('pipeline-a', 5, { type: 'PipelineStopped', at: 1_700_003_800_000, reason: 'done', finalMetrics: {} }),
        testEnvelope('pipeline-a', 6, { type: 'OffsetsReset', at: 1_700_003_800_500, sourceOffset: null, previous: 140 }),
        testEnvelope('pipeline-a', 7, { type: 'PipelineDeleted', at: 1_700_003_801_000 }),
      ];
      await kit.run(pipelineStatusProjection({ schema: kit.schema }), lifecycle, { shuffle: true, seed: 11, groupSize: 2 });
      await kit.run(pipelineMetricsHourlyProjection({ schema: kit.schema }), lifecycle, { groupSize: 4 });
      expect(await kit.query('SELECT pipeline_id FROM dataflow.pipeline_status ORDER BY pipeline_id')).toEqual([{ pipeline_id: 'b' }]);
      expect(await kit.query(`SELECT count(*)::int AS hours FROM dataflow.pipeline_metrics_hourly WHERE pipeline_id = 'a'`)).toEqual([{ hours: 2 }]);
      await kit.run(pipelineStatusProjection({ schema: kit.schema }), [
        ...lifecycle,
        testEnvelope('pipeline-a', 8, { type: 'PipelineCreated', at: 1_700_003_900_000, pipelineId: 'a', definition: { ...definition, name: 'orders-2' } }),
      ]);
      expect(await kit.query(`SELECT pipeline_name, status, total_records FROM dataflow.pipeline_status WHERE pipeline_id = 'a'`)).toEqual([{ pipeline_name: 'orders-2', status: 'configured', total_records: 0 }]);
    } finally {
      await kit.close();
    }
  });

  it('shows that a counting handler is not idempotent under duplicate delivery (why the read models run exactly once)', async () => {
    const kit = await ProjectionTestKit.create();
    try {
      const naive = atLeastOnce({ name: 'naive-status', tag: 'pipeline-events', handler: (e, db) => applyPipelineStatus(db, 'dataflow.pipeline_status', [e]) });
      await kit.run(naive, events, { duplicates: true });
      const [a] = await kit.query<{ total_batches: number }>(`SELECT total_batches FROM dataflow.pipeline_status WHERE pipeline_id = 'a'`);
      expect(a?.total_batches).toBe(4);
    } finally {
      await kit.close();
    }
  });
});
