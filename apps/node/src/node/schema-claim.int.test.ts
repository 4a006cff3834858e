/**
 * The claim on a journal schema against the real Postgres: a second claim is
 * refused naming the holder; a claim whose connection the server ends takes
 * the lock back; one that finds another holder on its way back is lost; a
 * released claim frees the schema.
 */
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { NodeLogger } from './node-logger.js';
import { claimJournalSchema, type SchemaClaim } from './schema-claim.js';

const url = serviceSettings().postgresUrl;
const logged: string[] = [];
const logger: NodeLogger = { debug: () => undefined, info: (m) => logged.push(m), warn: (m) => logged.push(m), error: (m) => logged.push(m) };
const claims: SchemaClaim[] = [];
const clients: pg.Client[] = [];

afterAll(async () => {
  for (const claim of claims) await claim.release();
  for (const client of clients) await client.end().catch(() => undefined);
});

async function client(name: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, application_name: name });
  c.on('error', () => undefined);
  await c.connect();
  clients.push(c);
  return c;
}

async function claim(schema: string, nodeId: string): Promise<SchemaClaim> {
  const held = await claimJournalSchema({ url, schema, nodeId, logger, retryMs: 200 });
  claims.push(held);
  return held;
}

/** Ends the server side of `nodeId`'s claim connection, as a Postgres restart or a network cut would. */
async function cutClaimOf(admin: pg.Client, nodeId: string): Promise<void> {
  const { rows } = await admin.query<{ ended: boolean }>(`SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name LIKE $1`, [`dataflow node ${nodeId} %`]);
  expect(rows.map((r) => r.ended)).toEqual([true]);
}

describe('the claim on a journal schema', () => {
  it('refuses a second claim naming the holder, takes the lock back after its connection is cut, and is free once released', { timeout: 30_000 }, async () => {
    const schema = testNamespace(import.meta.url, 'claim_a');
    const admin = await client('claim-test-admin');
    const first = await claim(schema, 'node-a');
    await expect(claim(schema, 'node-b')).rejects.toThrow(
      new RegExp(`^postgres\\.schema: another node runs on journal schema ${schema}: dataflow node node-a \\(pid ${process.pid} on .+\\)( from \\S+)?, since \\S+\\. Two nodes on one schema`),
    );
    // Another schema is another claim.
    await claim(`${schema}_other`, 'node-b');

    await cutClaimOf(admin, 'node-a');
    await vi.waitFor(() => expect(logged).toContain(`the claim on journal schema ${schema} is held again (attempt 1)`), { timeout: 5_000, interval: 50 });
    expect(logged).toContainEqual(expect.stringMatching(new RegExp(`^the claim on journal schema ${schema} lost its connection \\(.+\\); taking it again$`)));
    await expect(claim(schema, 'node-b')).rejects.toThrow(/dataflow node node-a/);

    await first.release();
    const next = await claim(schema, 'node-c');
    await next.release();
  });

  it('is lost when another holder took the lock while its connection was cut', { timeout: 30_000 }, async () => {
    const schema = testNamespace(import.meta.url, 'claim_b');
    const admin = await client('claim-test-admin-2');
    const held = await claim(schema, 'node-d');
    let lost: Error | undefined;
    void held.lost.then((error) => (lost = error));
    // Ends the claim's connection, and takes its lock at once (before its first retry, 200 ms later), as a second node starting then would.
    const intruder = await client('dataflow node node-e (pid 1 on elsewhere)');
    await cutClaimOf(admin, 'node-d');
    const taken = await intruder.query<{ taken: boolean }>(`SELECT pg_try_advisory_lock($1::int4, hashtext($2)) AS taken`, [0x44465343, `dataflow-node:${schema}`]);
    expect(taken.rows[0]?.taken).toBe(true);
    await vi.waitFor(() => expect(lost).toBeDefined(), { timeout: 5_000, interval: 50 });
    expect(lost?.message).toMatch(
      new RegExp(`^another node took journal schema ${schema} while this node was cut off from Postgres \\(dataflow node node-e \\(pid 1 on elsewhere\\).*\\); this node stops rather than write beside it$`),
    );
  });
});
