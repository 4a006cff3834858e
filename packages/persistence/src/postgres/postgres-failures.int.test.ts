/** Driver failures reach callers as the SPI's typed errors, with `retriable` and `cause`. */
import { isDataflowError, type DataflowError } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { pgPoolExecutor } from './pg-pool-executor.js';
import { createPostgresPersistence } from './postgres-persistence.js';
import { migratePostgres, migrationStatements, postgresMigrations } from './postgres-schema.js';

async function failure(promise: Promise<unknown>): Promise<DataflowError> {
  try {
    await promise;
  } catch (error) {
    if (isDataflowError(error)) return error;
    throw error;
  }
  throw new Error('expected a failure');
}

describe('Postgres store failures', () => {
  it('reports an unreachable server as retriable write, read and snapshot errors', async () => {
    const pool = new pg.Pool({ host: '127.0.0.1', port: 1, user: 'postgres', connectionTimeoutMillis: 2_000 });
    // The schema check at start already reaches the server: a retriable read error.
    const atStart = await failure(createPostgresPersistence({ pool: new pg.Pool({ host: '127.0.0.1', port: 1, user: 'postgres' }), schema: 'unreachable' }));
    expect([atStart.tag, atStart.retriable]).toEqual(['journal/read-failed', true]);
    const persistence = await createPostgresPersistence({ pool, schema: 'unreachable', checkSchema: false });
    try {
      const write = await failure(persistence.journal.append('p', [{ eventType: 'E', payload: 1 }], { expectedSequenceNr: 0, writerId: 'w' }));
      expect(write.tag).toBe('journal/write-failed');
      expect(write.retriable).toBe(true);
      expect(write.cause).toBeInstanceOf(Error);
      const read = await failure(persistence.journal.highestSequenceNr('p'));
      expect([read.tag, read.retriable]).toEqual(['journal/read-failed', true]);
      const snapshot = await failure(persistence.snapshots.loadLatest('p'));
      expect([snapshot.tag, snapshot.retriable]).toEqual(['snapshot/failed', true]);
    } finally {
      await persistence.close();
    }
  });

  it('refuses at start a schema that misses migrations, naming the command to run', async () => {
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 2 });
    const schema = testNamespace(import.meta.url, 'unmigrated');
    try {
      const missing = await failure(createPostgresPersistence({ pool, ownsPool: false, schema }));
      expect([missing.tag, missing.retriable]).toEqual(['schema/version-mismatch', false]);
      expect(missing.message).toContain(`run \`dataflow migrate --journal postgres --schema ${schema}\``);
      expect(missing.message).toContain('is at version 0');
      // A schema made by the release before migrations (0001 applied by hand, nothing recorded) is too old too.
      const [first] = await postgresMigrations();
      if (first === undefined) throw new Error('no migrations');
      for (const sql of migrationStatements(first, schema)) await pool.query(sql);
      const older = await failure(createPostgresPersistence({ pool, ownsPool: false, schema }));
      expect(older.message).toMatch(/is at version 0, this release needs version \d+ \(missing 0001-journal\.sql, 0002-parallel-appends\.sql/);
      // migratePostgres brings it up to date (keeping what 0001 made); a second run applies nothing.
      expect(await migratePostgres(pgPoolExecutor(pool, { ownsPool: false }), schema)).toEqual({ applied: [1, 2, 3], version: 3 });
      expect(await migratePostgres(pgPoolExecutor(pool, { ownsPool: false }), schema)).toEqual({ applied: [], version: 3 });
      const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema });
      await persistence.journal.append('p', [{ eventType: 'E', payload: 1 }], { expectedSequenceNr: 0, writerId: 'w' });
      await persistence.close();
      // An applied migration whose statements changed is refused (forward-only).
      await pool.query(`UPDATE "${schema}".schema_migrations SET checksum = 'edited' WHERE version = 2`);
      const edited = await failure(createPostgresPersistence({ pool, ownsPool: false, schema }));
      expect(edited.message).toContain('0002-parallel-appends.sql was changed after it was applied');
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    }
  });

  it('reports a missing schema as permanent errors', async () => {
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 2 });
    const persistence = await createPostgresPersistence({ pool, schema: testNamespace(import.meta.url, 'missing'), checkSchema: false });
    try {
      const write = await failure(persistence.journal.append('p', [{ eventType: 'E', payload: 1 }], { expectedSequenceNr: 0, writerId: 'w' }));
      expect([write.tag, write.retriable]).toEqual(['journal/write-failed', false]);
      expect((write.cause as { code?: string }).code).toBe('3F000'); // invalid_schema_name
      const read = await failure(persistence.journal.highestSequenceNr('p'));
      expect([read.tag, read.retriable]).toEqual(['journal/read-failed', false]);
      expect((read.cause as { code?: string }).code).toBe('42P01'); // undefined_table
    } finally {
      await persistence.close();
    }
  });

  it('says how to fix a schema created before append_events existed', async () => {
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 2 });
    const schema = testNamespace(import.meta.url, 'older');
    const persistence = await createPostgresPersistence({ pool, schema, ensureSchema: true });
    try {
      await pool.query(`DROP FUNCTION "${schema}".append_events`);
      const write = await failure(persistence.journal.append('p', [{ eventType: 'E', payload: 1 }], { expectedSequenceNr: 0, writerId: 'w' }));
      expect([write.tag, write.retriable]).toEqual(['journal/write-failed', false]);
      expect((write.cause as { code?: string }).code).toBe('42883'); // undefined_function
      expect(write.message).toContain('run `dataflow migrate --journal postgres`');
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await persistence.close();
    }
  });
});
