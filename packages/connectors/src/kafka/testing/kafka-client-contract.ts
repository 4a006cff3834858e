/**
 * The Kafka client contract: one set of vitest cases every adapter of the
 * Kafka client port passes against a real broker, so kafkajs and
 * @platformatic/kafka stay interchangeable. Each case creates its own topics
 * and groups under `namespace` and deletes the topics afterwards.
 *
 * Importing this module needs `vitest` (a peer dependency of
 * `@dataflow/connectors/testing`).
 */
import { isDataflowError } from '@dataflow/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKafkaConsumerOptions, parseKafkaProducerOptions, type KafkaConsumerOptionsInput, type KafkaProducerOptionsInput } from '../kafka-options.js';
import type { ConsumedRecord, KafkaAdmin, KafkaClient, KafkaConsumer, KafkaProducer, RebalanceListener, TopicPartition } from '../kafka-port.js';

export interface KafkaContractOptions {
  /** Prefix of every topic and group the suite creates (e.g. `testNamespace(import.meta.url)`). */
  readonly namespace: string;
  /** Timeout of each case. Default 90 000. */
  readonly testTimeoutMs?: number;
}

const FAST_GROUP = { sessionTimeoutMs: 10_000, heartbeatIntervalMs: 500, rebalanceTimeoutMs: 15_000, fetchMaxWaitMs: 200 } as const;

/** Polls until `count` records arrived or `timeoutMs` passed; returns what arrived. */
async function collect(consumer: KafkaConsumer, count: number, timeoutMs = 20_000, maxRecords = 1_000): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < count && Date.now() < deadline) {
    out.push(...(await consumer.poll({ maxRecords: Math.min(maxRecords, count - out.length), maxWaitMs: Math.max(1, Math.min(500, deadline - Date.now())) })));
  }
  return out;
}

/** Polls for `ms` and returns everything that arrived (to show that nothing does). */
async function drain(consumer: KafkaConsumer, ms: number): Promise<ConsumedRecord[]> {
  const out: ConsumedRecord[] = [];
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) out.push(...(await consumer.poll({ maxRecords: 1_000, maxWaitMs: Math.max(1, deadline - Date.now()) })));
  return out;
}

async function until(condition: () => boolean, timeoutMs: number, what: string, refresh?: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (refresh !== undefined) await refresh();
    if (condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const text = (b: Buffer | null): string | null => (b === null ? null : b.toString('utf8'));
const tpKey = (tp: TopicPartition): string => `${tp.topic}/${tp.partition}`;

/**
 * Registers the contract cases for one adapter under `describe(name)`.
 *
 * @example
 * ```ts
 * describeKafkaClientContract('kafkajs', () => createKafkaClient({ client: 'kafkajs', brokers }), { namespace: testNamespace(import.meta.url) });
 * ```
 */
export function describeKafkaClientContract(name: string, createClient: () => KafkaClient, options: KafkaContractOptions): void {
  const timeout = options.testTimeoutMs ?? 90_000;
  const ns = options.namespace;

  describe(`kafka client contract: ${name}`, () => {
    let client: KafkaClient;
    let admin: KafkaAdmin;
    const topics: string[] = [];
    const closers: (() => Promise<void>)[] = [];
    let seq = 0;

    const topic = async (partitions: number): Promise<string> => {
      const t = `${ns}.${name}.t${++seq}`;
      await admin.createTopics([{ topic: t, partitions }]);
      topics.push(t);
      return t;
    };
    const group = (): string => `${ns}-${name}-g${++seq}`;
    const producer = async (input: KafkaProducerOptionsInput = {}): Promise<KafkaProducer> => {
      const p = await client.producer(parseKafkaProducerOptions(client.adapter, input));
      closers.push(() => p.close());
      return p;
    };
    const consumer = (input: KafkaConsumerOptionsInput): KafkaConsumer => {
      const c = client.consumer(parseKafkaConsumerOptions({ ...FAST_GROUP, ...input }));
      closers.push(() => c.close());
      return c;
    };

    beforeAll(async () => {
      client = createClient();
      admin = await client.admin();
    });

    afterAll(async () => {
      for (const close of closers.reverse()) await close().catch(() => undefined);
      if (topics.length > 0) await admin.deleteTopics(topics);
      await admin.close();
    });

    it('round-trips keys, headers and byte values, and describes the topic', { timeout }, async () => {
      const t = await topic(1);
      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const p = await producer();
      const produced = await p.send([
        { topic: t, key: Buffer.from('k1'), value: bytes, headers: new Map([['trace', Buffer.from([0, 1, 2])], ['kind', Buffer.from('binary')]]) },
        { topic: t, key: null, value: Buffer.from('no key') },
        { topic: t, key: Buffer.from('k3'), value: null },
      ]);
      expect(produced).toEqual([{ topic: t, partition: 0, baseOffset: 0n }]);
      expect(await admin.describeTopics([t])).toEqual([{ topic: t, partitions: [{ partition: 0, leader: expect.any(Number) as number }] }]);
      expect((await admin.listTopics()).includes(t)).toBe(true);

      const c = consumer({ groupId: group() });
      await c.subscribe([t]);
      const got = await collect(c, 3);
      expect(got.map((r) => r.offset)).toEqual([0n, 1n, 2n]);
      expect(got[0]?.value?.equals(bytes)).toBe(true);
      expect(text(got[0]?.key ?? null)).toBe('k1');
      expect(got[0]?.headers.get('trace')?.equals(Buffer.from([0, 1, 2]))).toBe(true);
      expect(text(got[0]?.headers.get('kind') ?? null)).toBe('binary');
      expect(got[1]?.key).toBeNull();
      expect(text(got[1]?.value ?? null)).toBe('no key');
      expect(got[2]?.value).toBeNull();
      expect(got.every((r) => r.topic === t && r.partition === 0 && r.timestamp > 1_600_000_000_000)).toBe(true);
      expect(await admin.fetchTopicOffsets(t)).toEqual([{ partition: 0, earliest: 0n, end: 3n }]);
    });

    it('keeps order per partition, routes keys stably and honours explicit partitions', { timeout }, async () => {
      const t = await topic(3);
      const p = await producer({ compression: 'gzip' });
      const records = Array.from({ length: 300 }, (_, i) => ({ topic: t, key: Buffer.from(`key-${i % 7}`), value: Buffer.from(String(i)) }));
      for (let i = 0; i < records.length; i += 50) await p.send(records.slice(i, i + 50));
      await p.send([{ topic: t, partition: 2, key: Buffer.from('pinned'), value: Buffer.from('pinned') }]);
      const c = consumer({ groupId: group() });
      await c.subscribe([t]);
      const got = await collect(c, 301);
      expect(got).toHaveLength(301);
      const partitionOfKey = new Map<string, number>();
      const lastOffset = new Map<number, bigint>();
      const lastSeqOfKey = new Map<string, number>();
      for (const r of got) {
        const key = text(r.key) ?? '';
        if (key === 'pinned') {
          expect(r.partition).toBe(2);
          continue;
        }
        expect(partitionOfKey.get(key) ?? r.partition).toBe(r.partition);
        partitionOfKey.set(key, r.partition);
        expect(r.offset > (lastOffset.get(r.partition) ?? -1n)).toBe(true);
        lastOffset.set(r.partition, r.offset);
        const value = Number(text(r.value));
        expect(value > (lastSeqOfKey.get(key) ?? -1)).toBe(true);
        lastSeqOfKey.set(key, value);
      }
      expect(new Set(partitionOfKey.values()).size).toBeGreaterThan(1);
    });

    it('resumes a group from its committed offsets in a new consumer', { timeout }, async () => {
      const t = await topic(1);
      const g = group();
      const p = await producer();
      await p.send(Array.from({ length: 10 }, (_, i) => ({ topic: t, value: Buffer.from(`v${i}`) })));
      const first = consumer({ groupId: g, maxBufferedRecords: 4 });
      await first.subscribe([t]);
      const got = await collect(first, 4, 20_000, 4);
      expect(got.map((r) => r.offset)).toEqual([0n, 1n, 2n, 3n]);
      await first.commit([{ topic: t, partition: 0, offset: 4n }]);
      await first.close();
      expect(await admin.fetchCommittedOffsets(g, [t])).toEqual([{ topic: t, partition: 0, offset: 4n }]);

      const second = consumer({ groupId: g });
      await second.subscribe([t]);
      const rest = await collect(second, 6);
      expect(rest.map((r) => text(r.value))).toEqual(['v4', 'v5', 'v6', 'v7', 'v8', 'v9']);
      expect(await drain(second, 1_000)).toEqual([]);
    });

    it('continues from the earliest offset when the committed one was deleted by retention', { timeout }, async () => {
      const t = await topic(1);
      const g = group();
      const p = await producer();
      await p.send(Array.from({ length: 10 }, (_, i) => ({ topic: t, value: Buffer.from(`v${i}`) })));
      const first = consumer({ groupId: g });
      await first.subscribe([t]);
      expect((await collect(first, 10)).map((r) => r.offset)).toHaveLength(10);
      await first.commit([{ topic: t, partition: 0, offset: 2n }]);
      await first.close();
      await admin.deleteRecords(t, [{ partition: 0, offset: 6n }]);
      expect(await admin.fetchTopicOffsets(t)).toEqual([{ partition: 0, earliest: 6n, end: 10n }]);

      const second = consumer({ groupId: g, autoOffsetReset: 'earliest' });
      await second.subscribe([t]);
      expect((await collect(second, 4)).map((r) => text(r.value))).toEqual(['v6', 'v7', 'v8', 'v9']);
      expect(await drain(second, 1_000)).toEqual([]);
    });

    it('subscribes by pattern', { timeout }, async () => {
      const a = await topic(1);
      const b = await topic(1);
      const p = await producer();
      await p.send([{ topic: a, value: Buffer.from('a') }, { topic: b, value: Buffer.from('b') }]);
      const c = consumer({ groupId: group() });
      const escaped = `${ns}.${name}.`.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      await c.subscribe(new RegExp(`^${escaped}t(${a.split('.t').pop() ?? ''}|${b.split('.t').pop() ?? ''})$`));
      const got = await collect(c, 2);
      expect(got.map((r) => text(r.value)).sort()).toEqual(['a', 'b']);
    });

    it('pause stops delivery of a partition (buffered records included) and resume restarts it where it stopped', { timeout }, async () => {
      const t = await topic(2);
      const p = await producer();
      await p.send(Array.from({ length: 20 }, (_, i) => ({ topic: t, partition: 0, value: Buffer.from(`p0-${i}`) })));
      const c = consumer({ groupId: group() });
      await c.subscribe([t]);
      const head = await collect(c, 5, 20_000, 5);
      expect(head.map((r) => text(r.value))).toEqual(['p0-0', 'p0-1', 'p0-2', 'p0-3', 'p0-4']);
      c.pause([{ topic: t, partition: 0 }]);
      await p.send([
        { topic: t, partition: 0, value: Buffer.from('p0-20') },
        { topic: t, partition: 1, value: Buffer.from('p1-0') },
      ]);
      const whilePaused = await drain(c, 3_000);
      expect(whilePaused.map((r) => text(r.value))).toEqual(['p1-0']);
      c.resume([{ topic: t, partition: 0 }]);
      const after = await collect(c, 16);
      expect(after.map((r) => text(r.value))).toEqual(Array.from({ length: 16 }, (_, i) => `p0-${i + 5}`));
      expect(await drain(c, 1_000)).toEqual([]);
    });

    it('seeks backwards and forwards', { timeout }, async () => {
      const t = await topic(1);
      const p = await producer();
      await p.send(Array.from({ length: 10 }, (_, i) => ({ topic: t, value: Buffer.from(String(i)) })));
      const c = consumer({ groupId: group() });
      await c.subscribe([t]);
      expect((await collect(c, 10)).map((r) => r.offset)).toEqual(Array.from({ length: 10 }, (_, i) => BigInt(i)));
      c.seek({ topic: t, partition: 0, offset: 3n });
      expect((await collect(c, 7)).map((r) => r.offset)).toEqual([3n, 4n, 5n, 6n, 7n, 8n, 9n]);
      c.seek({ topic: t, partition: 0, offset: 8n });
      expect((await collect(c, 2)).map((r) => r.offset)).toEqual([8n, 9n]);
      expect(await drain(c, 1_000)).toEqual([]);
    });

    it('hides an aborted transaction from read_committed consumers and commits records and offsets together', { timeout }, async () => {
      const input = await topic(1);
      const output = await topic(1);
      const g = group();
      const p = await producer({ transactionalId: `${ns}-${name}-tx${++seq}` });
      const aborted = await p.beginTransaction();
      await aborted.send([{ topic: output, value: Buffer.from('aborted-1') }, { topic: output, value: Buffer.from('aborted-2') }]);
      await aborted.sendOffsets(g, [{ topic: input, partition: 0, offset: 3n }]);
      await aborted.abort();
      const seen: bigint[] = (await admin.fetchCommittedOffsets(g, [input])).map((o) => o.offset);

      const committed = await p.beginTransaction();
      await committed.send([{ topic: output, key: Buffer.from('k'), value: Buffer.from('committed-1') }, { topic: output, value: Buffer.from('committed-2') }]);
      await committed.sendOffsets(g, [{ topic: input, partition: 0, offset: 7n }]);
      await committed.commit();
      // The coordinator applies a committed transaction's offsets asynchronously: wait for them, and check that the
      // aborted transaction's offset never shows up on the way (it never can once the later commit is visible).
      await until(
        () => seen.at(-1) === 7n,
        15_000,
        'the committed transaction offsets',
        async () => void seen.push(...(await admin.fetchCommittedOffsets(g, [input])).map((o) => o.offset)),
      );
      expect(seen.filter((o) => o !== -1n && o !== 7n)).toEqual([]);

      const reader = consumer({ groupId: group(), isolation: 'read_committed' });
      await reader.subscribe([output]);
      const got = await collect(reader, 2);
      expect(got.map((r) => text(r.value))).toEqual(['committed-1', 'committed-2']);
      expect(await drain(reader, 1_500)).toEqual([]);

      const dirty = consumer({ groupId: group(), isolation: 'read_uncommitted' });
      await dirty.subscribe([output]);
      expect((await collect(dirty, 4)).map((r) => text(r.value))).toEqual(['aborted-1', 'aborted-2', 'committed-1', 'committed-2']);
    });

    it('fences the first producer when a second one starts with the same transactional id', { timeout }, async () => {
      const output = await topic(1);
      const transactionalId = `${ns}-${name}-fence${++seq}`;
      const zombie = await producer({ transactionalId });
      const open = await zombie.beginTransaction();
      await open.send([{ topic: output, value: Buffer.from('zombie') }]);
      const successor = await producer({ transactionalId });
      const failure = await open.commit().then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isDataflowError(failure, 'kafka/producer-fenced')).toBe(true);
      expect(isDataflowError(failure) && failure.retriable).toBe(false);
      const tx = await successor.beginTransaction();
      await tx.send([{ topic: output, value: Buffer.from('successor') }]);
      await tx.commit();
      const reader = consumer({ groupId: group(), isolation: 'read_committed' });
      await reader.subscribe([output]);
      expect((await collect(reader, 1)).map((r) => text(r.value))).toEqual(['successor']);
      expect(await drain(reader, 1_500)).toEqual([]);
    });

    it('rebalances when a second member joins: revoke and assign callbacks, partitions split', { timeout }, async () => {
      const t = await topic(4);
      const g = group();
      const events: { member: string; kind: 'assigned' | 'revoked'; partitions: string[] }[] = [];
      const listener = (member: string): RebalanceListener => ({
        onAssigned: (ps) => void events.push({ member, kind: 'assigned', partitions: ps.map(tpKey) }),
        onRevoked: (ps) => void events.push({ member, kind: 'revoked', partitions: ps.map(tpKey) }),
      });
      const first = consumer({ groupId: g });
      await first.subscribe([t], listener('first'));
      await until(() => first.assignment().length === 4, 30_000, 'the first member to own all 4 partitions');
      const second = consumer({ groupId: g });
      // Keep the first member polling so its client runs its fetch / heartbeat loop meanwhile.
      let polling = true;
      const pollLoop = (async () => {
        while (polling) await first.poll({ maxRecords: 100, maxWaitMs: 200 });
      })();
      await second.subscribe([t], listener('second'));
      await until(() => first.assignment().length > 0 && second.assignment().length > 0 && first.assignment().length + second.assignment().length === 4, 45_000, 'the partitions to be split');
      polling = false;
      await pollLoop;
      const a = first.assignment().map(tpKey);
      const b = second.assignment().map(tpKey);
      expect(new Set([...a, ...b]).size).toBe(4);
      expect(a.filter((x) => b.includes(x))).toEqual([]);
      const firstEvents = events.filter((e) => e.member === 'first');
      expect(firstEvents[0]).toEqual({ member: 'first', kind: 'assigned', partitions: expect.any(Array) as string[] });
      const revokedAt = firstEvents.findIndex((e) => e.kind === 'revoked');
      expect(revokedAt).toBeGreaterThan(0);
      expect(firstEvents[revokedAt]?.partitions.sort()).toEqual([0, 1, 2, 3].map((i) => `${t}/${i}`).sort());
      expect(firstEvents.slice(revokedAt).some((e) => e.kind === 'assigned' && e.partitions.length === a.length)).toBe(true);
      expect(events.some((e) => e.member === 'second' && e.kind === 'assigned' && e.partitions.length === b.length)).toBe(true);
    });

    it('reports use after close as a typed error', { timeout }, async () => {
      const p = await producer();
      await p.close();
      const failure = await p.send([{ topic: `${ns}.unused`, value: null }]).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isDataflowError(failure, 'kafka/client-state')).toBe(true);
    });
  });
}
