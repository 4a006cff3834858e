/**
 * The Kafka sink and dead-letter target against the real broker, for both
 * client adapters: topic templates, key, value and header fields, rejected
 * records, the exactly-once transaction with the consumer offsets, fencing of
 * a second incarnation, and dead letters with their error headers.
 */
import { ConnectorError, type DeadLetter } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaClient } from './kafka-client.js';
import { KafkaDeadLetterTarget } from './kafka-dead-letter-target.js';
import { parseKafkaConsumerOptions } from './kafka-options.js';
import type { ConsumedRecord, KafkaAdapterName, KafkaAdmin, KafkaClient } from './kafka-port.js';
import { KafkaSink, type KafkaSinkDefinitionInput } from './kafka-sink.js';
import { encodeKafkaSourceOffset } from './kafka-source-offset.js';

const FAST = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000, rebalanceTimeoutMs: 15_000, fetchMaxWaitMs: 100 } as const;
const adapters: KafkaAdapterName[] = ['kafkajs', 'platformatic'];
const text = (b: Buffer | null | undefined): string | null => (b == null ? null : b.toString('utf8'));

describe.each(adapters)('Kafka sink and dead-letter target (%s)', (adapter) => {
  const ns = `${testNamespace(import.meta.url)}-${adapter}`;
  const brokers = [...serviceSettings().kafkaBrokers];
  let client: KafkaClient;
  let admin: KafkaAdmin;
  const topics: string[] = [];
  const closers: (() => Promise<void>)[] = [];
  let seq = 0;

  const topic = async (name = `${ns}.t${++seq}`, partitions = 1): Promise<string> => {
    await admin.createTopics([{ topic: name, partitions }]);
    topics.push(name);
    return name;
  };
  /** Everything committed in `t` (read_committed), read by a fresh group. */
  const readAll = async (t: string, count: number): Promise<ConsumedRecord[]> => {
    const consumer = client.consumer(parseKafkaConsumerOptions({ groupId: `${ns}-read${++seq}`, ...FAST }));
    try {
      await consumer.subscribe([t]);
      const out: ConsumedRecord[] = [];
      const deadline = Date.now() + 20_000;
      while (out.length < count && Date.now() < deadline) out.push(...(await consumer.poll({ maxRecords: 1000, maxWaitMs: 500 })));
      // Anything beyond `count` would show up within a moment.
      out.push(...(await consumer.poll({ maxRecords: 1000, maxWaitMs: 1000 })));
      return out;
    } finally {
      await consumer.close();
    }
  };
  const sink = async (definition: Omit<KafkaSinkDefinitionInput, 'type' | 'brokers' | 'client'>, pipelineId = `${ns}-p`): Promise<KafkaSink> => {
    const s = new KafkaSink({ type: 'kafka', client: adapter, brokers, ...definition });
    await s.open({ pipelineId, checkpoint: undefined, signal: new AbortController().signal });
    closers.push(() => s.close());
    return s;
  };

  beforeAll(async () => {
    client = createKafkaClient({ client: adapter, brokers, clientId: ns });
    admin = await client.admin();
  });

  afterAll(async () => {
    for (const close of closers) await close();
    if (topics.length > 0) await admin.deleteTopics(topics);
    await admin.close();
  }, 60_000);

  it('routes records by the topic template with key, value and header fields, and rejects what it cannot write', { timeout: 60_000 }, async () => {
    const prefix = `${ns}.metrics_${++seq}`;
    const node = await topic(`${prefix}_node`);
    const api = await topic(`${prefix}_api`);
    const s = await sink({ topic: `${prefix}_{job}`, key: 'instance', value: 'body', headers: { 'content-type': 'contentType', scraped: 'timestamp' } });
    const result = await s.write({
      batchId: 'b1',
      records: [
        { job: 'node', instance: 'h1:9100', body: 'up 1', contentType: 'text/plain', timestamp: 1700 },
        { job: 'api', instance: 'h2:8080', body: { nested: true } },
        { instance: 'h3', body: 'no job' },
        { job: 'bad/name', body: 'x' },
        { job: 'node', instance: 'h1:9100' },
      ],
    });
    expect(result.rejected?.map((r) => r.index)).toEqual([2, 3, 4]);
    expect(result.rejected?.[0]?.reason).toContain('"job"');
    expect(result.rejected?.[1]?.reason).toContain('not a valid topic name');
    expect(result.rejected?.[2]?.reason).toContain('"body" is missing');
    const [fromNode] = await readAll(node, 1);
    expect({ key: text(fromNode?.key), value: text(fromNode?.value), ct: text(fromNode?.headers.get('content-type')), at: text(fromNode?.headers.get('scraped')) }).toEqual({
      key: 'h1:9100',
      value: 'up 1',
      ct: 'text/plain',
      at: '1700',
    });
    const [fromApi] = await readAll(api, 1);
    expect(text(fromApi?.value)).toBe('{"nested":true}');
    expect(fromApi?.headers.has('content-type')).toBe(false);
  });

  it('names a topic the brokers do not have (retriable: the batch waits until it is created)', { timeout: 60_000 }, async () => {
    const missing = `${ns}.missing-${Date.now().toString(36)}`;
    const s = await sink({ topic: missing, retries: 1, requestTimeoutMs: 5_000 });
    const failed = await s.write({ batchId: 'b-missing', records: [{ id: 1 }] }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failed).toBeInstanceOf(ConnectorError);
    expect((failed as ConnectorError).retriable).toBe(true);
    expect((failed as Error).message).toContain(`the brokers do not know topic ${JSON.stringify(missing)}: create it`);
  });

  it('exactlyOnce: commits the records and the consumer offsets in one transaction', { timeout: 60_000 }, async () => {
    const out = await topic();
    const input = await topic();
    const groupId = `${ns}-eos-group`;
    const s = await sink({ topic: out, exactlyOnce: true }, `${ns}-eos`);
    expect(s.commitsSourceOffsets).toBe(true);
    await s.write({ batchId: 'b1', records: [{ n: 1 }, { n: 2 }], sourceOffset: encodeKafkaSourceOffset(groupId, [{ topic: input, partition: 0, offset: 2n }]) });
    const read = await readAll(out, 2);
    expect(read.map((r) => text(r.value))).toEqual(['{"n":1}', '{"n":2}']);
    // Offsets of a transaction become visible shortly after its commit.
    const deadline = Date.now() + 10_000;
    let committed = await admin.fetchCommittedOffsets(groupId, [input]);
    while (committed.find((p) => p.partition === 0)?.offset !== 2n && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      committed = await admin.fetchCommittedOffsets(groupId, [input]);
    }
    expect(committed.find((p) => p.partition === 0)?.offset).toBe(2n);
    await expect(s.write({ batchId: 'b2', records: [{ n: 3 }] })).rejects.toMatchObject({ retriable: false, message: expect.stringContaining('no source offset') as string });
  });

  it('exactlyOnce: a second incarnation with the same transactional id fences the first, whose next write fails for good', { timeout: 60_000 }, async () => {
    const out = await topic();
    const input = await topic();
    const offset = encodeKafkaSourceOffset(`${ns}-fence-group`, [{ topic: input, partition: 0, offset: 1n }]);
    const zombie = await sink({ topic: out, exactlyOnce: true }, `${ns}-fence`);
    await zombie.write({ batchId: 'b1', records: [{ from: 'zombie' }], sourceOffset: offset });
    const successor = await sink({ topic: out, exactlyOnce: true }, `${ns}-fence`);
    const failure = await zombie.write({ batchId: 'b2', records: [{ from: 'zombie-late' }], sourceOffset: offset }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ retriable: false });
    expect(String((failure as Error).message)).toContain('took over');
    await successor.write({ batchId: 'b2', records: [{ from: 'successor' }], sourceOffset: offset });
    expect((await readAll(out, 2)).map((r) => text(r.value))).toEqual(['{"from":"zombie"}', '{"from":"successor"}']);
  });

  it('writes dead letters to dead-letter-queue-like topics with the error in headers and the payload as the value', { timeout: 60_000 }, async () => {
    const t = await topic(`${ns}.dlq`, 3);
    const target = new KafkaDeadLetterTarget({ type: 'kafka', client: adapter, brokers, topic: t });
    await target.open();
    closers.push(() => target.close());
    const letter: DeadLetter = {
      pipelineId: 'orders',
      stage: 'transform',
      stageName: 'transforms[1]:filter',
      error: { message: 'bad field "x"', tag: 'transform/rejected', retriable: false },
      attempt: 1,
      payload: { x: 'y', nested: { a: [1, 2] } },
      batchId: 'orders-7',
      failedAt: 1_700_000_000_000,
    };
    const { batchId: _batchId, ...withoutBatch } = letter;
    await target.send([letter, { ...withoutBatch, payload: 'raw line' }]);
    const read = await readAll(t, 2);
    expect(new Set(read.map((r) => r.partition)).size).toBe(1);
    const first = read.find((r) => text(r.value)?.startsWith('{'));
    expect(text(first?.value)).toBe(JSON.stringify(letter.payload));
    expect(Object.fromEntries([...(first?.headers ?? new Map<string, Buffer>())].map(([k, v]) => [k, v.toString('utf8')]))).toEqual({
      'dataflow.error.message': 'bad field "x"',
      'dataflow.error.tag': 'transform/rejected',
      'dataflow.error.stage': 'transform',
      'dataflow.error.stage-name': 'transforms[1]:filter',
      'dataflow.error.retriable': 'false',
      'dataflow.error.attempt': '1',
      'dataflow.pipeline': 'orders',
      'dataflow.batch': 'orders-7',
      'dataflow.failed-at': '1700000000000',
    });
    expect(text(first?.key)).toBe('orders');
  });
});
