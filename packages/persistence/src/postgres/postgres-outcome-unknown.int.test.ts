/**
 * A write whose connection is lost after it was sent may have been committed:
 * the journal reports `JournalWriteOutcomeUnknownError` (retriable after
 * re-reading the head), not a plain write failure. Real faults: a TCP proxy
 * that cuts the connection after forwarding the append (it commits, the
 * answer never arrives), and pg_terminate_backend of the appending session.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { isDataflowError, isWriteOutcomeUnknown } from '@dataflow/core';
import { serviceSettings, testNamespace, uniqueName } from '@dataflow/test-env';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresPersistence, type PostgresPersistence } from './postgres-persistence.js';

const schema = testNamespace(import.meta.url);
const url = new URL(serviceSettings().postgresUrl);
let admin: pg.Pool;

/** Forwards to Postgres; `cutAfterNextWrite()` lets the next client message through, drops the answers, then closes both sides. */
class CuttingProxy {
  private cut = false;
  private readonly pairs = new Set<[Socket, Socket]>();
  readonly server: Server = createServer((client) => {
    const upstream = connect(Number(url.port || 5432), url.hostname);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    client.on('data', (chunk) => {
      upstream.write(chunk);
      if (this.cut) {
        this.cut = false;
        upstream.removeAllListeners('data');
        // Time for the server to run and commit the statement; then the connection dies.
        setTimeout(() => {
          upstream.destroy();
          client.destroy();
        }, 500);
      }
    });
    upstream.on('data', (chunk) => client.write(chunk));
    for (const socket of pair) socket.on('error', () => undefined);
    client.on('close', () => this.pairs.delete(pair));
  });

  cutAfterNextWrite(): void {
    this.cut = true;
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return address.port;
  }

  async close(): Promise<void> {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }
}

beforeAll(async () => {
  admin = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 3 });
  const setup = await createPostgresPersistence({ pool: admin, ownsPool: false, schema, ensureSchema: true });
  await setup.close();
});

afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
});

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the append to fail');
}

describe('Postgres append with an unknown outcome', () => {
  it('reports a connection lost after the append was sent (and committed) as outcome unknown', async () => {
    const proxy = new CuttingProxy();
    const port = await proxy.listen();
    const pool = new pg.Pool({ host: '127.0.0.1', port, user: url.username || 'postgres', database: url.pathname.slice(1) || 'postgres', max: 1 });
    pool.on('error', () => undefined);
    let persistence: PostgresPersistence | undefined;
    try {
      persistence = await createPostgresPersistence({ pool, schema });
      const pid = uniqueName('cut');
      await persistence.journal.highestSequenceNr(pid); // the connection is set up and configured
      proxy.cutAfterNextWrite();
      const error = await failure(persistence.journal.append(pid, [{ eventType: 'E', payload: 1 }], { expectedSequenceNr: 0, writerId: 'w' }));
      expect(isWriteOutcomeUnknown(error)).toBe(true);
      expect(isDataflowError(error, 'journal/write-outcome-unknown') && error.retriable).toBe(true);
      // It was applied: re-reading the head (as the SPI asks) finds it.
      const { rows } = await admin.query<{ n: string }>(`SELECT max(sequence_nr) AS n FROM "${schema}".event_journal WHERE persistence_id = $1`, [pid]);
      expect(Number(rows[0]?.n)).toBe(1);
      expect(await persistence.journal.highestSequenceNr(pid)).toBe(1);
      await persistence.journal.append(pid, [{ eventType: 'E', payload: 2 }], { expectedSequenceNr: 1, writerId: 'w' });
    } finally {
      await persistence?.close();
      await proxy.close();
    }
  });

  it('reports a session terminated during the append as outcome unknown; re-reading the head shows whether it landed', async () => {
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 1, application_name: 'outcome-unknown-victim' });
    pool.on('error', () => undefined);
    const persistence = await createPostgresPersistence({ pool, schema });
    const blocker = await admin.connect();
    try {
      const pid = uniqueName('terminated');
      // Hold the id's append lock, so the append waits inside append_events.
      await blocker.query('BEGIN');
      await blocker.query(`SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))`, [schema, pid]);
      const appending = failure(persistence.journal.append(pid, [{ eventType: 'E', payload: 1 }], { expectedSequenceNr: 0, writerId: 'w' }));
      for (;;) {
        const { rows } = await admin.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'outcome-unknown-victim' AND wait_event_type = 'Lock'`);
        if (rows.length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'outcome-unknown-victim'`);
      const error = await appending;
      expect(isWriteOutcomeUnknown(error)).toBe(true);
      await blocker.query('ROLLBACK');
      // This time it did not land; the pool reconnects and the writer continues from the head it re-read.
      expect(await persistence.journal.highestSequenceNr(pid)).toBe(0);
      await persistence.journal.append(pid, [{ eventType: 'E', payload: 1 }], { expectedSequenceNr: 0, writerId: 'w' });
      expect(await persistence.journal.highestSequenceNr(pid)).toBe(1);
    } finally {
      blocker.release();
      await persistence.close();
    }
  });
});
