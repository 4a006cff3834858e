/**
 * Migration 3 (eventsBySlices) on a real Postgres: the SQL slice function agrees
 * with `sliceForPersistenceId` of core (Java's String.hashCode, surrogate pairs
 * and negative hashes included), rows written before the migration get their
 * entity type and slice from its UPDATE, and the query reads by the index.
 */
import { entityTypeOf, sliceForPersistenceId, supportsEventsBySlices } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { runMigrations } from '../migrations/migrations.js';
import { pgPoolExecutor } from './pg-pool-executor.js';
import { createPostgresPersistence } from './postgres-persistence.js';
import { postgresMigrationTarget, postgresMigrations } from './postgres-schema.js';

const schema = testNamespace(import.meta.url);
const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 4 });

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const ids = ['pipeline-orders', 'ü-ñ-😀', 'coordinator', 'pipeline-a-b', '-x', 'x', ...Array.from({ length: 200 }, (_, i) => `pipeline-${(i * 2654435761) >>> 0}`)];

describe('Postgres eventsBySlices (migration 3)', () => {
  it('fills entity type and slice of rows written before it, as core computes them, and reads by the index', { timeout: 60_000 }, async () => {
    const executor = pgPoolExecutor(pool, { ownsPool: false });
    const migrations = await postgresMigrations();
    const target = postgresMigrationTarget(executor, schema);
    await runMigrations(target, migrations.slice(0, 2));
    // Written under migration 2 by its append function: no slice columns yet.
    const n = ids.length;
    await pool.query(`SELECT * FROM "${schema}".append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, [
      ids,
      ids.map(() => 0),
      ids.map(() => 1),
      ids.map(() => 'w'),
      ids.map(() => Date.now()),
      ids.map(() => 'E'),
      ids.map(() => 1),
      ids.map(() => 'json'),
      ids.map((pid) => Buffer.from(JSON.stringify(pid))),
      JSON.stringify(Array.from({ length: n }, () => [])),
    ]);

    expect(await runMigrations(target, migrations)).toEqual({ applied: [3], version: 3 });
    const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
    try {
      // Written after it: filled at insert time.
      await persistence.journal.append('pipeline-late', [{ eventType: 'E', payload: 'late', tags: [] }], { expectedSequenceNr: 0, writerId: 'w' });
      const rows = (await pool.query<{ persistence_id: string; entity_type: string; slice: number }>(`SELECT persistence_id, entity_type, slice FROM "${schema}".event_journal`)).rows;
      expect(rows).toHaveLength(ids.length + 1);
      for (const row of rows) {
        expect([row.persistence_id, row.entity_type, row.slice]).toEqual([row.persistence_id, entityTypeOf(row.persistence_id), sliceForPersistenceId(row.persistence_id)]);
      }
      expect(rows.find((r) => r.persistence_id === 'ü-ñ-😀')?.slice).toBe(528);

      const { queries } = persistence;
      if (!supportsEventsBySlices(queries)) throw new Error('the Postgres read journal should offer eventsBySlices');
      const got: string[] = [];
      for await (const e of queries.eventsBySlices('pipeline', 0, 511)) got.push(e.persistenceId);
      const expected = [...ids, 'pipeline-late'].filter((pid) => entityTypeOf(pid) === 'pipeline' && sliceForPersistenceId(pid) <= 511);
      expect(got.sort()).toEqual(expected.sort());

      await pool.query(`ANALYZE "${schema}".event_journal`);
      // A rare entity type among many rows: the planner reads the slice index, not the whole ordering range.
      const plan = (await pool.query<{ 'QUERY PLAN': string }>(`EXPLAIN SELECT ordering FROM "${schema}".event_journal WHERE entity_type = 'coordinator' AND slice BETWEEN 0 AND 1023 AND ordering > 0 AND ordering <= 100000 ORDER BY ordering LIMIT 10`)).rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).toMatch(/event_journal_slice_idx/);
    } finally {
      await persistence.close();
    }
  });
});
