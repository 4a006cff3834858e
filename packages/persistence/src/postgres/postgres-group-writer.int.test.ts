/**
 * Group commit: appends made while a write is in flight share one
 * transaction, yet each succeeds or fails on its own.
 */
import { isConcurrencyConflict, isDataflowError, JsonSerializer, type AppendResult } from '@dataflow/core';
import { serviceSettings, testNamespace, uniqueName } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgPoolExecutor } from './pg-pool-executor.js';
import { createPostgresPersistence, createSqlPersistence, type PostgresPersistence } from './postgres-persistence.js';
import type { SqlExecutor } from './sql-executor.js';

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
        // The group's append_events call waits on the foreign transaction's uncommitted key.
        const { rows } = await pool.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
           WHERE l.locktype = 'transactionid' AND NOT l.granted AND a.query LIKE '%FROM "' || $1 || '".append_events(%'`,
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

describe('Postgres append_events', () => {
  it('writes a group of appends in one statement, outside an explicit transaction', async () => {
    const calls: string[] = [];
    const inner = pgPoolExecutor(pool, { ownsPool: false });
    const counting: SqlExecutor = {
      query: (sql, params, options) => {
        calls.push(sql);
        return inner.query(sql, params, options);
      },
      transaction: (work) => {
        calls.push('transaction');
        return inner.transaction(work);
      },
      close: () => inner.close(),
    };
    const own = await createSqlPersistence(counting, { schema });
    calls.length = 0; // the schema version check at start
    try {
      const [a, b] = [uniqueName('one-statement-a'), uniqueName('one-statement-b')];
      const events = [1, 2, 3].map((n) => ({ eventType: 'E', payload: n, tags: ['t'] }));
      // The first goes alone; the other three queue behind it and share the second statement.
      const results = await Promise.all(
        [own.journal.append(a, events, { expectedSequenceNr: 0, writerId: 'w' }), own.journal.append(b, events, { expectedSequenceNr: 0, writerId: 'w' }),
          own.journal.append(a, events, { expectedSequenceNr: 3, writerId: 'w' }), own.journal.append(b, events, { expectedSequenceNr: 0, writerId: 'w' })].map(outcome),
      );
      expect(results).toEqual(['ok 3', 'ok 3', 'ok 6', 'conflict']);
      expect(calls).toHaveLength(2);
      for (const sql of calls) expect(sql).toMatch(/^SELECT append_index, highest_sequence_nr FROM ".+"\.append_events\(/);
    } finally {
      await own.close();
    }
  });

  it('reports the highest stored sequence number with each refused append of a group', async () => {
    const pid = uniqueName('refused');
    await append(pid, 0);
    await append(pid, 1);
    const refused = await Promise.all([append(pid, 1), append(pid, 5), append(pid, 2)].map((p) => p.then(() => undefined, (e: unknown) => e)));
    expect(refused.map((e) => (isConcurrencyConflict(e) ? e.actualSequenceNr : e))).toEqual([2, 2, undefined]);
  });

  it('refuses per-append and per-event arrays that do not match', async () => {
    const call = pool.query(`SELECT * FROM "${schema}".append_events($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, [
      ['p'], [0], [2], ['w'], [0], ['E'], [1], ['json'], [Buffer.from('1')], JSON.stringify([[]]),
    ]);
    await expect(call).rejects.toMatchObject({ code: '22023' });
  });
});

async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 5));
}
