/**
 * The kafkajs consumer behind the port: kafkajs' `run({ eachBatch })` loop
 * feeds the shared bounded `RecordBuffer`, waiting (and heartbeating) while the
 * buffer is full, and resolving in kafkajs only the records actually buffered
 * (`eachBatchAutoResolve: false`), so kafkajs' fetch position never runs ahead
 * of what `poll` can still hand out. Pausing drops a partition's buffered
 * records; resuming seeks kafkajs back to the next record to deliver.
 * Rebalances: kafkajs' REBALANCING event revokes everything (eager protocol),
 * GROUP_JOIN assigns the new set.
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { BufferedConsumer } from '../buffered-consumer.js';
import { KafkaClientStateError } from '../kafka-errors.js';
import type { ConsumedRecord, KafkaConsumer, KafkaConsumerSettings, RebalanceListener, TopicPartition, TopicPartitionOffset } from '../kafka-port.js';
import { fromKafkaJs, kafkaJsCall } from './kafkajs-errors.js';

function toRecord(topic: string, partition: number, m: KafkaMessage): ConsumedRecord {
  const headers = new Map<string, Buffer>();
  for (const [name, value] of Object.entries(m.headers ?? {})) {
    if (value === undefined) continue;
    // kafkajs decodes a header repeated under one name into an array; the port keeps the last, as Kafka's lastHeader() does.
    const last = Array.isArray(value) ? value[value.length - 1] : value;
    if (last !== undefined) headers.set(name, Buffer.isBuffer(last) ? last : Buffer.from(last));
  }
  return { topic, partition, offset: BigInt(m.offset), key: m.key, value: m.value, headers, timestamp: Number(m.timestamp) };
}

function byTopic(partitions: readonly TopicPartition[]): { topic: string; partitions: number[] }[] {
  const map = new Map<string, number[]>();
  for (const tp of partitions) map.set(tp.topic, [...(map.get(tp.topic) ?? []), tp.partition]);
  return [...map].map(([topic, ps]) => ({ topic, partitions: ps }));
}

/** See the module comment. */
export class KafkaJsConsumer extends BufferedConsumer implements KafkaConsumer {
  readonly #consumer: Consumer;
  readonly #settings: KafkaConsumerSettings;

  constructor(kafka: Kafka, settings: KafkaConsumerSettings) {
    super('kafkajs', settings.maxBufferedRecords);
    this.#settings = settings;
    this.#consumer = kafka.consumer({
      groupId: settings.groupId,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      rebalanceTimeout: settings.rebalanceTimeoutMs,
      readUncommitted: settings.isolation === 'read_uncommitted',
      maxBytesPerPartition: settings.maxBytesPerPartition,
      maxWaitTimeInMs: settings.fetchMaxWaitMs,
      allowAutoTopicCreation: false,
    });
  }

  async subscribe(topics: readonly string[] | RegExp, listener: RebalanceListener = {}): Promise<void> {
    this.startSubscription(listener);
    const { GROUP_JOIN, REBALANCING, CRASH } = this.#consumer.events;
    this.#consumer.on(REBALANCING, () => this.rebalanceStarted());
    this.#consumer.on(GROUP_JOIN, (event) => {
      const assigned: TopicPartition[] = [];
      for (const [topic, partitions] of Object.entries(event.payload.memberAssignment)) {
        for (const partition of partitions) assigned.push({ topic, partition });
      }
      this.groupJoined(assigned);
    });
    this.#consumer.on(CRASH, (event) => {
      // kafkajs restarts itself after a retriable crash; only a final one is the caller's business.
      if (!event.payload.restart) this.fail(fromKafkaJs('consumer.run', event.payload.error));
    });
    await kafkaJsCall('consumer.connect', () => this.#consumer.connect());
    const fromBeginning = this.#settings.autoOffsetReset === 'earliest';
    await kafkaJsCall('consumer.subscribe', () => this.#consumer.subscribe({ topics: topics instanceof RegExp ? [topics] : [...topics], fromBeginning }));
    await kafkaJsCall('consumer.run', () =>
      this.#consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: (payload) => this.#onBatch(payload) }),
    );
  }

  async #onBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const { topic, partition } = batch;
    const isRunning = (): boolean => payload.isRunning();
    const isStale = (): boolean => payload.isStale();
    const epoch = this.buffer.epochOf(topic, partition);
    if (epoch === undefined) return;
    for (const message of batch.messages) {
      while (!this.buffer.hasSpace()) {
        if (!isRunning() || isStale() || this.buffer.closed) return;
        await this.buffer.waitForSpace(this.#settings.heartbeatIntervalMs);
        await payload.heartbeat();
      }
      if (!isRunning() || isStale() || !this.buffer.offer(toRecord(topic, partition, message), epoch)) return;
      payload.resolveOffset(message.offset);
    }
    // Every message is buffered: step over trailing control records (transaction markers) too.
    if (batch.messages.length > 0) {
      const last = batch.lastOffset();
      payload.resolveOffset(last);
      this.buffer.advanceFetchPosition(topic, partition, BigInt(last) + 1n, epoch);
    }
  }

  pause(partitions: readonly TopicPartition[]): void {
    this.requireRunning('pause');
    this.buffer.pause(partitions);
    this.#consumer.pause(byTopic(partitions));
  }

  resume(partitions: readonly TopicPartition[]): void {
    this.requireRunning('resume');
    for (const r of this.buffer.resume(partitions)) {
      if (r.offset !== undefined) this.#consumer.seek({ topic: r.topic, partition: r.partition, offset: r.offset.toString() });
    }
    this.#consumer.resume(byTopic(partitions));
  }

  seek(position: TopicPartitionOffset): void {
    this.requireRunning('seek');
    if (!this.buffer.seek(position.topic, position.partition, position.offset)) {
      throw new KafkaClientStateError('kafkajs', `seek on ${position.topic}/${position.partition}, which is not assigned to this consumer`);
    }
    this.#consumer.seek({ topic: position.topic, partition: position.partition, offset: position.offset.toString() });
  }

  async commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    this.requireRunning('commit');
    await kafkaJsCall('consumer.commit', () =>
      this.#consumer.commitOffsets(offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset.toString() }))),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.buffer.close();
    await kafkaJsCall('consumer.close', () => this.#consumer.disconnect());
  }
}
