import { isDataflowError, type DataRecord } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Client, type types } from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CassandraSink, type CassandraSinkDefinition } from './cassandra-sink.js';

const SEED_TABLE = `CREATE TABLE IF NOT EXISTS %KS%.prometheus_metrics (metric_name text, timestamp timestamp, value double,
  labels map<text, text>, job text, PRIMARY KEY ((metric_name, job), timestamp)) WITH CLUSTERING ORDER BY (timestamp DESC)`;

const SEED_COLUMNS = { metric_name: 'metric_name', job: 'job', timestamp: 'timestamp', value: 'value', labels: 'labels' };

let keyspace: string;
let admin: Client;
const signal = new AbortController().signal;

beforeAll(async () => {
  keyspace = testNamespace(import.meta.url);
  const services = serviceSettings();
  admin = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
  await admin.connect();
  await admin.execute(`CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
  await admin.execute(SEED_TABLE.replace('%KS%', keyspace));
}, 60_000);

afterAll(async () => {
  await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
  await admin.shutdown();
}, 60_000);

function definition(overrides: Partial<CassandraSinkDefinition> = {}): CassandraSinkDefinition {
  const services = serviceSettings();
  return {
    type: 'cassandra',
    contactPoints: [...services.cassandraContactPoints],
    localDataCenter: services.cassandraLocalDataCenter,
    keyspace,
    table: 'prometheus_metrics',
    columns: SEED_COLUMNS,
    ...overrides,
  };
}

async function opened(overrides: Partial<CassandraSinkDefinition> = {}): Promise<CassandraSink> {
  const sink = new CassandraSink(definition(overrides));
  await sink.open({ pipelineId: 'p', checkpoint: undefined, signal });
  return sink;
}

const sample = (metric: string, job: string, timestamp: number | string, value: DataRecord['value'], labels: Record<string, string> = {}): DataRecord => ({
  metric_name: metric,
  job,
  instance: 'localhost:9100',
  timestamp,
  value,
  labels,
});

async function rowsOf(table: string, metric: string, job: string): Promise<types.Row[]> {
  const result = await admin.execute(`SELECT * FROM ${keyspace}.${table} WHERE metric_name = ? AND job = ?`, [metric, job], { prepare: true });
  return result.rows;
}

describe('CassandraSink on the seed table', () => {
  it('writes C4 samples with labels, NaN / +Inf / -Inf and epoch or ISO timestamps', async () => {
    const sink = await opened();
    const result = await sink.write({
      batchId: 'b1',
      records: [
        sample('up', 'node', 1_700_000_000_000, 1, { instance: 'a' }),
        sample('temp', 'node', 1_700_000_000_000, 'NaN'),
        sample('temp', 'node', 1_700_000_001_000, '+Inf'),
        sample('temp', 'node', '2023-11-14T22:13:22.000Z', '-Inf', { __proto__x: 'p', 'le': '0.5' }),
      ],
    });
    await sink.close();
    expect(result).toEqual({});
    const up = await rowsOf('prometheus_metrics', 'up', 'node');
    expect(up.map((r) => ({ ts: (r['timestamp'] as Date).getTime(), value: r['value'] as number, labels: r['labels'] as unknown }))).toEqual([
      { ts: 1_700_000_000_000, value: 1, labels: { instance: 'a' } },
    ]);
    const temp = await rowsOf('prometheus_metrics', 'temp', 'node');
    expect(temp.map((r) => [(r['timestamp'] as Date).getTime(), r['value'] as number, r['labels'] as unknown])).toEqual([
      [Date.parse('2023-11-14T22:13:22.000Z'), Number.NEGATIVE_INFINITY, { __proto__x: 'p', le: '0.5' }],
      [1_700_000_001_000, Number.POSITIVE_INFINITY, null],
      [1_700_000_000_000, Number.NaN, null],
    ]);
  });

  it('rewrites the same rows when a batch is replayed (idempotent by key)', async () => {
    const records = Array.from({ length: 300 }, (_, i) => sample('replayed', `job${i % 3}`, 1_700_000_000_000 + i, i, { i: String(i) }));
    const sink = await opened({ maxBatchRows: 7, maxConcurrency: 4 });
    await sink.write({ batchId: 'b1', records });
    await sink.write({ batchId: 'b1', records });
    await sink.close();
    const again = await opened();
    await again.write({ batchId: 'b1', records });
    await again.close();
    for (const job of ['job0', 'job1', 'job2']) {
      const rows = await rowsOf('prometheus_metrics', 'replayed', job);
      expect(rows).toHaveLength(100);
      for (const row of rows) {
        const i = (row['timestamp'] as Date).getTime() - 1_700_000_000_000;
        expect([row['value'], row['labels']]).toEqual([i, { i: String(i) }]);
      }
    }
  });

  it('rejects records that do not fit, with the reason, and writes the rest of the batch', async () => {
    const sink = await opened({ maxRowBytes: 4096 });
    const huge = 'x'.repeat(10_000);
    const { rejected } = await sink.write({
      batchId: 'b2',
      records: [
        sample('mixed', 'j', 1, 1),
        sample('mixed', 'j', 2, 'fast'),
        sample('mixed', 'j', 'yesterday', 3),
        { metric_name: 'mixed', timestamp: 4, value: 4 },
        sample('mixed', 'j', 5, 5, { deep: { nested: 'no' } } as unknown as Record<string, string>),
        sample('mixed', 'j', 6, 6, { big: huge }),
        sample('mixed', 'j', 7, 7),
      ],
    });
    await sink.close();
    expect(rejected?.map((r) => r.index)).toEqual([1, 2, 3, 4, 5]);
    expect(rejected?.[0]?.reason).toMatch(/column "value" \(double\) from field value: expected a number or one of "NaN", "\+Inf", "-Inf"/);
    expect(rejected?.[1]?.reason).toMatch(/column "timestamp".*epoch milliseconds or an ISO-8601 string/);
    expect(rejected?.[2]?.reason).toMatch(/primary key column "job": field job is missing/);
    expect(rejected?.[3]?.reason).toMatch(/column "labels".*map entry "deep": expected a string/);
    expect(rejected?.[4]?.reason).toMatch(/more than maxRowBytes/);
    expect(rejected?.[4]?.reason).not.toContain(huge.slice(0, 100));
    const rows = await rowsOf('prometheus_metrics', 'mixed', 'j');
    expect(rows.map((r) => (r['timestamp'] as Date).getTime()).sort()).toEqual([1, 7]);
  });

  it('rejects a partition key over 64 KiB before sending, and a row Cassandra refuses (a clustering key over 64 KiB) after', async () => {
    const sink = await opened({
      table: 'refusals',
      columns: { id: 'id', name: 'name', value: 'value' },
      createTable: { columns: { id: 'text', name: 'text', value: 'double' }, partitionKey: ['id'], clusteringKey: ['name'] },
    });
    const { rejected } = await sink.write({
      batchId: 'b3',
      records: [
        { id: 'k'.repeat(70_000), name: 'a', value: 1 },
        { id: 'p', name: 'n'.repeat(70_000), value: 1 },
        { id: 'p', name: 'a', value: 2 },
        { id: 'p', name: 'b', value: 3 },
      ],
    });
    await sink.close();
    expect(rejected?.map((r) => r.index)).toEqual([0, 1]);
    expect(rejected?.[0]?.reason).toMatch(/primary key column "id" takes 70000 bytes; Cassandra allows at most 65535/);
    expect(rejected?.[1]?.reason).toMatch(/Cassandra refused the row: .*65535/);
    const { rows } = await admin.execute(`SELECT name, value FROM ${keyspace}.refusals WHERE id = 'p'`);
    expect(rows.map((r): unknown[] => [r['name'], r['value']])).toEqual([['a', 2], ['b', 3]]);
  });

  it('keeps the last of several rows with one primary key in a batch', async () => {
    const sink = await opened({ maxBatchRows: 2 });
    await sink.write({ batchId: 'b4', records: [1, 2, 3, 4, 5].map((v) => sample('dupes', 'j', 1000, v)) });
    await sink.close();
    const rows = await rowsOf('prometheus_metrics', 'dupes', 'j');
    expect(rows.map((r): unknown => r['value'])).toEqual([5]);
  });

  it('the seed key keeps one of the series that differ only in labels; a key with the labels keeps every series', async () => {
    const scrape = ['GET', 'POST', 'PUT'].map((method) => sample('http_requests_total', 'api', 1_700_000_000_000, 1, { method }));
    const seed = await opened();
    await seed.write({ batchId: 'b5', records: scrape });
    await seed.close();
    expect(await rowsOf('prometheus_metrics', 'http_requests_total', 'api')).toHaveLength(1);

    const series = await opened({
      table: 'prometheus_series',
      columns: { ...SEED_COLUMNS, instance: 'instance' },
      createTable: {
        columns: { metric_name: 'text', job: 'text', instance: 'text', labels: 'frozen<map<text, text>>', timestamp: 'timestamp', value: 'double' },
        partitionKey: ['metric_name', 'job'],
        clusteringKey: ['instance', 'labels', { column: 'timestamp', order: 'DESC' }],
      },
    });
    await series.write({ batchId: 'b5', records: scrape });
    await series.write({ batchId: 'b5', records: scrape });
    await series.close();
    const rows = await rowsOf('prometheus_series', 'http_requests_total', 'api');
    expect(rows.map((r) => (r['labels'] as Record<string, string>)['method']).sort()).toEqual(['GET', 'POST', 'PUT']);
  });

  it('creates a table from raw CQL', async () => {
    const sink = await opened({
      table: 'raw_created',
      columns: { id: 'id', total: 'order.total', tags: 'tags' },
      createTable: { cql: `CREATE TABLE IF NOT EXISTS ${keyspace}.raw_created (id bigint PRIMARY KEY, total decimal, tags set<text>)` },
    });
    const { rejected } = await sink.write({
      batchId: 'b6',
      records: [{ id: '9007199254740993', order: { total: '12.50' }, tags: ['a', 'b'] }, { id: 2, tags: ['c'] }],
    });
    await sink.close();
    expect(rejected).toBeUndefined();
    const { rows } = await admin.execute(`SELECT id, total, tags FROM ${keyspace}.raw_created`);
    const byId = new Map(rows.map((r) => [String(r['id']), r]));
    expect(String(byId.get('9007199254740993')?.['total'])).toBe('12.50');
    expect(byId.get('9007199254740993')?.['tags']).toEqual(['a', 'b']);
    expect(byId.get('2')?.['total']).toBeNull();
  });

  it('refuses a mapping that does not fit the table, naming the columns', async () => {
    const error = await opened({ columns: { metric_name: 'metric_name', timestamp: 'timestamp', nope: 'x' } }).catch((e: unknown) => e);
    expect(isDataflowError(error, 'connector/failed')).toBe(true);
    expect((error as Error).message).toMatch(/column "nope" does not exist/);
    expect((error as Error).message).toMatch(/primary key column "job" is not mapped/);
    expect((error as { retriable: boolean }).retriable).toBe(false);

    const missing = await opened({ table: 'no_such_table' }).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/no_such_table" does not exist/);
  });

  it('fails the batch, not its rows, when the table is dropped under it', async () => {
    const sink = await opened({
      table: 'dropped',
      columns: { id: 'id', v: 'v' },
      createTable: { columns: { id: 'text', v: 'int' }, partitionKey: ['id'] },
    });
    await sink.write({ batchId: 'b7', records: [{ id: 'a', v: 1 }] });
    await admin.execute(`DROP TABLE ${keyspace}.dropped`);
    const error = await sink.write({ batchId: 'b8', records: [{ id: 'a', v: 1 }, { id: 'b', v: 2 }] }).catch((e: unknown) => e);
    await sink.close();
    expect(isDataflowError(error, 'connector/failed')).toBe(true);
    expect((error as Error).message).toMatch(/cannot write 1 row\(s\) to .*dropped/);
  });

  it('fails retriably when Cassandra cannot be reached', async () => {
    const error = await opened({ contactPoints: ['127.0.0.1:1'], requestTimeoutMs: 2000 }).catch((e: unknown) => e);
    expect(isDataflowError(error, 'connector/failed')).toBe(true);
    expect((error as { retriable: boolean }).retriable).toBe(true);
  });

  it('never puts the password into an error, also when the driver fails with credentials set', async () => {
    const password = 'pw-do-not-leak-7f3a';
    const error = await opened({ contactPoints: ['127.0.0.1:1'], requestTimeoutMs: 2000, credentials: { username: 'dataflow', password } }).catch((e: unknown) => e);
    expect(isDataflowError(error, 'connector/failed')).toBe(true);
    expect(`${(error as Error).message} ${(error as Error).stack ?? ''} ${JSON.stringify(error)}`).not.toContain(password);
    // Against the real server (which does not ask for authentication) the credentials are accepted and writing works.
    const sink = await opened({ credentials: { username: 'dataflow', password } });
    expect(await sink.write({ batchId: 'b9', records: [sample('with_credentials', 'j', 1, 1)] })).toEqual({});
    await sink.close();
  });
});
