/**
 * Pins ADR 0003: a live tag query never skips an event whose ordering was
 * drawn before, but committed after, a later one.
 */
import { JsonSerializer, NoOffset, type EventEnvelope } from '@dataflow/core';
import { serviceSettings, testNamespace, uniqueName } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresPersistence, type PostgresPersistence } from './postgres-persistence.js';

const schema = testNamespace(import.meta.url);
let pool: pg.Pool;
let persistence: PostgresPersistence;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 30 });
  persistence = await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: true, pollIntervalMs: 2 });
});

afterAll(async () => {
  await persistence.close();
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

/**
 * Reads a live tag stream into `got` until `count` events arrived; fails after
 * `timeoutMs` with what it got.
 */
async function readLive(tag: string, count: number, timeoutMs = 20_000, got: EventEnvelope[] = []): Promise<EventEnvelope[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    for await (const e of persistence.queries.eventsByTag(tag, NoOffset, { live: true, signal: controller.signal })) {
      got.push(e);
      if (got.length === count) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  if (got.length < count) throw new Error(`live query delivered ${got.length} of ${count} events within ${timeoutMs} ms`);
  return got;
}

describe('Postgres tag ordering (ADR 0003)', () => {
  it('delivers an event committed late although a later ordering was appended meanwhile', async () => {
    const tag = uniqueName('late-commit');
    const delivered: EventEnvelope[] = [];
    let fastOutcome: 'appended' | 'waiting';
    const reading = readLive(tag, 2, 20_000, delivered);
    // A slow writer: draws its ordering under the append lock, as the journal does, and commits late.
    const slow = await pool.connect();
    try {
      await slow.query('BEGIN');
      await slow.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`dataflow-append:${schema}`]);
      const payload = Buffer.from(new JsonSerializer().serialize({ slow: true }, { eventType: 'Slow', schemaVersion: 1 }));
      await slow.query(
        `WITH inserted AS (
           INSERT INTO "${schema}".event_journal (persistence_id, sequence_nr, writer_id, event_type, schema_version, serializer_id, payload, tags, written_at)
           VALUES ($1, 1, 'slow', 'Slow', 1, 'json', $2, $3, 0) RETURNING ordering, tags)
         INSERT INTO "${schema}".event_tag (tag, ordering) SELECT unnest(tags), ordering FROM inserted`,
        ['slow-writer', payload, [tag]],
      );
      // A fast writer appends while the slow one is open: it must wait for the lock, not overtake.
      const fast = persistence.journal.append('fast-writer', [{ eventType: 'Fast', payload: { fast: true }, tags: [tag] }], { expectedSequenceNr: 0, writerId: 'fast' });
      fastOutcome = await Promise.race([fast.then(() => 'appended' as const), waitUntilLockWaiter().then(() => 'waiting' as const)]);
      if (fastOutcome === 'appended') {
        // Without the lock the fast event is visible first; let the reader pass it before the slow commit.
        await until(() => delivered.length > 0);
      }
      await slow.query('COMMIT');
      await fast;
    } finally {
      slow.release();
    }
    const got = await reading;
    expect(fastOutcome).toBe('waiting');
    expect(got.map((e) => e.persistenceId)).toEqual(['slow-writer', 'fast-writer']);
    expect(got.map((e) => (e.offset.kind === 'sequence' ? e.offset.value : -1))).toEqual(
      [...got.map((e) => (e.offset.kind === 'sequence' ? e.offset.value : -1))].sort((a, b) => a - b),
    );
  });

  it('gives a live reader every event exactly once under 20 writers on 5 journal instances', { timeout: 60_000 }, async () => {
    const tag = uniqueName('stress');
    const writers = 20;
    const appends = 40;
    // Each instance groups its own appends into one transaction at a time; separate instances
    // (like separate nodes) commit concurrently, which is where orderings can commit out of order.
    const instances = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const own = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 4 });
        return createPostgresPersistence({ pool: own, schema });
      }),
    );
    const reading = readLive(tag, writers * appends * 2, 50_000);
    try {
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          const pid = uniqueName(`stress-${w}`);
          const journal = instances[w % instances.length]?.journal;
          if (journal === undefined) throw new Error('no journal instance');
          for (let i = 0; i < appends; i++) {
            const events = [0, 1].map((k) => ({ eventType: 'S', payload: { w, i, k }, tags: [tag] }));
            await journal.append(pid, events, { expectedSequenceNr: i * 2, writerId: `w${w}` });
          }
        }),
      );
    } finally {
      await Promise.all(instances.map((instance) => instance.close()));
    }
    const got = await reading;
    const keys = got.map((e) => `${e.persistenceId}#${e.sequenceNr}`);
    expect(new Set(keys).size).toBe(writers * appends * 2);
    const perPid = new Map<string, number[]>();
    for (const e of got) perPid.set(e.persistenceId, [...(perPid.get(e.persistenceId) ?? []), e.sequenceNr]);
    expect(perPid.size).toBe(writers);
    for (const seqs of perPid.values()) expect(seqs).toEqual(Array.from({ length: appends * 2 }, (_, i) => i + 1));
  });
});

/** Resolves once a session waits for this schema's append lock (the fast append). */
async function waitUntilLockWaiter(): Promise<void> {
  for (;;) {
    const { rows } = await pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_locks, (SELECT hashtext($1)::bigint AS k) key
       WHERE locktype = 'advisory' AND NOT granted AND objsubid = 1
         AND classid = ((key.k >> 32) & 4294967295)::oid AND objid = (key.k & 4294967295)::oid`,
      [`dataflow-append:${schema}`],
    );
    if (Number(rows[0]?.n ?? 0) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}
