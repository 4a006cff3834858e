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

  it('reports missing tables as permanent errors', async () => {
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 2 });
    const persistence = await createPostgresPersistence({ pool, schema: testNamespace(import.meta.url, 'missing') });
    try {
      const write = await failure(persistence.journal.append('p', [{ eventType: 'E', payload: 1 }], { expectedSequenceNr: 0, writerId: 'w' }));
      expect([write.tag, write.retriable]).toEqual(['journal/write-failed', false]);
      expect((write.cause as { code?: string }).code).toBe('42P01');
    } finally {
      await persistence.close();
    }
  });
});
