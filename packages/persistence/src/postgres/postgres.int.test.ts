/** The foundation's Postgres round trip: the test service answers, a file-owned schema works, and goes away. */
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

describe('Postgres service', () => {
  const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 2 });
  const schema = testNamespace(import.meta.url);
  afterAll(async () => {
    await pool.end();
  });

  it('creates a schema, inserts, selects and drops it', async () => {
    await pool.query(`CREATE SCHEMA "${schema}"`);
    try {
      await pool.query(`CREATE TABLE "${schema}".round_trip (id SERIAL PRIMARY KEY, body TEXT NOT NULL, data BYTEA NOT NULL)`);
      await pool.query(`INSERT INTO "${schema}".round_trip (body, data) VALUES ($1, $2), ($3, $4)`, ['first 😀', Buffer.from([0, 1, 2]), 'second', Buffer.from([255])]);
      const { rows } = await pool.query<{ body: string; data: Buffer }>(`SELECT body, data FROM "${schema}".round_trip ORDER BY id`);
      expect(rows.map((r) => [r.body, [...r.data]])).toEqual([
        ['first 😀', [0, 1, 2]],
        ['second', [255]],
      ]);
    } finally {
      await pool.query(`DROP SCHEMA "${schema}" CASCADE`);
    }
    const { rows } = await pool.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema]);
    expect(rows).toHaveLength(0);
  });
});
