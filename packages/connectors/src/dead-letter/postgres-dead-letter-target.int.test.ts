import type { DeadLetter } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
