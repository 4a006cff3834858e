/** deleteTo removes rows (the journal does not grow forever nor keep deleted data) and keeps the highest sequence number. */
import { NoOffset } from '@dataflow/core';
import { serviceSettings, testNamespace, uniqueName } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresPersistence, type PostgresPersistence } from './postgres-persistence.js';

const schema = testNamespace(import.meta.url);
let pool: pg.Pool;
let persistence: PostgresPersistence;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 4 });
  persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
});

afterAll(async () => {
  await persistence.close();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

async function rowsOf(pid: string): Promise<{ seq: number; deleted: boolean; bytes: number }[]> {
  const { rows } = await pool.query<{ sequence_nr: string; deleted: boolean; bytes: number }>(
    `SELECT sequence_nr, deleted, octet_length(payload) AS bytes FROM "${schema}".event_journal WHERE persistence_id = $1 ORDER BY sequence_nr`,
    [pid],
  );
  return rows.map((r) => ({ seq: Number(r.sequence_nr), deleted: r.deleted, bytes: r.bytes }));
}

async function tagRows(tag: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schema}".event_tag WHERE tag = $1`, [tag]);
  return Number(rows[0]?.n ?? 0);
}

describe('Postgres deleteTo', () => {
  it('removes the rows and tag rows of deleted events, keeping only the first and highest as empty tombstones', async () => {
    const pid = uniqueName('delete-rows');
    const tag = uniqueName('delete-tag');
    await persistence.journal.append(pid, Array.from({ length: 10 }, (_, i) => ({ eventType: 'E', payload: { i, data: 'x'.repeat(100) }, tags: [tag] })), {
      expectedSequenceNr: 0,
      writerId: 'w',
    });
    await persistence.journal.deleteTo(pid, 6);
    expect(await rowsOf(pid)).toEqual([
      { seq: 1, deleted: true, bytes: 0 },
      ...[7, 8, 9, 10].map((seq) => ({ seq, deleted: false, bytes: expect.any(Number) as number })),
    ]);
    expect(await tagRows(tag)).toBe(4);
    // Up to (and above) the highest: the highest row stays, empty, so the sequence number is never reused.
    await persistence.journal.deleteTo(pid, 50);
    expect(await rowsOf(pid)).toEqual([
      { seq: 1, deleted: true, bytes: 0 },
      { seq: 10, deleted: true, bytes: 0 },
    ]);
    expect(await tagRows(tag)).toBe(0);
    expect(await persistence.journal.highestSequenceNr(pid)).toBe(10);
    const ids: string[] = [];
    for await (const id of persistence.queries.persistenceIds()) ids.push(id);
    expect(ids).toContain(pid);
    // Appending again continues after 10; a later deleteTo removes the old tombstone of 10.
    await persistence.journal.append(pid, [11, 12].map((n) => ({ eventType: 'E', payload: n, tags: [tag] })), { expectedSequenceNr: 10, writerId: 'w' });
    await persistence.journal.deleteTo(pid, 11);
    expect((await rowsOf(pid)).map((r) => [r.seq, r.deleted])).toEqual([
      [1, true],
      [12, false],
    ]);
    const replayed: number[] = [];
    for await (const e of persistence.journal.replay(pid, 1)) replayed.push(e.sequenceNr);
    expect(replayed).toEqual([12]);
    const tagged: number[] = [];
    for await (const e of persistence.queries.eventsByTag(tag, NoOffset)) tagged.push(e.sequenceNr);
    expect(tagged).toEqual([12]);
  });
});
