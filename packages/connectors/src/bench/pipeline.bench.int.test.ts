/**
 * Keeps the pipeline benchmark runnable: a small run against the test
 * Postgres compares like with like (both variants write the same records) and
 * leaves no schema behind.
 */
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { runPipelineBench } from './pipeline.bench.js';

describe('runPipelineBench', () => {
  it('runs the pipeline and the plain loop over the same records and drops its schema', { timeout: 120_000 }, async () => {
    const postgresUrl = serviceSettings().postgresUrl;
    const schema = testNamespace(import.meta.url);
    const result = await runPipelineBench({ postgresUrl, schema, batchSizes: [500, 50], minSideMs: 20, minRecords: 2_000, pgliteRecords: 2_000, warmupRecords: 1_000, rounds: 2 });

    expect(result.rows.map((r) => r.batchSize)).toEqual([500, 50]);
    for (const row of result.rows) {
      expect(row.records).toBeGreaterThanOrEqual(2_000);
      // The generator's "test" records (one in four values) are filtered out by both variants alike.
      expect(row.written).toBeGreaterThan(row.records * 0.6);
      expect(row.written).toBeLessThan(row.records * 0.9);
      expect(row.ratios).toHaveLength(2);
      expect(row.pipelineRecordsPerSec).toBeGreaterThan(0);
      expect(row.loopRecordsPerSec).toBeGreaterThan(0);
    }
    expect(result.pgliteRecordsPerSec).toBeGreaterThan(0);
    const pool = new pg.Pool({ connectionString: postgresUrl, max: 1 });
    try {
      const left = await pool.query('SELECT schema_name FROM information_schema.schemata WHERE schema_name = $1', [schema]);
      expect(left.rows).toEqual([]);
    } finally {
      await pool.end();
    }
  });
});
