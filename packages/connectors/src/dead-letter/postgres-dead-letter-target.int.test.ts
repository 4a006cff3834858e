import { PGlite } from '@electric-sql/pglite';
import type { DeadLetter } from '@dataflow/core';
import { pgliteExecutor, pgPoolExecutor, type SqlExecutor } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDeadLetterTarget } from '../factory/create-connector.js';
import { PostgresDeadLetterQueue } from './postgres-dead-letter-queue.js';
import { PostgresDeadLetterTarget } from './postgres-dead-letter-target.js';

const letter = (n: number, payload: DeadLetter['payload'] = { n }): DeadLetter => ({
  pipelineId: `pipeline-${n % 2}`,
  stage: 'sink',
  stageName: 'file',
  error: { message: `refused ${n}`, tag: 'connector/failed', retriable: n % 2 === 0 },
  attempt: n,
  payload,
  batchId: `b${n}`,
  failedAt: Date.UTC(2025, 5, 1, 12, 0, n),
});

let schema: string;
let admin: pg.Pool;

beforeAll(() => {
  schema = testNamespace(import.meta.url);
  admin = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 1 });
});
afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  await admin.end();
});

const target = (): PostgresDeadLetterTarget =>
  new PostgresDeadLetterTarget({ type: 'postgres', connectionString: serviceSettings().postgresUrl, schema });

describe('PostgresDeadLetterTarget', () => {
  it('creates its table idempotently, also when several targets open at once', async () => {
    const targets = [target(), target(), target()];
    await Promise.all(targets.map((t) => t.open()));
    await targets[0]?.ensureSchema();
    await Promise.all(targets.map((t) => t.close()));
    const { rows } = await admin.query<{ column_name: string }>(
      'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position',
      [schema, 'dead_letters'],
    );
    expect(rows.map((r) => r.column_name)).toEqual([
      'id', 'pipeline_id', 'stage', 'stage_name', 'error_message', 'error_tag', 'retriable', 'attempt', 'payload', 'batch_id', 'failed_at',
    ]);
  });

  it('stores every field of each letter', async () => {
    const t = target();
    await t.open();
    const { batchId: _none, ...withoutBatch } = letter(3);
    await t.send([letter(1), letter(2, 'raw "text" that did not parse'), { ...withoutBatch, error: { message: 'x', retriable: false } }]);
    await t.close();
    const { rows } = await admin.query(
      `SELECT pipeline_id, stage, stage_name, error_message, error_tag, retriable, attempt, payload, batch_id, failed_at
         FROM ${pg.escapeIdentifier(schema)}.dead_letters WHERE error_message IN ('refused 1', 'refused 2', 'x') ORDER BY id`,
    );
    expect(rows).toEqual([
      { pipeline_id: 'pipeline-1', stage: 'sink', stage_name: 'file', error_message: 'refused 1', error_tag: 'connector/failed', retriable: false,
        attempt: 1, payload: { n: 1 }, batch_id: 'b1', failed_at: new Date(Date.UTC(2025, 5, 1, 12, 0, 1)) },
      { pipeline_id: 'pipeline-0', stage: 'sink', stage_name: 'file', error_message: 'refused 2', error_tag: 'connector/failed', retriable: true,
        attempt: 2, payload: 'raw "text" that did not parse', batch_id: 'b2', failed_at: new Date(Date.UTC(2025, 5, 1, 12, 0, 2)) },
      { pipeline_id: 'pipeline-1', stage: 'sink', stage_name: 'file', error_message: 'x', error_tag: null, retriable: false,
        attempt: 3, payload: { n: 3 }, batch_id: null, failed_at: new Date(Date.UTC(2025, 5, 1, 12, 0, 3)) },
    ]);
  });

  it('stores the letters of a send all or none, and a refused letter is a permanent failure', async () => {
    const t = target();
    await t.open();
    // jsonb refuses the NUL character: the whole statement fails.
    await expect(t.send([letter(100), letter(101, { text: 'nul \u0000 here' })])).rejects.toMatchObject({
      tag: 'connector/failed',
      retriable: false,
    });
    await t.close();
    const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.dead_letters WHERE batch_id = 'b100'`);
    expect(rows).toEqual([{ n: 0 }]);
  });

  it('reports an unreachable server as retriable and use before open as permanent', async () => {
    const unreachable = new PostgresDeadLetterTarget({ type: 'postgres', connectionString: 'postgres://postgres@127.0.0.1:1/none', schema });
    await expect(unreachable.open()).rejects.toMatchObject({ tag: 'connector/failed', retriable: true });
    await expect(target().send([letter(1)])).rejects.toMatchObject({ retriable: false });
  });
});

describe('PostgresDeadLetterTarget on a database of the application', () => {
  it('needs a connection string, a pool or a database', () => {
    expect(() => new PostgresDeadLetterTarget({ type: 'postgres' })).toThrow(/connectionString: a connection string is needed/);
  });

  it('writes into an embedded PGlite given as the executor and leaves it open', async () => {
    const db = pgliteExecutor(await PGlite.create());
    try {
      const t = createDeadLetterTarget({ type: 'postgres' }, { executor: db });
      await t.open();
      await t.send([letter(1), letter(2, 'raw text')]);
      await t.close();
      expect(await db.query('SELECT stage, payload, retriable, failed_at FROM public.dead_letters ORDER BY id')).toEqual([
        { stage: 'sink', payload: { n: 1 }, retriable: false, failed_at: new Date(Date.UTC(2025, 5, 1, 12, 0, 1)) },
        { stage: 'sink', payload: 'raw text', retriable: true, failed_at: new Date(Date.UTC(2025, 5, 1, 12, 0, 2)) },
      ]);
    } finally {
      await db.close();
    }
  });

  it('writes where its own connectionString points, not into the database of the application', async () => {
    const db = pgliteExecutor(await PGlite.create());
    try {
      const t = createDeadLetterTarget({ type: 'postgres', connectionString: serviceSettings().postgresUrl, schema }, { executor: db });
      await t.open();
      await t.send([letter(700)]);
      await t.close();
      expect(await db.query("SELECT to_regclass('public.dead_letters') IS NULL AS missing")).toEqual([{ missing: true }]);
      const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.dead_letters WHERE batch_id = 'b700'`);
      expect(rows).toEqual([{ n: 1 }]);
    } finally {
      await db.close();
    }
  });
});

describe.each([
  ['PGlite', async (): Promise<{ db: SqlExecutor; schema: string }> => ({ db: pgliteExecutor(await PGlite.create()), schema: 'public' })],
  ['Postgres', (): Promise<{ db: SqlExecutor; schema: string }> => Promise.resolve({ db: pgPoolExecutor(new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 2 })), schema: `${schema}_q` })],
])('PostgresDeadLetterQueue on %s', (_name, open) => {
  let db: SqlExecutor;
  let queueSchema: string;
  beforeAll(async () => {
    ({ db, schema: queueSchema } = await open());
  });
  afterAll(async () => {
    if (queueSchema !== 'public') await db.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(queueSchema)} CASCADE`);
    await db.close();
  });

  it('reads a missing table as an empty queue', async () => {
    const queue = new PostgresDeadLetterQueue(db, queueSchema);
    expect(await queue.page('pipeline-1', { afterId: 0, limit: 10 })).toEqual({ letters: [], next: undefined, total: 0 });
    expect(await queue.byIds('pipeline-1', [1])).toEqual([]);
    expect(await queue.purge('pipeline-1')).toBe(0);
  });

  it('pages one pipeline oldest first, reads and deletes by id, purges by age or all', async () => {
    const t = new PostgresDeadLetterTarget({ type: 'postgres', schema: queueSchema }, { executor: db });
    await t.open();
    // pipeline-1 gets the odd numbers, pipeline-0 the even ones.
    await t.send([1, 2, 3, 4, 5, 6, 7].map((n) => letter(n)));
    await t.close();
    const queue = new PostgresDeadLetterQueue(db, queueSchema);
    const first = await queue.page('pipeline-1', { afterId: 0, limit: 2 });
    expect(first.total).toBe(4);
    expect(first.letters.map((l) => l.attempt)).toEqual([1, 3]);
    expect(first.letters[0]).toEqual({ ...letter(1), id: first.letters[0]?.id });
    expect(first.next).toBe(first.letters[1]?.id);
    const second = await queue.page('pipeline-1', { afterId: first.next ?? 0, limit: 2 });
    expect(second.letters.map((l) => l.attempt)).toEqual([5, 7]);
    expect(second.next).toBeUndefined();

    const evens = (await queue.page('pipeline-0', { afterId: 0, limit: 10 })).letters;
    const ids = [first.letters[0]?.id ?? 0, evens[0]?.id ?? 0];
    // An id of another pipeline is not this pipeline's letter.
    expect((await queue.byIds('pipeline-1', ids)).map((l) => l.attempt)).toEqual([1]);
    expect(await queue.delete('pipeline-1', ids)).toBe(1);
    expect(await queue.purge('pipeline-1', { failedBefore: Date.UTC(2025, 5, 1, 12, 0, 5) })).toBe(1);
    expect((await queue.page('pipeline-1', { afterId: 0, limit: 10 })).letters.map((l) => l.attempt)).toEqual([5, 7]);
    expect(await queue.purge('pipeline-1')).toBe(2);
    expect((await queue.page('pipeline-0', { afterId: 0, limit: 10 })).total).toBe(3);
  });
});
