/** Live queries of the Postgres read journal wake on this process's appends, not only on the poll timer. */
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
  // A poll interval longer than the test timeout: only the in-process wake-up can deliver in time.
  persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true, pollIntervalMs: 3_600_000 });
});

afterAll(async () => {
  await persistence.close();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe('Postgres live queries', () => {
  it('deliver an append of the same process at once, by tag, by persistence id and as a new id', async () => {
    const tag = uniqueName('wake');
    const pid = uniqueName('wake-pid');
    const controller = new AbortController();
    const live = { live: true, signal: controller.signal } as const;
    const byTag = first(persistence.queries.eventsByTag(tag, NoOffset, live));
    const byPid = first(persistence.queries.eventsByPersistenceId(pid, 1, undefined, live));
    const ids = (async () => {
      for await (const id of persistence.queries.persistenceIds(live)) if (id === pid) return id;
      return undefined;
    })();
    await persistence.journal.append(pid, [{ eventType: 'Woke', payload: 1, tags: [tag] }], { expectedSequenceNr: 0, writerId: 'w' });
    expect((await byTag)?.persistenceId).toBe(pid);
    expect((await byPid)?.sequenceNr).toBe(1);
    expect(await ids).toBe(pid);
    controller.abort();
  });
});

async function first<T>(iterable: AsyncIterable<T>): Promise<T | undefined> {
  for await (const item of iterable) return item;
  return undefined;
}
