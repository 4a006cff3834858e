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
    const result = await runPipelineBench({ postgresUrl, schema, records: 5_000, batchSize: 500, pgliteRecords: 2_000, warmupRecords: 1_000, rounds: 2 });

    expect(result.records).toBe(5_000);
    // The generator's "test" records (one in four values) are filtered out by both variants alike.
    expect(result.written).toBeGreaterThan(3_000);
    expect(result.written).toBeLessThan(4_500);
    expect(result.pipelineRecordsPerSec).toBeGreaterThan(0);
    expect(result.loopRecordsPerSec).toBeGreaterThan(0);
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
