/**
 * A projection process killed with SIGKILL mid-stream, then started again,
 * over events written by the real Postgres journal: with `exactlyOnce` every
 * event is delivered exactly once in total (the handler's row and the offset
 * commit together); with `atLeastOnce` every event is delivered, and only the
 * tail not yet covered by a saved offset (at most `saveEvery` events) twice.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { createPostgresPersistence, pgPoolExecutor, type PostgresPersistence } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { migrateProjections } from '../schema/projections-schema.js';
import type { ProjectionChildConfig } from './projection-child.test.js';

const child = fileURLToPath(new URL('./projection-child.test.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');
const schema = testNamespace(import.meta.url);
const url = serviceSettings().postgresUrl;
const EVENTS = 150;
const SAVE_EVERY = 10;

let pool: pg.Pool;
let persistence: PostgresPersistence;
let store: ProjectionOffsetStore;
const children: ChildProcess[] = [];

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: url, max: 4 });
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true });
  const executor = pgPoolExecutor(pool, { ownsPool: false });
  await migrateProjections(executor, schema);
  store = new ProjectionOffsetStore(executor, schema);
  await pool.query(`CREATE TABLE "${schema}".delivery (n BIGSERIAL PRIMARY KEY, projection TEXT NOT NULL, persistence_id TEXT NOT NULL, sequence_nr BIGINT NOT NULL)`);
}, 60_000);

afterAll(async () => {
  for (const proc of children) if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  await persistence.close();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
}, 60_000);

/** Starts a projection process; resolves once it is connected. */
async function startChild(config: ProjectionChildConfig): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--conditions=@dataflow/source', '--import', tsx, child, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(proc);
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  await new Promise<void>((resolve, reject) => {
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (chunk.includes('ready')) resolve();
    });
    proc.on('exit', (code, signal) => reject(new Error(`projection process ended with ${code ?? signal} before it was ready: ${stderr.slice(-2000)}`)));
  });
  proc.on('exit', (code, signal) => {
    if (signal !== 'SIGKILL') throw new Error(`projection process ended with ${code ?? signal}: ${stderr.slice(-2000)}`);
  });
  return proc;
}

async function kill(proc: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGKILL');
  await exited;
}

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function deliveries(projection: string): Promise<{ total: number; distinct: number; duplicated: number }> {
  const [row] = await pool.query<{ total: string; distinct: string; duplicated: string }>(
    `SELECT count(*) AS total, count(DISTINCT (persistence_id, sequence_nr)) AS distinct,
            count(*) - count(DISTINCT (persistence_id, sequence_nr)) AS duplicated
       FROM "${schema}".delivery WHERE projection = $1`,
    [projection],
  ).then((r) => r.rows);
  return { total: Number(row?.total), distinct: Number(row?.distinct), duplicated: Number(row?.duplicated) };
}

async function appendEvents(tag: string): Promise<number> {
  let lastOrdering = 0;
  for (let i = 0; i < EVENTS; i++) {
    const pid = `kill-${tag}-${i % 3}`;
    await persistence.journal.append(pid, [{ eventType: 'Counted', payload: { i }, tags: [tag] }], { expectedSequenceNr: Math.floor(i / 3), writerId: 'test' });
  }
  for await (const envelope of persistence.queries.eventsByTag(tag)) if (envelope.offset.kind === 'sequence') lastOrdering = envelope.offset.value;
  return lastOrdering;
}

describe('a projection process killed with SIGKILL mid-stream', () => {
  it.each([
    ['exactly-once', 0],
    ['at-least-once', SAVE_EVERY],
  ] as const)('%s: resumes from the stored offset after the kill', { timeout: 240_000 }, async (guarantee, allowedDuplicates) => {
    const tag = `kill-${guarantee}`;
    const lastOrdering = await appendEvents(tag);
    const config: ProjectionChildConfig = { url, schema, tag, name: `killed-${guarantee}`, guarantee, saveEvery: SAVE_EVERY, handlerDelayMs: 5 };
    const id = { name: config.name, key: 'default' };

    const first = await startChild(config);
    await until('the first process to deliver part of the stream', async () => (await deliveries(config.name)).total >= 40);
    await kill(first);
    const atKill = await deliveries(config.name);
    expect(atKill.distinct).toBeLessThan(EVENTS);

    const second = await startChild(config);
    await until('the second process to deliver the whole stream', async () => (await deliveries(config.name)).distinct === EVENTS);
    if (guarantee === 'exactly-once') expect((await store.get(id)).offset).toEqual({ kind: 'sequence', value: lastOrdering });
    await kill(second);

    const after = await deliveries(config.name);
    expect(after.distinct).toBe(EVENTS);
    expect(after.duplicated).toBeLessThanOrEqual(allowedDuplicates);
    if (guarantee === 'exactly-once') expect(after.total).toBe(EVENTS);
  });
});
