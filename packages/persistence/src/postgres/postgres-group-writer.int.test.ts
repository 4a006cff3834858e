/**
 * Group commit: appends made while a write is in flight share one
 * transaction, yet each succeeds or fails on its own.
 */
import { isConcurrencyConflict, isDataflowError, JsonSerializer, type AppendResult } from '@dataflow/core';
import { serviceSettings, testNamespace, uniqueName } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresPersistence, type PostgresPersistence } from './postgres-persistence.js';

const schema = testNamespace(import.meta.url);
let pool: pg.Pool;
let persistence: PostgresPersistence;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 10 });
  persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
});

afterAll(async () => {
  await persistence.close();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const append = (pid: string, expectedSequenceNr: number, payload: unknown = expectedSequenceNr): Promise<AppendResult> =>
  persistence.journal.append(pid, [{ eventType: 'E', payload }], { expectedSequenceNr, writerId: 'w' });

async function outcome(promise: Promise<AppendResult>): Promise<string> {
  try {
    return `ok ${(await promise).lastSequenceNr}`;
  } catch (error) {
    if (isConcurrencyConflict(error)) return 'conflict';
    throw error;
  }
}

describe('Postgres group commit', () => {
  it('accepts pipelined appends to one id and refuses the stale one, within one group', async () => {
    const pid = uniqueName('pipelined');
    const results = await Promise.all([append(pid, 0), append(pid, 1), append(pid, 2), append(pid, 1), append(pid, 3)].map(outcome));
    expect(results).toEqual(['ok 1', 'ok 2', 'ok 3', 'conflict', 'ok 4']);
    const stored = [];
    for await (const e of persistence.journal.replay(pid, 1)) stored.push(e.payload);
    expect(stored).toEqual([0, 1, 2, 3]);
  });

  it('retries a group one by one when a writer outside the journal takes a sequence number', async () => {
    const [first, raced, bystander] = [uniqueName('first'), uniqueName('raced'), uniqueName('bystander')];
    const foreign = await pool.connect();
    try {
      // Another process inserts `raced` #1 without the append lock and has not committed yet.
      await foreign.query('BEGIN');
      const payload = Buffer.from(new JsonSerializer().serialize('foreign', { eventType: 'E', schemaVersion: 1 }));
      await foreign.query(
        `INSERT INTO "${schema}".event_journal (persistence_id, sequence_nr, writer_id, event_type, schema_version, serializer_id, payload, written_at)
         VALUES ($1, 1, 'foreign', 'E', 1, 'json', $2, 0)`,
        [raced, payload],
      );
      // `first` goes alone; `raced` and `bystander` queue behind it and form the next group.
      const results = [append(first, 0), append(raced, 0), append(bystander, 0)].map(outcome);
      await until(async () => {
        // The group's INSERT waits on the foreign transaction's uncommitted key.
        const { rows } = await pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'transactionid' AND NOT l.granted AND a.query LIKE 'WITH inserted AS (INSERT INTO "' || $1 || '"%'`,
          [schema],
        );
        return Number(rows[0]?.n ?? 0) > 0;
      });
      await foreign.query('COMMIT');
      // Without the one-by-one retry the bystander would fail with the group.
      expect(await Promise.all(results)).toEqual(['ok 1', 'conflict', 'ok 1']);
    } finally {
      foreign.release();
    }
    const highest = await Promise.all([first, raced, bystander].map((pid) => persistence.journal.highestSequenceNr(pid)));
    expect(highest).toEqual([1, 1, 1]);
  });

  it('fails only the append Postgres refuses when it shares a group with others', async () => {
    const [before, good] = [uniqueName('before'), uniqueName('good')];
    const bad = `${uniqueName('bad')}\u0000nul`;
    const results = [append(before, 0), append(bad, 0), append(good, 0)].map((p) => p.then((r) => `ok ${r.lastSequenceNr}`, (e: unknown) => e));
    const [first, refused, third] = await Promise.all(results);
    expect([first, third]).toEqual(['ok 1', 'ok 1']);
    expect(isDataflowError(refused, 'journal/write-failed')).toBe(true);
    expect((refused as { retriable: boolean }).retriable).toBe(false);
    expect(await persistence.journal.highestSequenceNr(good)).toBe(1);
  });
});

async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 5));
}
