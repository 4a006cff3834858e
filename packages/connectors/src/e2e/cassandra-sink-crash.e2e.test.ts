/**
 * The Cassandra half of the exactly-once proof (issue 11 item 9): a pipeline
 * writing to Cassandra on the real Postgres journal, in a child process
 * killed with SIGKILL twice during the run (once at a seeded random moment,
 * once exactly between a sink write and the checkpoint that would cover it),
 * restarted each time and run to the end, leaves exactly the expected rows:
 * every record's row, with its values, and no other. The rows are keyed by
 * the record, so the batches re-driven after each crash rewrite the same rows.
 *
 * The source is the generator (deterministic per index: a restart from
 * offset N reproduces record N + 1), paced so that the kills land mid-run.
 * The Kafka source variant is `kafka-cassandra-crash.e2e.test.ts`.
 */
import type { DataRecord } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Client } from 'cassandra-driver';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GeneratorSource, type GeneratorSourceDefinition } from '../generator/generator-source.js';
import { crashRunProblems, recoveredOf, runKillPlan, seeded, type KillStep } from './harness/crash-harness.js';

const RECORDS = 20_000;
const BATCH_SIZE = 200;
const SEED = 0x5eed_1109;

const source: GeneratorSourceDefinition = {
  type: 'generator',
  count: RECORDS,
  rate: 4000,
  seed: 9,
  fields: {
    timestamp: { kind: 'sequence', start: 1_700_000_000_000 },
    metric_name: { kind: 'pick', values: Array.from({ length: 12 }, (_, i) => `metric_${i}`) },
    job: { kind: 'pick', values: ['node', 'api', 'db'] },
    value: { kind: 'float', min: -1000, max: 1000, decimals: 4 },
  },
};

/** Every record the generator emits, by hand: the rows the table must end with. */
async function expectedRecords(): Promise<DataRecord[]> {
  const generator = new GeneratorSource({ ...source, rate: 0 });
  await generator.open({ pipelineId: 'expected', checkpoint: undefined, signal: new AbortController().signal });
  const out: DataRecord[] = [];
  for (;;) {
    const polled = await generator.poll(5000, 0);
    for (const record of polled.records) if (record.ok) out.push(record.value);
    if (polled.done) break;
  }
  await generator.close();
  return out;
}

describe('Cassandra sink crash test', () => {
  let keyspace: string;
  let client: Client;
  let pool: pg.Pool;

  beforeAll(async () => {
    keyspace = testNamespace(import.meta.url);
    const services = serviceSettings();
    client = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
    await client.connect();
    await client.execute(`CREATE KEYSPACE IF NOT EXISTS ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    pool = new pg.Pool({ connectionString: services.postgresUrl, max: 1 });
  }, 60_000);

  afterAll(async () => {
    await client?.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    await client?.shutdown();
    await pool?.query(`DROP SCHEMA IF EXISTS "${keyspace}" CASCADE`);
    await pool?.end();
  }, 60_000);

  it('ends with exactly the expected rows through SIGKILLs at a random moment and between a sink write and its checkpoint', { timeout: 300_000 }, async () => {
    const services = serviceSettings();
    const definition = {
      name: 'cassandra-crash-test',
      source,
      transforms: [],
      sink: {
        type: 'cassandra',
        contactPoints: [...services.cassandraContactPoints],
        localDataCenter: services.cassandraLocalDataCenter,
        keyspace,
        table: 'samples',
        columns: { metric_name: 'metric_name', job: 'job', timestamp: 'timestamp', value: 'value', seq: 'timestamp' },
        createTable: {
          columns: { metric_name: 'text', job: 'text', timestamp: 'timestamp', value: 'double', seq: 'bigint' },
          partitionKey: ['metric_name', 'job'],
          clusteringKey: [{ column: 'timestamp', order: 'DESC' }],
        },
        maxBatchRows: 20,
      },
      batch: { size: BATCH_SIZE, maxWaitMs: 100 },
      retry: { maxRetries: 0 },
    };
    const random = seeded(SEED);
    const plan: KillStep[] = [
      { kind: 'random', atRecords: Math.round(RECORDS * (0.1 + 0.2 * random())), delayMs: Math.floor(random() * 25) },
      { kind: 'after-write', writes: 3 + Math.floor(random() * 10) },
    ];
    const countRows = async (): Promise<number> => Number((await client.execute(`SELECT count(*) AS n FROM ${keyspace}.samples`, [], { readTimeout: 60_000 })).first()?.['n'] ?? -1);
    const { runs, kills } = await runKillPlan(
      { postgresUrl: services.postgresUrl, schema: keyspace, pipelineId: 'cassandra-crash', definition },
      plan,
      countRows,
    );
    expect(runs.at(-1)?.messages.at(-1)).toMatchObject({ type: 'done', records: RECORDS });
    console.log(`cassandra crash test (seed ${SEED}): ${JSON.stringify(kills)}`);
    // Each kill landed mid-run; each restart resumed from its predecessor's checkpoint; no batch failed.
    expect(crashRunProblems(runs, kills, RECORDS)).toEqual([]);
    // The kill after a sink write left rows the checkpoint does not cover (one row per record): the restart re-drove them.
    const afterWrite = kills.findIndex((kill) => kill.kind === 'after-write');
    const recoveredAfterIt = runs[afterWrite + 1] === undefined ? undefined : recoveredOf(runs[afterWrite + 1]!);
    expect(kills[afterWrite]?.measured).toBeGreaterThan(recoveredAfterIt?.records ?? Number.POSITIVE_INFINITY);

    const expected = await expectedRecords();
    expect(expected).toHaveLength(RECORDS);
    const rows = new Map<string, { value: number; seq: string }>();
    let count = 0;
    let pageState: string | undefined;
    do {
      const page = await client.execute(`SELECT metric_name, job, timestamp, value, seq FROM ${keyspace}.samples`, [], {
        prepare: true,
        fetchSize: 5000,
        ...(pageState === undefined ? {} : { pageState }),
      });
      for (const row of page.rows) {
        count++;
        rows.set(`${row['metric_name'] as string}|${row['job'] as string}|${(row['timestamp'] as Date).getTime()}`, {
          value: row['value'] as number,
          seq: (row['seq'] as { toString(): string }).toString(),
        });
      }
      pageState = page.pageState ?? undefined;
    } while (pageState !== undefined);
    expect(count).toBe(RECORDS);
    const mismatches = expected.filter((record) => {
      const timestamp = record['timestamp'] as number;
      const row = rows.get(`${record['metric_name'] as string}|${record['job'] as string}|${timestamp}`);
      return row === undefined || row.value !== record['value'] || row.seq !== String(timestamp);
    });
    expect(mismatches.slice(0, 3)).toEqual([]);
  });
});
