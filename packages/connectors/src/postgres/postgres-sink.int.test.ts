import { isDataflowError, type DataRecord, type InvalidConnectorOptionsError } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { PGlite } from '@electric-sql/pglite';
import { pgliteExecutor } from '@dataflow/persistence';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSink } from '../factory/create-connector.js';
import { PostgresSink, type PostgresSinkDefinition } from './postgres-sink.js';

let schema: string;
let admin: pg.Pool;
const signal = new AbortController().signal;

beforeAll(async () => {
  schema = testNamespace(import.meta.url);
  admin = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 2 });
  await admin.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
  await admin.query(`CREATE TABLE ${pg.escapeIdentifier(schema)}.orders (
    id bigint PRIMARY KEY, customer text NOT NULL, total numeric(10, 2), paid boolean, placed_at timestamptz,
    tags text[], payload jsonb, note text DEFAULT 'none')`);
  await admin.query(`CREATE TABLE ${pg.escapeIdentifier(schema)}.events (seq int, kind text)`);
});

afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  await admin.end();
});

const ORDER_COLUMNS = { id: 'id', customer: 'customer.name', total: 'total', paid: 'paid', placed_at: 'placedAt', tags: 'tags', payload: 'items' };

function definition(overrides: Partial<PostgresSinkDefinition> = {}): PostgresSinkDefinition {
  return { type: 'postgres', connectionString: serviceSettings().postgresUrl, schema, table: 'orders', columns: ORDER_COLUMNS, ...overrides };
}

async function opened(overrides: Partial<PostgresSinkDefinition> = {}, pool?: pg.Pool): Promise<PostgresSink> {
  const sink = new PostgresSink(definition(overrides), pool === undefined ? {} : { pool });
  await sink.open({ pipelineId: 'p', checkpoint: undefined, signal });
  return sink;
}

const order = (id: number, total: DataRecord['total'], extra: Partial<DataRecord> = {}): DataRecord => ({
  id,
  customer: { name: `c${id}` },
  total,
  paid: id % 2 === 0,
  placedAt: 1_700_000_000_000 + id,
  tags: ['a', 'quote"d', 'back\\slash'],
  items: { sku: `s${id}`, qty: id, nested: { __proto__x: 1, deep: [[[{}]]] } },
  ...extra,
});

async function ordersById(): Promise<Map<string, Record<string, unknown>>> {
  const { rows } = await admin.query<Record<string, unknown>>(`SELECT * FROM ${pg.escapeIdentifier(schema)}.orders ORDER BY id`);
  return new Map(rows.map((r) => [String(r['id']), r]));
}

describe('PostgresSink', () => {
  it('inserts a batch with casts to each column type, jsonb for objects, arrays and epoch-ms timestamps', async () => {
    const sink = await opened({ maxRowsPerStatement: 3 });
    const result = await sink.write({ batchId: 'b1', records: [1, 2, 3, 4, 5, 6, 7].map((id) => order(id, id * 1.25)) });
    await sink.close();
    expect(result).toEqual({});
    const rows = await ordersById();
    expect(rows.size).toBe(7);
    expect(rows.get('2')).toEqual({
      id: '2', customer: 'c2', total: '2.50', paid: true, placed_at: new Date(1_700_000_000_002),
      tags: ['a', 'quote"d', 'back\\slash'], payload: { sku: 's2', qty: 2, nested: { __proto__x: 1, deep: [[[{}]]] } }, note: 'none',
    });
  });

  it('upserts on a key: a replayed batch rewrites the same rows, the last record per key wins', async () => {
    const sink = await opened({ upsert: { key: ['id'] } });
    expect(sink.pipelinedWrites).toBe(true);
    const records = [order(1, 100), order(100, 1), order(100, 2), order(101, 3)];
    await sink.write({ batchId: 'b2', records });
    await sink.write({ batchId: 'b2', records });
    await sink.close();
    const rows = await ordersById();
    expect([rows.get('1')?.['total'], rows.get('100')?.['total'], rows.get('101')?.['total']]).toEqual(['100.00', '2.00', '3.00']);
    expect(rows.size).toBe(9);
  });

  it('rejects the records Postgres or the mapping refuses, with reasons, and commits the rest', async () => {
    const sink = await opened({ upsert: { key: ['id'] } });
    const { rejected } = await sink.write({
      batchId: 'b3',
      records: [
        order(200, 1),
        order(201, 'not a number'),
        order(202, 1, { customer: {} }),
        order(203, { amount: 1 }),
        order(204, 1, { customer: { name: 'nul\u0000byte' } }),
        order(205, 99_999_999_999),
        { customer: { name: 'no id' }, total: 1 },
        order(206, 1, { placedAt: 'soon' }),
        order(207, 1),
      ],
    });
    await sink.close();
    expect(rejected?.map((r) => r.index)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const reasons = rejected?.map((r) => r.reason) ?? [];
    expect(reasons[0]).toMatch(/Postgres refused the row: invalid input syntax for type numeric/);
    expect(reasons[1]).toMatch(/null value in column "customer"/);
    expect(reasons[2]).toMatch(/column "total" \(numeric\(10,2\)\) from field total: expected a string, number or boolean, got an object/);
    expect(reasons[3]).toMatch(/0x00/);
    expect(reasons[4]).toMatch(/numeric field overflow/);
    expect(reasons[5]).toMatch(/key column "id": field id is missing/);
    expect(reasons[6]).toMatch(/invalid input syntax for type timestamp with time zone/);
    const rows = await ordersById();
    expect(['200', '201', '207'].map((id) => rows.has(id))).toEqual([true, false, true]);
  });

  it('writes through a shared pool without ending it', async () => {
    const pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 1 });
    const sink = await opened({ connectionString: undefined, table: 'events', columns: { seq: 'seq', kind: 'kind' } }, pool);
    expect(sink.pipelinedWrites).toBe(false);
    await sink.write({ batchId: 'b4', records: Array.from({ length: 2500 }, (_, i) => ({ seq: i, kind: i % 2 === 0 ? 'even' : 'odd' })) });
    await sink.close();
    const { rows } = await pool.query<{ n: string; s: string }>(`SELECT count(*) AS n, sum(seq) AS s FROM ${pg.escapeIdentifier(schema)}.events`);
    expect(rows[0]).toEqual({ n: '2500', s: String((2499 * 2500) / 2) });
    await pool.end();
  });

  it("built from a definition with its own connectionString, writes there and not through the application's pool", async () => {
    // The application's pool points nowhere: a sink that used it could not open.
    const elsewhere = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/none', max: 1, connectionTimeoutMillis: 1_000 });
    const sink = createSink({ ...definition({ table: 'events', columns: { seq: 'seq', kind: 'kind' } }) }, { pool: elsewhere });
    await sink.open({ pipelineId: 'p', checkpoint: undefined, signal });
    await sink.write({ batchId: 'own-1', records: [{ seq: -7, kind: 'own' }] });
    await sink.close();
    await elsewhere.end();
    const { rows } = await admin.query(`SELECT seq FROM ${pg.escapeIdentifier(schema)}.events WHERE kind = 'own'`);
    expect(rows).toEqual([{ seq: -7 }]);
  });

  it('writes into an embedded PGlite database given as the executor, rejecting refused rows, and leaves it open', async () => {
    const db = pgliteExecutor(await PGlite.create());
    await db.query('CREATE TABLE public.samples (name text NOT NULL, value double precision, at timestamptz, PRIMARY KEY (name, at))');
    const sink = new PostgresSink(
      { type: 'postgres', schema: 'public', table: 'samples', columns: { name: 'name', value: 'value', at: 'at' }, upsert: { key: ['name', 'at'] } },
      { executor: db },
    );
    await sink.open({ pipelineId: 'p', checkpoint: undefined, signal });
    const { rejected } = await sink.write({
      batchId: 'e1',
      records: [
        { name: 'up', value: 1, at: 1_700_000_000_000 },
        { name: 'up', value: 'NaN', at: 1_700_000_001_000 },
        { value: 3, at: 1_700_000_002_000 },
        { name: 'load', value: 'high', at: 1_700_000_003_000 },
      ],
    });
    expect(rejected?.map((r) => r.index)).toEqual([2, 3]);
    expect(rejected?.[1]?.reason).toMatch(/Postgres refused the row: invalid input syntax for type double precision/);
    await sink.write({ batchId: 'e1', records: [{ name: 'up', value: 2, at: 1_700_000_000_000 }] });
    await sink.close();
    expect(await db.query('SELECT name, value FROM public.samples ORDER BY at')).toEqual([
      { name: 'up', value: 2 },
      { name: 'up', value: Number.NaN },
    ]);
    await db.close();
  });

  it('fails a batch retriably when its connection dies mid-transaction, commits none of it, and writes it on the next try', async () => {
    const q = pg.escapeIdentifier(schema);
    await admin.query(`CREATE TABLE ${q}.fault_events (seq int PRIMARY KEY, kind text)`);
    await admin.query(`CREATE TABLE ${q}.fault_flag (armed boolean)`);
    // The server kills the connection that inserts row 10005 while the flag is set: after the first statement of the batch.
    await admin.query(`CREATE FUNCTION ${q}.die() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.seq = 10005 AND EXISTS (SELECT 1 FROM ${q}.fault_flag) THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
        RETURN NEW;
      END $$`);
    await admin.query(`CREATE TRIGGER die BEFORE INSERT ON ${q}.fault_events FOR EACH ROW EXECUTE FUNCTION ${q}.die()`);
    await admin.query(`INSERT INTO ${q}.fault_flag VALUES (true)`);
    const sink = await opened({ table: 'fault_events', columns: { seq: 'seq', kind: 'kind' }, upsert: { key: ['seq'] }, maxRowsPerStatement: 4, maxConnections: 1 });
    const records = Array.from({ length: 10 }, (_, i) => ({ seq: 10_000 + i, kind: 'retried' }));
    const error = await sink.write({ batchId: 'b5', records }).catch((e: unknown) => e);
    expect(isDataflowError(error, 'connector/failed')).toBe(true);
    expect((error as { retriable: boolean }).retriable).toBe(true);
    const count = async (): Promise<string | undefined> => (await admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${q}.fault_events`)).rows[0]?.n;
    expect(await count()).toBe('0');
    await admin.query(`DELETE FROM ${q}.fault_flag`);
    expect(await sink.write({ batchId: 'b5', records })).toEqual({});
    await sink.close();
    expect(await count()).toBe('10');
  });

  it('checks the mapping and the upsert key against the table on open', async () => {
    const unknown = await opened({ columns: { id: 'id', nope: 'x' } }).catch((e: unknown) => e);
    expect((unknown as Error).message).toMatch(/column "nope" does not exist/);
    const noConstraint = await opened({ upsert: { key: ['customer'] } }).catch((e: unknown) => e);
    expect(isDataflowError(noConstraint, 'connector/failed')).toBe(true);
    expect((noConstraint as Error).message).toMatch(/no unique or exclusion constraint matching the ON CONFLICT/);
    expect((noConstraint as { retriable: boolean }).retriable).toBe(false);
    const missing = await opened({ table: 'missing' }).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/"missing" does not exist/);
  });

  it('fails retriably when Postgres cannot be reached, without the password in the error', async () => {
    const error = await opened({ connectionString: 'postgres://someone:s3cret-pw@127.0.0.1:1/db' }).catch((e: unknown) => e);
    expect(isDataflowError(error, 'connector/failed')).toBe(true);
    expect((error as { retriable: boolean }).retriable).toBe(true);
    expect((error as Error).message).not.toContain('s3cret-pw');
  });

  it('names bad fields of a definition', () => {
    const issues = (() => {
      try {
        new PostgresSink({ ...definition(), table: 'Bad Name', columns: JSON.parse('{"__proto__": "a", "ok": "b..c"}') as Record<string, string>, upsert: { key: ['zz'] } });
      } catch (error) {
        return (error as InvalidConnectorOptionsError).issues.map((i) => i.path);
      }
      return [];
    })();
    expect(issues).toEqual(['table', 'columns.__proto__']);
    expect(() => new PostgresSink({ ...definition(), columns: { ok: 'b..c' }, upsert: { key: ['id'] } })).toThrow(/columns\.ok: Invalid field path/);
    expect(() => new PostgresSink({ ...definition(), upsert: { key: ['zz', 'id'], update: ['id'] } })).toThrow(
      /upsert\.key\.0: key column "zz" is not in columns; upsert\.update\.0: column "id" is part of the key/,
    );
    expect(() => new PostgresSink({ ...definition(), connectionString: undefined })).toThrow(/connectionString: a connection string is needed/);
  });
});
