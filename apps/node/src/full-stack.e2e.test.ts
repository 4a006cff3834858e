/**
 * The whole stack in production's shape (issue 13 item 11): a node process
 * with its journal on Cassandra, Redis, the Postgres server and Kafka from
 * a YAML file; two pipelines created through the admin API (Kafka →
 * Cassandra table, Kafka → Postgres table, both upserting on the message
 * key); the node SIGKILLed while the topic is still being written; started
 * again on the same file. Both pipelines must come back `running` by
 * themselves, resume from their checkpoints (their counts go on from where
 * the journal left them, not from zero, and not twice), and end with every
 * message exactly once in both tables, including those produced after the
 * restart; the counts of the API, the checkpoints, the coordinator's
 * registry and the journal's own batches all agree with what was produced.
 *
 * Two cases, side by side: without `node.id` the restarted node is a new
 * holder of the Cassandra writer leases and waits until the killed
 * process's lapse (about 20 s, degraded meanwhile); with a stable `node.id`
 * it renews them at once. Kafka's rebalance waits out the killed consumer's
 * session (6 s) in both. The whole file takes about 40 s on an idle machine.
 */
import { createKafkaClient, decodeKafkaSourceOffset, parseKafkaProducerOptions, type KafkaAdmin, type KafkaClient, type ProducerRecord } from '@dataflow/connectors';
import type { SourceOffset } from '@dataflow/core';
import { serviceSettings, testNamespace, type ServiceSettings } from '@dataflow/test-env';
import { Client } from 'cassandra-driver';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, it, vi } from 'vitest';

const root = resolve(import.meta.dirname, '../../..');
/** Produced while the first node runs (it is killed part way through), then the rest once the second one runs. */
const BEFORE_RESTART = 16_000;
const AFTER_RESTART = 4_000;
const TOTAL = BEFORE_RESTART + AFTER_RESTART;
const PARTITIONS = 3;
/** Produced before the kill is prepared: the pipelines have read half of it when the rest starts to flow. */
const GATE = 4_000;

const message = (i: number) => ({ id: i, v: i / 4 });
const keyOf = (i: number) => `k${i}`;

interface LogLine {
  readonly log_level: string;
  readonly message: string;
}

interface NodeRun {
  readonly child: ChildProcess;
  readonly logs: LogLine[];
  readonly exited: Promise<number | null>;
  /** The admin API's base URL, once the node said where it listens. */
  api(): Promise<string>;
}

const children: ChildProcess[] = [];

/** The node as `npm start` runs it (without npm in between: SIGKILL reaches the node itself), on a configuration file. */
function startNode(configFile: string): NodeRun {
  // Only what the node needs: the DATAFLOW_* variables of the test run (ports 0, brokers, ...) must not override the file.
  const child = spawn(process.execPath, ['--import', './apps/node/bin/early-signals.mjs', '--import', 'tsx', '--conditions=@dataflow/source', 'apps/node/src/main.ts'], {
    cwd: root,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '', DATAFLOW_CONFIG: configFile },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  const logs: LogLine[] = [];
  const raw: string[] = [];
  let rest = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) {
      raw.push(line);
      if (line.startsWith('{')) logs.push(JSON.parse(line) as LogLine);
    }
  });
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  return {
    child,
    logs,
    exited,
    api: () =>
      vi.waitFor(
        () => {
          if (exitCode !== undefined) throw new Error(`the node exited (${exitCode}) before serving its API:\n${raw.join('\n')}`);
          const line = logs.find((l) => l.message.startsWith('admin API and console on '))?.message;
          const url = line === undefined ? undefined : /on (http:\/\/[^/]+)\//.exec(line)?.[1];
          if (url === undefined) throw new Error(`no API line yet:\n${raw.join('\n')}`);
          return url;
        },
        { timeout: 90_000, interval: 100 },
      ),
  };
}

interface PipelineMetrics {
  readonly recordsProcessed: number;
  readonly recordsFailed: number;
  readonly recordsDeadLettered: number;
}
interface Checkpoint {
  readonly batchId: string;
  readonly sourceOffset: SourceOffset;
  readonly recordsProcessed: number;
}
interface JournalEvent {
  readonly sequenceNr: number;
  readonly eventType: string;
  readonly writerId: string;
  readonly payload: { readonly batchId?: string; readonly successCount?: number; readonly checkpoint?: Checkpoint };
}

async function call<T>(base: string, path: string, init: RequestInit = {}): Promise<T> {
  const response = await fetch(`${base}${path}`, init);
  const body = (await response.json()) as T;
  if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${path}: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body;
}

interface Registered {
  readonly id: string;
  readonly status: string;
  readonly totalRecords: number;
  readonly failedRecords: number;
}
const registry = async (base: string): Promise<Registered[]> => (await call<{ pipelines: Registered[] }>(base, '/api/v1/pipelines')).pipelines;
const statuses = async (base: string): Promise<Record<string, string>> => Object.fromEntries((await registry(base)).map((p) => [p.id, p.status]));
const metricsOf = (base: string, id: string) => call<PipelineMetrics>(base, `/api/v1/pipelines/${id}/metrics`);
const checkpointOf = async (base: string, id: string) => (await call<{ checkpoint: Checkpoint | null }>(base, `/api/v1/pipelines/${id}/offsets`)).checkpoint;

/** Every event of the pipeline's journal still there (events covered by a snapshot are deleted). */
async function journalOf(base: string, id: string): Promise<JournalEvent[]> {
  const events: JournalEvent[] = [];
  let after: number | null = 0;
  while (after !== null) {
    const page: { events: JournalEvent[]; next: number | null } = await call(base, `/api/v1/pipelines/${id}/events?after=${after}&limit=500`);
    events.push(...page.events);
    after = page.next;
  }
  return events;
}

/**
 * What the journal says against "each batch applied once": no batch id is
 * recorded twice, the events after the first one still there follow each
 * other without a gap, and each checkpoint (one per journal write, covering
 * the batches completed in that write) adds exactly those batches' records.
 */
function checkpointProblems(events: readonly JournalEvent[]): string[] {
  const problems: string[] = [];
  const batches = new Set<string>();
  let pending = 0;
  let counted: number | undefined;
  for (const [i, event] of events.entries()) {
    const previous = events[i - 1];
    if (previous !== undefined && event.sequenceNr !== previous.sequenceNr + 1) problems.push(`#${event.sequenceNr} follows #${previous.sequenceNr}`);
    const { batchId, successCount, checkpoint } = event.payload;
    switch (event.eventType) {
      case 'PipelineFailed':
        problems.push(`#${event.sequenceNr}: PipelineFailed ${JSON.stringify(event.payload)}`);
        break;
      case 'BatchIngested':
        if (batches.has(batchId ?? '')) problems.push(`#${event.sequenceNr}: batch ${batchId} recorded twice`);
        batches.add(batchId ?? '');
        break;
      case 'BatchProcessed':
        pending += successCount ?? Number.NaN;
        break;
      case 'CheckpointUpdated':
        if (counted !== undefined && checkpoint?.recordsProcessed !== counted + pending) {
          problems.push(`#${event.sequenceNr}: checkpoint of ${checkpoint?.batchId} counts ${checkpoint?.recordsProcessed}, expected ${counted} + ${pending}`);
        }
        counted = checkpoint?.recordsProcessed;
        pending = 0;
        break;
    }
  }
  return problems;
}

/** What one case creates, dropped after it. */
interface Resources {
  readonly ns: string;
  readonly journalKeyspace: string;
  readonly topic: string;
  readonly dir: string;
}

describe('a node on Cassandra, Kafka, Postgres and Redis, SIGKILLed mid-stream', () => {
  let services: ServiceSettings;
  let kafka: KafkaClient;
  let admin: KafkaAdmin | undefined;
  let cassandra: Client | undefined;
  let pool: pg.Pool | undefined;
  const created: Resources[] = [];

  beforeAll(async () => {
    services = serviceSettings();
    kafka = createKafkaClient({ client: 'kafkajs', brokers: [...services.kafkaBrokers], clientId: testNamespace(import.meta.url) });
    admin = await kafka.admin();
    cassandra = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
    await cassandra.connect();
    pool = new pg.Pool({ connectionString: services.postgresUrl, max: 2 });
  }, 120_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const { ns, journalKeyspace, topic, dir } of created) {
      await admin?.deleteTopics([topic]);
      for (const keyspace of [ns, journalKeyspace]) await cassandra?.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`, [], { readTimeout: 60_000 });
      await pool?.query(`DROP SCHEMA IF EXISTS ${ns} CASCADE`);
      await rm(dir, { recursive: true, force: true });
    }
    await admin?.close();
    await cassandra?.shutdown();
    await pool?.end();
  }, 120_000);

  /** A topic, the sinks' keyspace and Postgres table, and a directory, all new; the journal's keyspace is created by the node (journal.migrate: auto). */
  async function prepare(suffix: string): Promise<Resources> {
    const ns = testNamespace(import.meta.url, suffix);
    const resources = { ns, journalKeyspace: `${ns}_journal`, topic: `${ns}.input`, dir: await mkdtemp(join(tmpdir(), 'dataflow-full-stack-')) };
    created.push(resources);
    await (admin as KafkaAdmin).createTopics([{ topic: resources.topic, partitions: PARTITIONS }]);
    await (cassandra as Client).execute(`CREATE KEYSPACE IF NOT EXISTS ${ns} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    await (pool as pg.Pool).query(`CREATE SCHEMA ${ns}`);
    await (pool as pg.Pool).query(`CREATE TABLE ${ns}.messages (key text PRIMARY KEY, id bigint NOT NULL, v double precision NOT NULL, kafka_offset text NOT NULL)`);
    return resources;
  }

  /** Produces messages `from` to `to - 1` in chunks, keyed `k<i>`; `afterChunk` runs after each acknowledged chunk. */
  async function produce(topic: string, from: number, to: number, chunkSize: number, afterChunk: (sent: number) => Promise<void> = () => Promise.resolve()): Promise<void> {
    const producer = await kafka.producer(parseKafkaProducerOptions('kafkajs', {}));
    try {
      for (let i = from; i < to; i += chunkSize) {
        const chunk: ProducerRecord[] = [];
        for (let j = i; j < Math.min(to, i + chunkSize); j++) chunk.push({ topic, key: Buffer.from(keyOf(j)), value: Buffer.from(JSON.stringify(message(j))) });
        await producer.send(chunk);
        await afterChunk(Math.min(to, i + chunkSize));
      }
    } finally {
      await producer.close();
    }
  }

  // Without node.id the restarted node is a new lease holder: the pipelines wait out the killed process's writer leases (degraded until then).
  // With a stable node.id it renews them at once.
  // The two cases run side by side (own topic, keyspaces, tables, ports): the run takes about as long as the slower one.
  it.concurrent.for([
    { name: 'without a node id', suffix: 'anon', nodeId: undefined },
    { name: 'with a stable node id', suffix: 'named', nodeId: 'full-stack-node' },
  ])('$name: both pipelines come back running from their checkpoints, with every message exactly once in both tables', { timeout: 300_000 }, async ({ suffix, nodeId }, { expect }) => {
    const { ns, journalKeyspace, topic, dir } = await prepare(suffix);
    const configFile = join(dir, 'dataflow.yaml');
    await writeFile(
      configFile,
      [
        `node: { ${nodeId === undefined ? '' : `id: ${nodeId}, `}dataDir: ${JSON.stringify(join(dir, 'data'))}, shutdownTimeoutMs: 20000 }`,
        'journal: { type: cassandra, migrate: auto }',
        `cassandra: { contactPoints: ${JSON.stringify(services.cassandraContactPoints)}, localDataCenter: ${services.cassandraLocalDataCenter}, keyspace: ${journalKeyspace} }`,
        `kafka: { brokers: ${JSON.stringify(services.kafkaBrokers)} }`,
        `postgres: { url: ${JSON.stringify(services.postgresUrl)} }`,
        `redis: { url: ${JSON.stringify(services.redisUrl)}, keyPrefix: "${ns}:" }`,
        'api: { port: 0 }',
        'metrics: { port: 0 }',
      ].join('\n'),
    );
    // No brokers, contact points or connection string: the node fills in its own (connection-defaults.ts, the sinks' pool on postgres.url).
    const source = { type: 'kafka', topics: [topic], format: 'json', sessionTimeoutMs: 6_000, heartbeatIntervalMs: 1_000, fetchMaxWaitMs: 100 };
    const batch = { size: 500, maxWaitMs: 200 };
    const columns = { key: 'key', id: 'value.id', v: 'value.v', kafka_offset: 'offset' };
    const pipelines = {
      [`${ns}-cassandra`]: {
        name: 'messages-to-cassandra',
        source,
        sink: { type: 'cassandra', keyspace: ns, table: 'messages', columns, createTable: { columns: { key: 'text', id: 'bigint', v: 'double', kafka_offset: 'text' }, partitionKey: ['key'] } },
        batch,
      },
      [`${ns}-postgres`]: { name: 'messages-to-postgres', source, sink: { type: 'postgres', schema: ns, table: 'messages', columns, upsert: { key: ['key'] } }, batch },
    };
    const ids = Object.keys(pipelines);
    const allRunning = Object.fromEntries(ids.map((id) => [id, 'running']));

    const first = startNode(configFile);
    const firstApi = await first.api();
    for (const [id, definition] of Object.entries(pipelines)) {
      await call(firstApi, '/api/v1/pipelines', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, definition, start: true }) });
    }
    await produce(topic, 0, GATE, 1_000);
    await vi.waitFor(
      async () => {
        for (const id of ids) expect((await metricsOf(firstApi, id)).recordsProcessed).toBeGreaterThanOrEqual(GATE / 2);
      },
      { timeout: 90_000, interval: 100 },
    );
    // Kill while the topic is written and read: the kill comes once 2 000 more messages are in, and the producer goes on past it.
    let flowing: () => void = () => undefined;
    const flowingNow = new Promise<void>((done) => (flowing = done));
    let sent = GATE;
    const producing = produce(topic, GATE, BEFORE_RESTART, 250, async (upTo) => {
      sent = upTo;
      if (upTo >= GATE + 2_000) flowing();
      await new Promise((done) => setTimeout(done, 10));
    });
    await flowingNow;
    // Durable before the kill: the restarted pipelines cannot count less than this.
    const checkpointed = Object.fromEntries(await Promise.all(ids.map(async (id) => [id, (await checkpointOf(firstApi, id))?.recordsProcessed ?? 0] as const)));
    first.child.kill('SIGKILL');
    const sentAtKill = sent;
    expect(await first.exited).toBeNull();
    expect(first.child.signalCode).toBe('SIGKILL');
    await producing;

    const second = startNode(configFile);
    const restartedAt = Date.now();
    const api = await second.api();
    // Nobody starts them: the node resumes the pipelines the journal says were running, from their checkpoints.
    await vi.waitFor(async () => expect(await statuses(api)).toEqual(allRunning), { timeout: 90_000, interval: 250 });
    for (const id of ids) expect((await metricsOf(api, id)).recordsProcessed).toBeGreaterThanOrEqual(checkpointed[id] ?? Number.POSITIVE_INFINITY);
    await produce(topic, BEFORE_RESTART, TOTAL, 1_000);

    await vi.waitFor(
      async () => {
        for (const id of ids) expect((await metricsOf(api, id)).recordsProcessed).toBeGreaterThanOrEqual(TOTAL);
      },
      { timeout: 120_000, interval: 250 },
    );
    console.log(
      `full stack (${suffix}): killed with ${sentAtKill} messages produced and ${JSON.stringify(Object.values(checkpointed))} checkpointed; ` +
        `all ${TOTAL} processed ${Date.now() - restartedAt} ms after the restart`,
    );
    const ends = new Map((await (admin as KafkaAdmin).fetchTopicOffsets(topic)).map((p) => [p.partition, p.end]));
    expect([...ends.values()].reduce((a, b) => a + b, 0n)).toBe(BigInt(TOTAL));
    for (const id of ids) {
      // Exactly: a batch counted twice (re-driven after the kill and recorded again) would take it past TOTAL.
      expect(await metricsOf(api, id)).toMatchObject({ recordsProcessed: TOTAL, recordsFailed: 0, recordsDeadLettered: 0 });
      const checkpoint = await checkpointOf(api, id);
      expect(checkpoint).toMatchObject({ recordsProcessed: TOTAL });
      // The checkpoint resumes after the last message of every partition, and the consumer group's commit follows it.
      const positions = decodeKafkaSourceOffset(checkpoint?.sourceOffset ?? null).positions;
      expect(new Map(positions.map((p) => [p.partition, p.offset]))).toEqual(ends);
      await vi.waitFor(
        async () => expect(new Map((await (admin as KafkaAdmin).fetchCommittedOffsets(`dataflow-${id}`, [topic])).map((p) => [p.partition, p.offset]))).toEqual(ends),
        { timeout: 30_000, interval: 250 },
      );
      expect(checkpointProblems(await journalOf(api, id))).toEqual([]);
    }
    // The coordinator's registry (journaled too, and recovered after the kill) ends with the same counts.
    await vi.waitFor(
      async () =>
        expect((await registry(api)).map((p) => [p.id, p.status, p.totalRecords, p.failedRecords]).sort()).toEqual(ids.map((id) => [id, 'running', TOTAL, 0]).sort()),
      { timeout: 30_000, interval: 250 },
    );

    // Postgres: one row per message, with its values.
    const pgRows = await (pool as pg.Pool).query<{ key: string; id: string; v: number }>(`SELECT key, id, v FROM ${ns}.messages`);
    expect(pgRows.rowCount).toBe(TOTAL);
    expect(new Set(pgRows.rows.map((row) => row.key)).size).toBe(TOTAL);
    expect(pgRows.rows.filter((row) => row.key !== keyOf(Number(row.id)) || row.v !== message(Number(row.id)).v).slice(0, 5)).toEqual([]);

    // Cassandra: the same, read page by page.
    const keys = new Set<string>();
    let cassandraRows = 0;
    const cassandraWrong: string[] = [];
    let pageState: string | undefined;
    do {
      const page = await (cassandra as Client).execute(`SELECT key, id, v FROM ${ns}.messages`, [], { prepare: true, fetchSize: 5_000, readTimeout: 60_000, ...(pageState === undefined ? {} : { pageState }) });
      for (const row of page.rows) {
        cassandraRows++;
        const key = row['key'] as string;
        keys.add(key);
        const id = Number(row['id']);
        if (key !== keyOf(id) || row['v'] !== message(id).v) cassandraWrong.push(key);
      }
      pageState = page.pageState ?? undefined;
    } while (pageState !== undefined);
    expect(cassandraRows).toBe(TOTAL);
    expect(keys.size).toBe(TOTAL);
    expect(cassandraWrong.slice(0, 5)).toEqual([]);

    const ready = await fetch(`${api}/ready`);
    const readiness = (await ready.json()) as { ready: boolean; dependencies: { name: string; state: string }[] };
    expect(readiness.dependencies).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'journal', state: 'ok' }), expect.objectContaining({ name: 'redis', state: 'ok' })]));
    expect(ready.status).toBe(200);

    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    expect(second.logs.filter((l) => l.log_level === 'error').map((l) => l.message)).toEqual([]);
  });
});
