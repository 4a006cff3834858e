/**
 * A projection process for the kill test (not a test itself: vitest only runs
 * `*.{unit,int,e2e}.test.ts`). Runs one projection over a tag of the Postgres
 * journal until it is killed; its handler records every delivery as a row of
 * `<schema>.delivery` (inside the offset's transaction for `exactly-once`,
 * on its own for `at-least-once`), so the parent can count deliveries per
 * event after a SIGKILL and a restart.
 *
 *   tsx projection-child.test.ts '<ProjectionChildConfig as JSON>'
 */
import { createPostgresPersistence, pgPoolExecutor, type SqlQueryable } from '@dataflow/persistence';
import type { EventEnvelope } from '@dataflow/core';
import pg from 'pg';
import { ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { runProjection } from './projection-runner.js';
import { atLeastOnce, exactlyOnce } from './projection.js';

export interface ProjectionChildConfig {
  readonly url: string;
  readonly schema: string;
  readonly tag: string;
  readonly name: string;
  readonly guarantee: 'exactly-once' | 'at-least-once';
  readonly saveEvery: number;
  /** Time each delivery takes, so a kill lands mid-stream. */
  readonly handlerDelayMs: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ProjectionChildConfig;
const pool = new pg.Pool({ connectionString: config.url, max: 3 });
const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema: config.schema });
const executor = pgPoolExecutor(pool, { ownsPool: false });
const store = new ProjectionOffsetStore(executor, config.schema);

const handler = async (envelope: EventEnvelope, db: SqlQueryable): Promise<void> => {
  await new Promise((resolve) => setTimeout(resolve, config.handlerDelayMs));
  await db.query(`INSERT INTO "${config.schema}".delivery (projection, persistence_id, sequence_nr) VALUES ($1, $2, $3)`, [config.name, envelope.persistenceId, envelope.sequenceNr]);
};
const projection =
  config.guarantee === 'exactly-once'
    ? exactlyOnce({ name: config.name, tag: config.tag, handler })
    : atLeastOnce({ name: config.name, tag: config.tag, handler, saveEvery: config.saveEvery, saveAfterMs: 600_000 });

process.stdout.write('ready\n');
await runProjection(projection, { queries: persistence.queries, store, executor }, new AbortController().signal);
