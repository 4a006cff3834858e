/**
 * The keyspace claim on the real Cassandra: one holder at a time, a second
 * one refused with the holder's name, a crashed holder's row taken over once
 * it lapses, a row that lapsed taken again by its holder, and a claim lost
 * to another process reported through `lost`.
 */
import { Client } from 'cassandra-driver';
import { serviceSettings } from '@dataflow/test-env';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cassandraFixture, type CassandraFixture } from './cassandra-fixture.test.js';
import { claimCassandraKeyspace, KEYSPACE_CLAIM_KEY, KeyspaceClaimedError, KeyspaceClaimLostError, type KeyspaceClaimEvent } from './keyspace-claim.js';

let fixture: CassandraFixture;
beforeAll(async () => {
  fixture = await cassandraFixture(import.meta.url);
}, 120_000);
afterAll(async () => {
  await fixture?.cleanup();
}, 60_000);

const holderRow = async () => (await fixture.client.execute(`SELECT holder, TTL(holder) AS ttl FROM ${fixture.keyspace}.writer_leases WHERE persistence_id = ?`, [KEYSPACE_CLAIM_KEY])).first();

describe('claimCassandraKeyspace', () => {
  it('admits one holder: a second is refused naming the first, and takes the keyspace once the first releases it', async () => {
    const a = await claimCassandraKeyspace(fixture.client, fixture.keyspace, { holder: 'node-a (pid 1)' });
    const refused = await claimCassandraKeyspace(fixture.client, fixture.keyspace, { holder: 'node-b (pid 2)', waitMs: 0 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(KeyspaceClaimedError);
    expect((refused as KeyspaceClaimedError).message).toMatch(new RegExp(`keyspace ${fixture.keyspace} is in use by node-a \\(pid 1\\) \\(its claim lapses within \\d+ s unless renewed\\)`));
    expect((refused as KeyspaceClaimedError).retriable).toBe(false);
    await a.release();
    expect(await holderRow()).toBeNull();
    const b = await claimCassandraKeyspace(fixture.client, fixture.keyspace, { holder: 'node-b (pid 2)', waitMs: 0 });
    expect((await holderRow())?.['holder']).toBe('node-b (pid 2)');
    await b.release();
  });

  it('keeps its row alive past its TTL while it runs, so a waiting second holder is refused', async () => {
    const a = await claimCassandraKeyspace(fixture.client, fixture.keyspace, { holder: 'node-a (pid 1)', ttlMs: 2_000 });
    const events: KeyspaceClaimEvent[] = [];
    const refused = await claimCassandraKeyspace(fixture.client, fixture.keyspace, { holder: 'node-b (pid 2)', ttlMs: 2_000, waitMs: 4_000, onEvent: (e) => events.push(e) }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(KeyspaceClaimedError);
    expect(events).toEqual([expect.objectContaining({ type: 'waiting', holder: 'node-a (pid 1)' })]);
    await a.release();
  }, 20_000);

  it('takes over the row of a holder that died (no release, no renewals) once it lapses', async () => {
    // The crashed process: its own client, shut down under its claim (its renewals fail from then on).
    const services = serviceSettings();
    const doomed = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
    await doomed.connect();
    await claimCassandraKeyspace(doomed, fixture.keyspace, { holder: 'node-a (pid 1, crashed)', ttlMs: 2_000 });
    await doomed.shutdown();
    const events: KeyspaceClaimEvent[] = [];
    const started = Date.now();
    const b = await claimCassandraKeyspace(fixture.client, fixture.keyspace, { holder: 'node-b (pid 2)', ttlMs: 2_000, waitMs: 10_000, onEvent: (e) => events.push(e) });
    expect(Date.now() - started).toBeLessThan(6_000);
    expect(events[0]).toEqual(expect.objectContaining({ type: 'waiting', holder: 'node-a (pid 1, crashed)' }));
    expect((await holderRow())?.['holder']).toBe('node-b (pid 2)');
    await b.release();
  }, 30_000);

  it('takes its row again when it lapsed meanwhile, and reports the claim lost when another process took it', async () => {
    const events: KeyspaceClaimEvent[] = [];
    const a = await claimCassandraKeyspace(fixture.client, fixture.keyspace, { holder: 'node-a (pid 1)', ttlMs: 3_000, onEvent: (e) => events.push(e) });
    // As if Cassandra had been out of reach for longer than the TTL: the row is gone. A's next renewal takes it again.
    await fixture.client.execute(`DELETE FROM ${fixture.keyspace}.writer_leases WHERE persistence_id = ?`, [KEYSPACE_CLAIM_KEY]);
    await expect.poll(() => events.map((e) => e.type), { timeout: 5_000 }).toContain('taken-again');
    expect((await holderRow())?.['holder']).toBe('node-a (pid 1)');
    // Now another process takes the row meanwhile: A learns it at its next renewal and must stop.
    await fixture.client.execute(`DELETE FROM ${fixture.keyspace}.writer_leases WHERE persistence_id = ?`, [KEYSPACE_CLAIM_KEY]);
    await fixture.client.execute(`INSERT INTO ${fixture.keyspace}.writer_leases (persistence_id, holder, acquired_at) VALUES (?, ?, ?) USING TTL 30`, [KEYSPACE_CLAIM_KEY, 'node-c (pid 3)', Date.now()], { prepare: true });
    const lost = await Promise.race([a.lost, new Promise((resolve) => setTimeout(() => resolve('not lost'), 5_000))]);
    expect(lost).toBeInstanceOf(KeyspaceClaimLostError);
    expect((lost as KeyspaceClaimLostError).message).toBe(`keyspace ${fixture.keyspace} was taken by node-c (pid 3) while this process could not renew its claim`);
    await a.release();
    // The release leaves the other holder's row alone.
    expect((await holderRow())?.['holder']).toBe('node-c (pid 3)');
  }, 30_000);
});
