/**
 * Paging of the Postgres tag query: pages are cut from the tag index (LIMIT
 * before the join), so deleted events inside a page must not end the query
 * early; every live event after them is still delivered, in order.
 */
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
  persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true, pageSize: 3 });
});

afterAll(async () => {
  await persistence.close();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe('Postgres tag query paging', () => {
  it('pages past whole pages of deleted events and returns the rest in order', async () => {
    const tag = uniqueName('paging');
    const a = uniqueName('a');
    const b = uniqueName('b');
    for (let i = 0; i < 10; i++) {
      await persistence.journal.append(a, [{ eventType: 'E', payload: { n: i }, tags: [tag] }], { expectedSequenceNr: i, writerId: 'w' });
      if (i % 3 === 0) await persistence.journal.append(b, [{ eventType: 'E', payload: { n: i }, tags: [tag] }], { expectedSequenceNr: i / 3, writerId: 'w' });
    }
    // a's events 1..7 deleted: two full pages of the tag hold nothing but deleted events and one b event.
    await persistence.journal.deleteTo(a, 7);
    const seen: string[] = [];
    for await (const e of persistence.queries.eventsByTag(tag, NoOffset)) seen.push(`${e.persistenceId === a ? 'a' : 'b'}${e.sequenceNr}`);
    expect(seen).toEqual(['b1', 'b2', 'b3', 'a8', 'a9', 'a10', 'b4']);
  });
});
