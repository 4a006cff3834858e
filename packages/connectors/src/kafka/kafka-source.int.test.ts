/**
 * The Kafka source against the real broker, for both client adapters:
 * record shape per format, malformed values, positions restored from a
 * checkpoint, commits after acks, the reconciliation with Kafka's
 * committed offsets when the sink commits them, and the lag per partition.
 */
import { ConnectorError, type SourceBatch, type SourceOffset, type SourceRecord } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKafkaClient } from './kafka-client.js';
import { parseKafkaProducerOptions } from './kafka-options.js';
import type { KafkaAdapterName, KafkaAdmin, KafkaClient, ProducerRecord } from './kafka-port.js';
import { decodeKafkaSourceOffset, encodeKafkaSourceOffset } from './kafka-source-offset.js';
import { KafkaSource, type KafkaSourceDefinitionInput } from './kafka-source.js';

const FAST = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000, rebalanceTimeoutMs: 15_000, fetchMaxWaitMs: 100 } as const;
const adapters: KafkaAdapterName[] = ['kafkajs', 'platformatic'];

/** Polls until `count` records arrived (or 20 s); returns them and the last batch's offset. */
async function pollRecords(source: KafkaSource, count: number): Promise<{ records: SourceRecord[]; offset: SourceOffset | undefined }> {
  const records: SourceRecord[] = [];
  let offset: SourceOffset | undefined;
  const deadline = Date.now() + 20_000;
  while (records.length < count && Date.now() < deadline) {
    const batch: SourceBatch = await source.poll(count - records.length, 500);
    records.push(...batch.records);
    if (batch.records.length > 0) offset = batch.offset;
  }
  return { records, offset };
}

const values = (records: readonly SourceRecord[]) => records.map((r) => (r.ok ? (r.value['value'] as unknown) : { failed: r.reason }));

describe.each(adapters)('Kafka source (%s)', (adapter) => {
  const ns = `${testNamespace(import.meta.url)}-${adapter}`;
  const brokers = [...serviceSettings().kafkaBrokers];
  let client: KafkaClient;
  let admin: KafkaAdmin;
  const topics: string[] = [];
  const sources: KafkaSource[] = [];
  let seq = 0;

  const topic = async (partitions: number, records: readonly Omit<ProducerRecord, 'topic'>[], name = `${ns}.t${++seq}`): Promise<string> => {
    await admin.createTopics([{ topic: name, partitions }]);
    topics.push(name);
    if (records.length > 0) {
      const producer = await client.producer(parseKafkaProducerOptions(adapter, {}));
      try {
        await producer.send(records.map((r) => ({ ...r, topic: name })));
      } finally {
        await producer.close();
      }
    }
    return name;
  };
  const source = (definition: Omit<KafkaSourceDefinitionInput, 'type' | 'brokers' | 'client'>): KafkaSource => {
    const s = new KafkaSource({ type: 'kafka', client: adapter, brokers, ...FAST, ...definition });
    sources.push(s);
    return s;
  };
  const open = (s: KafkaSource, checkpoint?: SourceOffset, offsetsCommittedBySink = false) =>
    s.open({ pipelineId: `${ns}-p${++seq}`, checkpoint, signal: new AbortController().signal, offsetsCommittedBySink });

  beforeAll(async () => {
    client = createKafkaClient({ client: adapter, brokers, clientId: ns });
    admin = await client.admin();
  });

  afterAll(async () => {
    for (const s of sources) await s.close();
    if (topics.length > 0) await admin.deleteTopics(topics);
    await admin.close();
  }, 60_000);

  it('reads JSON values with key, headers and metadata; a malformed value becomes a failed record naming where it is', { timeout: 60_000 }, async () => {
    const t = await topic(1, [
      { key: Buffer.from('k1'), value: Buffer.from('{"n":1,"__proto__":{"polluted":true}}'), headers: new Map([['trace', Buffer.from('abc')], ['__proto__', Buffer.from('x')]]) },
      { key: null, value: Buffer.from('{not json') },
      { key: Buffer.from('k3'), value: null },
    ]);
    const s = source({ topics: [t], groupId: `${ns}-json` });
    await open(s);
    const { records } = await pollRecords(s, 3);
    expect(records).toHaveLength(3);
    const [first, second, third] = records;
    expect(first?.ok).toBe(true);
    if (first?.ok === true) {
      expect(first.value).toMatchObject({ topic: t, partition: 0, offset: '0', key: 'k1' });
      expect(typeof first.value['timestamp']).toBe('number');
      const headers = first.value['headers'] as Record<string, string>;
      expect(Object.getPrototypeOf(headers)).toBe(Object.prototype);
      expect(Object.hasOwn(headers, '__proto__')).toBe(true);
      expect(headers['trace']).toBe('abc');
      const value = first.value['value'] as Record<string, unknown>;
      expect(value['n']).toBe(1);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    }
    expect(second).toMatchObject({ ok: false, raw: '{not json' });
    expect(second?.ok === false ? second.reason : '').toContain(`${t}-0@1`);
    expect(third).toMatchObject({ ok: true, value: { key: 'k3', value: null } });
  });

  it('keeps a JSON value nested deeper than 64 levels as a failed record with the reason and the text, and reads on', { timeout: 60_000 }, async () => {
    const deep = `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`;
    const t = await topic(1, [{ value: Buffer.from(deep) }, { value: Buffer.from('{"n":2}') }]);
    const s = source({ topics: [t], groupId: `${ns}-deep`, autoOffsetReset: 'earliest' });
    await open(s);
    const { records } = await pollRecords(s, 2);
    expect(records[0]).toMatchObject({ ok: false, raw: deep, reason: expect.stringMatching(new RegExp(`^record ${t.replace(/[.]/g, '\\.')}-0@0: value\\.a\\.a.*: The record is nested deeper than 64 levels$`)) as string });
    expect(records[1]).toMatchObject({ ok: true, value: { value: { n: 2 } } });
  });

  it('hands out string and bytes values; invalid UTF-8 in string format is a failed record with the bytes in base64', { timeout: 60_000 }, async () => {
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x41]);
    const t = await topic(1, [{ value: Buffer.from('plain text') }, { value: bytes }]);
    const text = source({ topics: [t], groupId: `${ns}-string`, format: 'string' });
    await open(text);
    const read = await pollRecords(text, 2);
    expect(read.records[0]).toMatchObject({ ok: true, value: { value: 'plain text' } });
    expect(read.records[1]).toMatchObject({ ok: false, raw: `base64:${bytes.toString('base64')}` });
    const raw = source({ topics: [t], groupId: `${ns}-bytes`, format: 'bytes' });
    await open(raw);
    expect(values((await pollRecords(raw, 2)).records)).toEqual([Buffer.from('plain text').toString('base64'), bytes.toString('base64')]);
  });

  it('resumes exactly after a checkpoint, whatever the group committed, and commits on ack', { timeout: 90_000 }, async () => {
    const t = await topic(3, Array.from({ length: 90 }, (_, i) => ({ key: Buffer.from(`k${i}`), value: Buffer.from(JSON.stringify(i)) })));
    const groupId = `${ns}-resume`;
    const first = source({ topics: [t], groupId });
    await open(first);
    const part1 = await pollRecords(first, 40);
    expect(part1.records).toHaveLength(40);
    const checkpoint = part1.offset;
    if (checkpoint === undefined) throw new Error('no offset');
    await first.ack(checkpoint);
    // The commit runs in the background: wait for it to show.
    const committedTotal = async () => (await admin.fetchCommittedOffsets(groupId, [t])).reduce((sum, p) => sum + Number(p.offset < 0n ? 0n : p.offset), 0);
    const deadline = Date.now() + 10_000;
    while ((await committedTotal()) !== 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await committedTotal()).toBe(40);
    // Read on without acking: Kafka's committed offsets stay at the checkpoint.
    await pollRecords(first, 20);
    await first.close();

    const second = source({ topics: [t], groupId });
    await open(second, checkpoint);
    const part2 = await pollRecords(second, 50);
    const all = [...values(part1.records), ...values(part2.records)] as number[];
    expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: 90 }, (_, i) => i));
    await second.close();
  });

  it('with a sink that commits offsets, does not commit on ack and starts from the further of checkpoint and committed', { timeout: 90_000 }, async () => {
    const t = await topic(2, Array.from({ length: 40 }, (_, i) => ({ partition: i % 2, value: Buffer.from(JSON.stringify(i)) })));
    const groupId = `${ns}-by-sink`;
    // The sink's transaction committed partition 0 up to 15 (one batch ahead of the checkpoint's 10); partition 1 stays at the checkpoint's 5.
    const producer = await client.producer(parseKafkaProducerOptions(adapter, { transactionalId: `${ns}-by-sink-tx` }));
    const tx = await producer.beginTransaction();
    await tx.sendOffsets(groupId, [{ topic: t, partition: 0, offset: 15n }]);
    await tx.commit();
    await producer.close();
    const checkpoint = encodeKafkaSourceOffset(groupId, [
      { topic: t, partition: 0, offset: 10n },
      { topic: t, partition: 1, offset: 5n },
    ]);
    const s = source({ topics: [t], groupId });
    // Transactional offsets become visible shortly after the commit (kafkajs' admin cannot wait for them).
    const deadline = Date.now() + 10_000;
    while ((await admin.fetchCommittedOffsets(groupId, [t])).find((p) => p.partition === 0)?.offset !== 15n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await open(s, checkpoint, true);
    const { records, offset } = await pollRecords(s, 20);
    const firstByPartition = new Map<number, string>();
    for (const r of records) if (r.ok && !firstByPartition.has(r.value['partition'] as number)) firstByPartition.set(r.value['partition'] as number, r.value['offset'] as string);
    expect(Object.fromEntries(firstByPartition)).toEqual({ 0: '15', 1: '5' });
    if (offset === undefined) throw new Error('no offset');
    await s.ack(offset);
    const committed = await admin.fetchCommittedOffsets(groupId, [t]);
    expect(committed.map((p) => [p.partition, p.offset]).sort()).toEqual([
      [0, 15n],
      [1, -1n],
    ]);
    expect(decodeKafkaSourceOffset(offset).groupId).toBe(groupId);
  });

  it('shares a group with a second member across a rebalance: after acks, the two together read every record and none is lost', { timeout: 90_000 }, async () => {
    const t = await topic(4, Array.from({ length: 200 }, (_, i) => ({ partition: i % 4, value: Buffer.from(JSON.stringify(i)) })));
    const groupId = `${ns}-rebalance`;
    const first = source({ topics: [t], groupId, maxBufferedRecords: 20 });
    await open(first);
    const seen: number[] = [];
    // The first member reads and acknowledges part of the topic alone.
    const early = await pollRecords(first, 60);
    seen.push(...(values(early.records) as number[]));
    if (early.offset !== undefined) await first.ack(early.offset);
    // A second member joins: the group rebalances and splits the partitions.
    const second = source({ topics: [t], groupId, maxBufferedRecords: 20 });
    await open(second);
    const deadline = Date.now() + 40_000;
    while (new Set(seen).size < 200 && Date.now() < deadline) {
      for (const member of [first, second]) {
        const batch = await member.poll(50, 200);
        seen.push(...(values(batch.records) as number[]));
        if (batch.records.length > 0) await member.ack(batch.offset);
      }
    }
    expect([...new Set(seen)].sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('subscribes by pattern and refuses a checkpoint of another consumer group', { timeout: 60_000 }, async () => {
    const t = await topic(1, [{ value: Buffer.from('"a"') }]);
    const s = source({ topicPattern: `^${t.replace(/[.]/g, '\\.')}$` });
    await open(s);
    expect(values((await pollRecords(s, 1)).records)).toEqual(['a']);
    const other = source({ topics: [t], groupId: `${ns}-mine` });
    await expect(open(other, encodeKafkaSourceOffset(`${ns}-theirs`, []))).rejects.toThrow(/consumer group .*-theirs.* configured with .*-mine/);
  });

  it('refuses a topic the brokers do not have, retriably and naming it, and opens once it exists', { timeout: 60_000 }, async () => {
    const name = `${ns}.later-${Date.now().toString(36)}`;
    const s = source({ topics: [name] });
    const refused = await open(s).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ConnectorError);
    expect(refused).toMatchObject({ retriable: true, message: expect.stringContaining(`the brokers have no topic ${JSON.stringify(name)} (of the source's topics): create it`) as string });
    await topic(1, [{ value: Buffer.from('"b"') }], name);
    const again = source({ topics: [name], autoOffsetReset: 'earliest' });
    await open(again);
    expect(values((await pollRecords(again, 1)).records)).toEqual(['b']);
  });

  it('reports the lag of each assigned partition: its end offset minus the next record handed out, 0 once read to the end', { timeout: 60_000 }, async () => {
    const t = await topic(2, Array.from({ length: 10 }, (_, i) => ({ partition: i % 2, key: null, value: Buffer.from(JSON.stringify({ value: i })) })));
    const s = source({ topics: [t], autoOffsetReset: 'earliest' });
    await open(s);
    const byPartition = (lags: readonly { partition: number; lag: number }[]) => [...lags].sort((a, b) => a.partition - b.partition).map((l) => [l.partition, l.lag]);
    let lags = await s.lag();
    for (const deadline = Date.now() + 20_000; lags.length < 2 && Date.now() < deadline; lags = await s.lag()) await new Promise((r) => setTimeout(r, 100));
    // Nothing handed out or committed yet: from the earliest offset.
    expect(byPartition(lags)).toEqual([[0, 5], [1, 5]]);
    expect(lags.every((l) => l.topic === t)).toBe(true);
    expect((await pollRecords(s, 4)).records).toHaveLength(4);
    expect((await s.lag()).reduce((sum, l) => sum + l.lag, 0)).toBe(6);
    expect((await pollRecords(s, 6)).records).toHaveLength(6);
    expect(byPartition(await s.lag())).toEqual([[0, 0], [1, 0]]);
  });
});
