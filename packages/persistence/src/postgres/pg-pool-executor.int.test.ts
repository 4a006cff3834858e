/**
 * `pgPoolExecutor` on the real Postgres: many executors over one pool (a node
 * gives one pool to all its Postgres sinks) add one error listener per
 * connection, not one per executor (eleven made Node warn of a leak), and
 * each statement runs with its executor's own session timeouts.
 */
import { serviceSettings } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { pgPoolExecutor } from './pg-pool-executor.js';

const pools: pg.Pool[] = [];
afterAll(async () => {
  for (const pool of pools) await pool.end();
});

describe('pgPoolExecutor', () => {
  it('adds one error listener per connection however many executors share the pool, and applies each executor’s timeouts', async () => {
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 1 });
    pools.push(pool);
    const executors = Array.from({ length: 15 }, (_, i) => pgPoolExecutor(pool, { ownsPool: false, statementTimeoutMs: 1_001 + i }));
    for (const [i, executor] of executors.entries()) {
      const [row] = await executor.query<{ statement_timeout: string }>('SHOW statement_timeout');
      expect(row?.statement_timeout).toBe(`${1_001 + i}ms`);
    }
    const client = await pool.connect();
    try {
      // pg's pool keeps one listener of its own on an idle client; ours is the one more.
      expect(client.listenerCount('error')).toBeLessThanOrEqual(2);
    } finally {
      client.release();
    }
  });
});
