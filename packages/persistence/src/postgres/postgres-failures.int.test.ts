/** Driver failures reach callers as the SPI's typed errors, with `retriable` and `cause`. */
import { isDataflowError, type DataflowError } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createPostgresPersistence } from './postgres-persistence.js';

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
    const persistence = await createPostgresPersistence({ pool, schema: 'unreachable' });
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

  it('reports a missing schema as permanent errors', async () => {
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 2 });
    const persistence = await createPostgresPersistence({ pool, schema: testNamespace(import.meta.url, 'missing') });
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
      expect(write.message).toContain('apply sql/0001-journal.sql again');
    } finally {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await persistence.close();
    }
  });
});
