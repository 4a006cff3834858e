/**
 * Parallel tasks survive a crash (ADR 0013): a Kafka topic of 6 partitions,
 * a pipeline with `parallelism: 3` (three pipeline entities, one consumer
 * group) into an upserting Postgres sink, run in a child process that is
 * killed with SIGKILL twice mid-stream and restarted. Each restart resumes
 * every task from its own checkpoint (partitions may land on other tasks
 * than before: they start at the furthest of the task's checkpoint and the
 * group's committed offset, committed only after a durable checkpoint). The
 * table ends with exactly one row per record: none lost, re-reads rewrite
 * the same rows.
 */
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaClient } from '../kafka/kafka-client.js';
import { parseKafkaProducerOptions } from '../kafka/kafka-options.js';
import type { KafkaAdmin, KafkaClient, ProducerRecord } from '../kafka/kafka-port.js';

const RECORDS = 30_000;
const PARTITIONS = 6;
const PARALLELISM = 3;

const child = fileURLToPath(new URL('./harness/parallel-tasks-child.test.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');

type Line = { type: 'recovered'; statuses: string[]; offsets: number } | { type: 'progress'; offsets: number } | { type: 'done'; offsets: number; groups: (string | null)[]; processed: number[] } | { type: 'error'; message: string };

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly lines: Line[];
  readonly stderr: string;
}

/** Runs the child; `killAt` (checkpointed offsets) kills it with SIGKILL once progress reaches it. */
function runChild(env: Record<string, string>, killAt: number | undefined): Promise<Run> {
  const proc = spawn(process.execPath, ['--conditions=@dataflow/source', '--import', tsx, child], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Line[] = [];
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  createInterface({ input: proc.stdout }).on('line', (text) => {
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch {
      stderr += `[stdout] ${text}\n`;
      return;
    }
    lines.push(line);
    if (killAt !== undefined && line.type === 'progress' && line.offsets >= killAt) proc.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code, signal) => resolve({ code, signal, lines, stderr }));
  });
}

const describeRun = (run: Run) => `code ${run.code}, signal ${run.signal}: ${JSON.stringify(run.lines.slice(-3))} ${run.stderr.slice(-2000)}`;

describe('Kafka parallel tasks crash test', () => {
  const ns = testNamespace(import.meta.url);
  const topic = `${ns}.input`;
  const settings = serviceSettings();
  let kafka: KafkaClient;
  let admin: KafkaAdmin;
  let pool: pg.Pool;

  beforeAll(async () => {
    kafka = createKafkaClient({ client: 'kafkajs', brokers: [...settings.kafkaBrokers], clientId: ns });
    admin = await kafka.admin();
    await admin.createTopics([{ topic, partitions: PARTITIONS }]);
    const producer = await kafka.producer(parseKafkaProducerOptions('kafkajs', {}));
    try {
      for (let i = 0; i < RECORDS; i += 2_000) {
        const chunk: ProducerRecord[] = [];
        for (let j = i; j < Math.min(RECORDS, i + 2_000); j++) chunk.push({ topic, key: Buffer.from(String(j)), value: Buffer.from(JSON.stringify({ id: j })) });
        await producer.send(chunk);
      }
    } finally {
      await producer.close();
    }
    pool = new pg.Pool({ connectionString: settings.postgresUrl, max: 2 });
    await pool.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(ns)}`);
    await pool.query(`CREATE TABLE ${pg.escapeIdentifier(ns)}.rows (id bigint PRIMARY KEY, part int NOT NULL, kafka_offset bigint NOT NULL)`);
  }, 120_000);

  afterAll(async () => {
    await admin?.deleteTopics([topic]).catch(() => undefined);
    await admin?.close();
    await pool?.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(ns)} CASCADE`);
    await pool?.end();
  }, 60_000);

  it('ends with exactly one row per record after two SIGKILLs of the process running the three tasks', { timeout: 600_000 }, async () => {
    const definition = {
      name: 'kafka-parallel-crash',
      parallelism: PARALLELISM,
      source: { type: 'kafka', brokers: [...settings.kafkaBrokers], topics: [topic], format: 'json', sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, fetchMaxWaitMs: 100 },
      sink: { type: 'postgres', connectionString: settings.postgresUrl, schema: ns, table: 'rows', columns: { id: 'value.id', part: 'partition', kafka_offset: 'offset' }, upsert: { key: ['id'] } },
      batch: { size: 200, maxWaitMs: 100 },
      retry: { maxRetries: 0 },
    };
    const env = {
      CRASH_POSTGRES_URL: settings.postgresUrl,
      CRASH_SCHEMA: ns,
      CRASH_PIPELINE_ID: 'parallel',
      CRASH_DEFINITION: JSON.stringify(definition),
      CRASH_STOP_AT_OFFSETS: String(RECORDS),
    };
    const rows = async () => Number((await pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${pg.escapeIdentifier(ns)}.rows`)).rows[0]?.n ?? -1);
    const runs: Run[] = [];
    const killedAt: number[] = [];
    for (const killAt of [Math.round(RECORDS * 0.25), Math.round(RECORDS * 0.6)]) {
      const run = await runChild(env, killAt);
      runs.push(run);
      expect(run.signal, describeRun(run)).toBe('SIGKILL');
      killedAt.push(await rows());
    }
    const last = await runChild(env, undefined);
    runs.push(last);
    expect(last.code, describeRun(last)).toBe(0);
    const done = last.lines.at(-1);
    expect(done).toMatchObject({ type: 'done', offsets: RECORDS });
    // One consumer group for the three tasks, named after the pipeline; together they read each record about once
    // (re-reads after the kills and rebalances only), not once per task.
    expect(done?.type === 'done' ? done.groups : []).toEqual(['dataflow-parallel', 'dataflow-parallel', 'dataflow-parallel']);
    const processed = done?.type === 'done' ? done.processed : [];
    for (const n of processed) expect(n).toBeGreaterThan(0);
    const total = processed.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(RECORDS);
    expect(total).toBeLessThan(RECORDS * 1.5);

    // Each kill landed mid-stream, and each restart resumed all three tasks from checkpoints of the run before (not from the start).
    for (const n of killedAt) {
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThan(RECORDS);
    }
    expect(runs[0]?.lines[0]).toMatchObject({ type: 'recovered', statuses: ['empty', 'empty', 'empty'], offsets: 0 });
    for (const run of runs.slice(1)) {
      const recovered = run.lines[0];
      expect(recovered, describeRun(run)).toMatchObject({ type: 'recovered', statuses: ['running', 'running', 'running'] });
      expect(recovered?.type === 'recovered' ? recovered.offsets : 0).toBeGreaterThan(0);
    }
    const result = await pool.query<{ n: string; ids: string; min: string; max: string }>(`SELECT count(*) AS n, count(DISTINCT id) AS ids, min(id) AS min, max(id) AS max FROM ${pg.escapeIdentifier(ns)}.rows`);
    expect(result.rows[0]).toEqual({ n: String(RECORDS), ids: String(RECORDS), min: '0', max: String(RECORDS - 1) });
    console.log(`kafka parallel crash test: rows at the kills ${JSON.stringify(killedAt)}, records per task ${JSON.stringify(processed)}, recovered ${JSON.stringify(runs.map((r) => r.lines[0]))}`);
  });
});
