/**
 * Pins ADR 0003: a live tag query never skips an event whose ordering was
 * drawn before, but committed after, a later one (appends of different ids
 * run in parallel since migration 2; readers stop at the safe ordering).
 */
import { JsonSerializer, NoOffset, type EventEnvelope } from '@dataflow/core';
import { serviceSettings, testNamespace, uniqueName } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresPersistence, type PostgresPersistence } from './postgres-persistence.js';
import { runWriterProcesses } from './postgres-writer-processes.test.js';

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
  it('delivers an event committed late although a later ordering was appended and committed meanwhile', async () => {
    const tag = uniqueName('late-commit');
    const delivered: EventEnvelope[] = [];
    const reading = readLive(tag, 2, 20_000, delivered);
    // A slow writer that follows the journal's protocol (append_events): it registers as an
    // appender (the shared lock), draws its ordering, and commits late.
    const slow = await pool.connect();
    let deliveredWhileSlowOpen: number;
    try {
      await slow.query('BEGIN');
      await slow.query(`SELECT pg_advisory_xact_lock_shared(hashtext('dataflow-appending'), hashtext($1))`, [schema]);
      const payload = Buffer.from(new JsonSerializer().serialize({ slow: true }, { eventType: 'Slow', schemaVersion: 1 }));
      await slow.query(
        `WITH inserted AS (
           INSERT INTO "${schema}".event_journal (persistence_id, sequence_nr, writer_id, event_type, schema_version, serializer_id, payload, tags, written_at)
           VALUES ($1, 1, 'slow', 'Slow', 1, 'json', $2, $3, 0) RETURNING ordering, tags)
         INSERT INTO "${schema}".event_tag (tag, ordering) SELECT unnest(tags), ordering FROM inserted`,
        ['slow-writer', payload, [tag]],
      );
      // Appends of other ids no longer wait for it: the fast one commits a later ordering first.
      await persistence.journal.append('fast-writer', [{ eventType: 'Fast', payload: { fast: true }, tags: [tag] }], { expectedSequenceNr: 0, writerId: 'fast' });
      // The reader must hold the fast event back while an earlier ordering may still commit.
      await new Promise((resolve) => setTimeout(resolve, 300));
      deliveredWhileSlowOpen = delivered.length;
      await slow.query('COMMIT');
    } finally {
      slow.release();
    }
    const got = await reading;
    expect(deliveredWhileSlowOpen).toBe(0);
    expect(got.map((e) => e.persistenceId)).toEqual(['slow-writer', 'fast-writer']);
    const offsets = got.map((e) => (e.offset.kind === 'sequence' ? e.offset.value : -1));
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  });

  it('lets a current query wait for the appends in flight when it starts, then end', async () => {
    const tag = uniqueName('current-in-flight');
    const slow = await pool.connect();
    try {
      await slow.query('BEGIN');
      await slow.query(`SELECT pg_advisory_xact_lock_shared(hashtext('dataflow-appending'), hashtext($1))`, [schema]);
      await slow.query(
        `WITH inserted AS (
           INSERT INTO "${schema}".event_journal (persistence_id, sequence_nr, writer_id, event_type, schema_version, serializer_id, payload, tags, written_at)
           VALUES ($1, 1, 'slow', 'Slow', 1, 'json', $2, $3, 0) RETURNING ordering, tags)
         INSERT INTO "${schema}".event_tag (tag, ordering) SELECT unnest(tags), ordering FROM inserted`,
        [uniqueName('slow-current'), Buffer.from('{}'), [tag]],
      );
      await persistence.journal.append(uniqueName('fast-current'), [{ eventType: 'Fast', payload: {}, tags: [tag] }], { expectedSequenceNr: 0, writerId: 'fast' });
      const current = (async () => {
        const out: string[] = [];
        for await (const e of persistence.queries.eventsByTag(tag, NoOffset)) out.push(e.eventType);
        return out;
      })();
      await new Promise((resolve) => setTimeout(resolve, 200));
      await slow.query('COMMIT');
      // Both were drawn before the query started: it returns both, in ordering order.
      expect(await current).toEqual(['Slow', 'Fast']);
    } finally {
      slow.release();
    }
  });

  it('gives a live reader every event exactly once under 10 writer processes', { timeout: 300_000 }, async () => {
    const tag = uniqueName('stress');
    const processes = 10;
    const appends = 40;
    const total = processes * appends * 2;
    // Separate processes (like separate nodes) commit concurrently, which is where orderings commit out of order.
    const reading = readLive(tag, total, 290_000);
    const results = await runWriterProcesses(
      Array.from({ length: processes }, (_, w) => ({
        url: serviceSettings().postgresUrl,
        schema,
        writerId: `process-${w}`,
        pids: [uniqueName(`stress-${w}`)],
        appends,
        eventsPerAppend: 2,
        tags: [tag],
        mode: 'journal' as const,
      })),
    );
    const got = await reading;
    const keys = got.map((e) => `${e.persistenceId}#${e.sequenceNr}`);
    expect(new Set(keys).size).toBe(total);
    expect(new Set(keys)).toEqual(new Set(results.flatMap((r) => r.acknowledged.map(([pid, seq]) => `${pid}#${seq}`))));
    const perPid = new Map<string, number[]>();
    for (const e of got) perPid.set(e.persistenceId, [...(perPid.get(e.persistenceId) ?? []), e.sequenceNr]);
    expect(perPid.size).toBe(processes);
    for (const seqs of perPid.values()) expect(seqs).toEqual(Array.from({ length: appends * 2 }, (_, i) => i + 1));
    const offsets = got.map((e) => (e.offset.kind === 'sequence' ? e.offset.value : -1));
    expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
  });
});
