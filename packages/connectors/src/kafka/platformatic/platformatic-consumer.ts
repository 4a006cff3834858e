/**
 * The @platformatic/kafka consumer behind the port. The client's
 * `MessagesStream` cannot pause single partitions or seek, so this adapter
 * uses the client's lower-level API instead: `joinGroup` (group membership,
 * heartbeats and automatic rejoin stay the client's), `listCommittedOffsets` /
 * `listOffsets` for start positions, and its own fetch loop over
 * `consumer.fetch` per partition leader, feeding the shared bounded
 * `RecordBuffer`. Paused partitions are left out of fetch requests; a fetch
 * in flight when a partition is sought, paused or revoked is discarded by its
 * epoch.
 */
import { Admin, Consumer, FetchIsolationLevels, ListOffsetTimestamps, type ConsumerGroupJoinPayload } from '@platformatic/kafka';

type FetchOptions = Parameters<Consumer['fetch']>[0];
type FetchRequestTopic = FetchOptions['topics'][number];
type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;
import { BufferedConsumer } from '../buffered-consumer.js';
import { KafkaClientStateError } from '../kafka-errors.js';
import type { ConsumedRecord, KafkaConsumer, KafkaConsumerSettings, RebalanceListener, TopicPartition, TopicPartitionOffset } from '../kafka-port.js';
import type { PlatformaticBaseOptions } from './platformatic-client.js';
import { fromPlatformatic, platformaticCall } from './platformatic-errors.js';

/** Attribute bit of a control batch (transaction markers). */
const IS_CONTROL = 1 << 5;
/** Pause between fetch rounds when nothing is fetchable (no assignment, all paused). */
const IDLE_MS = 100;

/** See the module comment. */
export class PlatformaticConsumer extends BufferedConsumer implements KafkaConsumer {
  readonly #base: PlatformaticBaseOptions;
  readonly #settings: KafkaConsumerSettings;
  readonly #consumer: Consumer;
  #failed = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;

  constructor(base: PlatformaticBaseOptions, settings: KafkaConsumerSettings) {
    super('platformatic', settings.maxBufferedRecords);
    this.#base = base;
    this.#settings = settings;
    this.#consumer = new Consumer({
      ...base,
      groupId: settings.groupId,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      rebalanceTimeout: settings.rebalanceTimeoutMs,
      autocommit: false,
      maxWaitTime: settings.fetchMaxWaitMs,
      maxBytesPerPartition: settings.maxBytesPerPartition,
      isolationLevel: settings.isolation === 'read_committed' ? FetchIsolationLevels.READ_COMMITTED : FetchIsolationLevels.READ_UNCOMMITTED,
    });
  }

  async subscribe(topics: readonly string[] | RegExp, listener: RebalanceListener = {}): Promise<void> {
    this.startSubscription(listener);
    const names = topics instanceof RegExp ? await this.#matching(topics) : [...topics];
    this.#consumer.on('consumer:group:rebalance', () => this.rebalanceStarted());
    this.#consumer.on('consumer:group:join', (payload: ConsumerGroupJoinPayload) => this.#onJoin(payload));
    this.#consumer.on('error', (error: unknown) => this.fail(fromPlatformatic('consumer.group', error)));
    this.#consumer.topics.trackAll(...names);
    await platformaticCall('consumer.subscribe', () => this.#consumer.joinGroup({}));
    this.#loop = this.#fetchLoop();
  }

  async #matching(pattern: RegExp): Promise<string[]> {
    const admin = new Admin({ ...this.#base });
    try {
      const all = await platformaticCall('consumer.subscribe', () => admin.listTopics({ includeInternals: false }));
      return all.filter((t) => !t.startsWith('__') && pattern.test(t));
    } finally {
      await admin.close();
    }
  }

  #onJoin(payload: ConsumerGroupJoinPayload): void {
    this.groupJoined((payload.assignments ?? []).flatMap((a) => a.partitions.map((partition) => ({ topic: a.topic, partition }))));
    this.#wakeLoop();
  }

  async #fetchLoop(): Promise<void> {
    while (!this.closed && !this.#failed) {
      try {
        if (!this.buffer.hasSpace()) {
          await this.buffer.waitForSpace(1_000);
          continue;
        }
        const fetchable = this.buffer.fetchable();
        if (fetchable.length === 0) {
          await this.#idle();
          continue;
        }
        const unknown = fetchable.filter((p) => p.fetchPosition === undefined);
        if (unknown.length > 0) {
          await this.#resolvePositions(unknown);
          continue;
        }
        await this.#fetchOnce(fetchable as { topic: string; partition: number; fetchPosition: bigint; epoch: number }[]);
      } catch (error) {
        if (this.closed) return;
        const typed = fromPlatformatic('consumer.fetch', error);
        // Retriable failures (leader moved, broker restarting, rebalance) are retried after a pause; others end the consumer.
        if (!typed.retriable) {
          this.fail(typed);
          return;
        }
        await this.#idle(500);
      }
    }
  }

  /** Sets the start position of partitions: the committed offset, else the earliest or end offset per `autoOffsetReset`. */
  async #resolvePositions(partitions: readonly { topic: string; partition: number; epoch: number }[]): Promise<void> {
    const byTopic = new Map<string, number[]>();
    for (const p of partitions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition]);
    const topics = [...byTopic].map(([topic, ps]) => ({ topic, partitions: ps }));
    const committed = await this.#consumer.listCommittedOffsets({ topics });
    const timestamp = this.#settings.autoOffsetReset === 'earliest' ? ListOffsetTimestamps.EARLIEST : ListOffsetTimestamps.LATEST;
    const reset = await this.#consumer.listOffsets({ topics: [...byTopic.keys()], timestamp });
    for (const p of partitions) {
      if (this.buffer.epochOf(p.topic, p.partition) !== p.epoch) continue;
      const c = committed.get(p.topic)?.[p.partition] ?? -1n;
      const start = c >= 0n ? c : (reset.get(p.topic)?.[p.partition] ?? 0n);
      this.buffer.initPosition(p.topic, p.partition, start);
    }
  }

  async #fetchOnce(partitions: readonly { topic: string; partition: number; fetchPosition: bigint; epoch: number }[]): Promise<void> {
    const metadata = await this.#consumer.metadata({ topics: [...new Set(partitions.map((p) => p.topic))] });
    const requests = new Map<number, FetchRequestTopic[]>();
    const topicNames = new Map<string, string>();
    const epochs = new Map<string, number>();
    for (const p of partitions) {
      const topic = metadata.topics.get(p.topic);
      const partition = topic?.partitions[p.partition];
      if (topic === undefined || partition === undefined) continue;
      topicNames.set(topic.id, p.topic);
      epochs.set(`${p.topic}:${p.partition}`, p.epoch);
      const list = requests.get(partition.leader) ?? [];
      list.push({
        topicId: topic.id,
        partitions: [{ partition: p.partition, fetchOffset: p.fetchPosition, partitionMaxBytes: this.#settings.maxBytesPerPartition, currentLeaderEpoch: -1, lastFetchedEpoch: -1 }],
      });
      requests.set(partition.leader, list);
    }
    await Promise.all(
      [...requests].map(async ([node, topics]) => {
        let response: FetchResponse;
        try {
          response = await this.#consumer.fetch({ node, topics, maxWaitTime: this.#settings.fetchMaxWaitMs, minBytes: 1 });
        } catch (error) {
          if (fromPlatformatic('consumer.fetch', error).code !== 'OFFSET_OUT_OF_RANGE') throw error;
          await this.#resetOutOfRange(topics.flatMap((t) => t.partitions.map((p) => ({ topic: topicNames.get(t.topicId) ?? '', partition: p.partition, offset: p.fetchOffset }))));
          return;
        }
        await this.#accept(response, topicNames, epochs);
      }),
    );
  }

  /**
   * The broker no longer has the offset asked for (deleted by retention, or
   * beyond the end): like kafkajs and the Java client, continue from the
   * earliest or the end offset per `autoOffsetReset`. Only partitions whose
   * position is outside [earliest, end] move; the others keep theirs.
   */
  async #resetOutOfRange(partitions: readonly { topic: string; partition: number; offset: bigint }[]): Promise<void> {
    const topics = [...new Set(partitions.map((p) => p.topic))];
    const [earliest, end] = await Promise.all([
      this.#consumer.listOffsets({ topics, timestamp: ListOffsetTimestamps.EARLIEST }),
      this.#consumer.listOffsets({ topics, timestamp: ListOffsetTimestamps.LATEST }),
    ]);
    for (const p of partitions) {
      const low = earliest.get(p.topic)?.[p.partition];
      const high = end.get(p.topic)?.[p.partition];
      if (low === undefined || high === undefined || (p.offset >= low && p.offset <= high)) continue;
      this.buffer.seek(p.topic, p.partition, this.#settings.autoOffsetReset === 'earliest' ? low : high);
    }
  }

  /** Buffers the fetched records, waiting for space record by record (so the buffer never exceeds its bound). */
  async #accept(response: FetchResponse, topicNames: ReadonlyMap<string, string>, epochs: ReadonlyMap<string, number>): Promise<void> {
    for (const topicResponse of response.responses) {
      const topic = topicNames.get(topicResponse.topicId);
      if (topic === undefined) continue;
      for (const p of topicResponse.partitions) {
        const epoch = epochs.get(`${topic}:${p.partitionIndex}`);
        for (const batch of p.records ?? []) {
          for (const record of batch.attributes & IS_CONTROL ? [] : batch.records) {
            while (!this.buffer.hasSpace() && !this.buffer.closed) await this.buffer.waitForSpace(1_000);
            const headers = new Map<string, Buffer>();
            for (const [name, value] of record.headers) if (name !== null && value !== null) headers.set(name.toString('utf8'), value);
            const consumed: ConsumedRecord = {
              topic,
              partition: p.partitionIndex,
              offset: batch.firstOffset + BigInt(record.offsetDelta),
              key: record.key,
              value: record.value,
              headers,
              timestamp: Number(batch.firstTimestamp + record.timestampDelta),
            };
            if (!this.buffer.offer(consumed, epoch)) break;
          }
          this.buffer.advanceFetchPosition(topic, p.partitionIndex, batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n, epoch);
        }
      }
    }
  }

  #idle(ms = IDLE_MS): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  #wakeLoop(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  pause(partitions: readonly TopicPartition[]): void {
    this.requireRunning('pause');
    this.buffer.pause(partitions);
  }

  resume(partitions: readonly TopicPartition[]): void {
    this.requireRunning('resume');
    this.buffer.resume(partitions);
    this.#wakeLoop();
  }

  seek(position: TopicPartitionOffset): void {
    this.requireRunning('seek');
    if (!this.buffer.seek(position.topic, position.partition, position.offset)) {
      throw new KafkaClientStateError('platformatic', `seek on ${position.topic}/${position.partition}, which is not assigned to this consumer`);
    }
    this.#wakeLoop();
  }

  async commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    this.requireRunning('commit');
    await platformaticCall('consumer.commit', () =>
      this.#consumer.commit({ offsets: offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset, leaderEpoch: -1 })) }),
    );
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.buffer.close();
    this.#wakeLoop();
    await this.#loop;
    await platformaticCall('consumer.close', () => this.#consumer.close());
  }

  protected override fail(error: Error): void {
    this.#failed = true;
    super.fail(error);
    this.#wakeLoop();
  }
}
