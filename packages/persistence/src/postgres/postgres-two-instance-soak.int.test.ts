/**
 * Two-instance soak on Postgres: two independent journal instances (separate
 * pools, as two processes would have) race appends on the same persistence
 * ids with random pauses. No acknowledged event may ever be overwritten or
 * lost: read back, every acknowledged (id, sequence number) holds the payload
 * its acknowledged writer wrote, and each id's history has no gap.
 */
import { isConcurrencyConflict, isWriteOutcomeUnknown } from '@dataflow/core';
import { serviceSettings, testNamespace, uniqueName } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresPersistence, type PostgresPersistence } from './postgres-persistence.js';

const schema = testNamespace(import.meta.url);
const pools: pg.Pool[] = [];
const instances: PostgresPersistence[] = [];

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 4 });
    pools.push(pool);
    instances.push(await createPostgresPersistence({ pool, ownsPool: false, schema, ensureSchema: i === 0 }));
  }
});

afterAll(async () => {
  await Promise.all(instances.map((instance) => instance.close()));
  await pools[0]?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await Promise.all(pools.map((pool) => pool.end()));
});

interface Ack {
  readonly writer: string;
  readonly pid: string;
  readonly sequenceNr: number;
  readonly token: string;
}

describe('Postgres two-instance soak', () => {
  it('never overwrites or loses an acknowledged event while two instances race on the same ids', { timeout: 120_000 }, async () => {
    const pids = Array.from({ length: 5 }, (_, i) => uniqueName(`soak-${i}`));
    const acks: Ack[] = [];
    let conflicts = 0;
    const deadline = Date.now() + 8_000;
    let counter = 0;
    const writer = async (name: string, instance: PostgresPersistence): Promise<void> => {
      // Each writer believes it owns an id, keeps its own idea of the head, and only re-reads it after a refusal.
      const heads = new Map<string, number>();
      while (Date.now() < deadline) {
        const pid = pids[Math.floor(Math.random() * pids.length)] ?? '';
        const expected = heads.get(pid) ?? (await instance.journal.highestSequenceNr(pid));
        const size = 1 + Math.floor(Math.random() * 3);
        const tokens = Array.from({ length: size }, () => `${name}-${++counter}`);
        try {
          await instance.journal.append(
            pid,
            tokens.map((token) => ({ eventType: 'Soak', payload: { token }, tags: ['soak'] })),
            { expectedSequenceNr: expected, writerId: name },
          );
          tokens.forEach((token, k) => acks.push({ writer: name, pid, sequenceNr: expected + k + 1, token }));
          heads.set(pid, expected + size);
        } catch (error) {
          if (!isConcurrencyConflict(error) && !isWriteOutcomeUnknown(error)) throw error;
          conflicts++;
          heads.delete(pid);
        }
        if (Math.random() < 0.3) await new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
      }
    };
    await Promise.all([writer('a', instances[0] as PostgresPersistence), writer('b', instances[1] as PostgresPersistence), writer('a2', instances[0] as PostgresPersistence)]);
    expect(acks.length).toBeGreaterThan(50);
    expect(conflicts).toBeGreaterThan(0); // the race was real
    const reader = instances[1] as PostgresPersistence;
    for (const pid of pids) {
      const stored = new Map<number, { token: string; writerId: string }>();
      for await (const e of reader.journal.replay(pid, 1)) stored.set(e.sequenceNr, { token: (e.payload as { token: string }).token, writerId: e.writerId });
      expect([...stored.keys()]).toEqual(Array.from({ length: stored.size }, (_, i) => i + 1));
      expect(await reader.journal.highestSequenceNr(pid)).toBe(stored.size);
      for (const ack of acks.filter((x) => x.pid === pid)) expect(stored.get(ack.sequenceNr)).toEqual({ token: ack.token, writerId: ack.writer });
    }
  });
});
