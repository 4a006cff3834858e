/**
 * The @platformatic/kafka adapter of the Kafka client port: admin and producer
 * here, the consumer in `platformatic-consumer.ts`.
 *
 * Two things are built on the client's lower-level API: keyed records are
 * partitioned with the Java client's murmur2 rule (the client's default keeps
 * the sign bit, so keys would land on other partitions than with kafkajs or
 * Java producers), and `sendOffsets` commits arbitrary offsets in a
 * transaction through the client's TxnOffsetCommit path (its public
 * `addOffset` takes only messages read by one of its own consumers).
 */
import { Admin, FindCoordinatorKeyTypes, ListOffsetTimestamps, murmur2, Producer, type Consumer, type Message, type MessageToProduce, type ProduceResult } from '@platformatic/kafka';
import { KafkaClientStateError, KafkaOperationError } from '../kafka-errors.js';
import type { KafkaClientOptions } from '../kafka-options.js';
import type {
  KafkaAdmin,
  KafkaClient,
  KafkaConsumer,
  KafkaConsumerSettings,
  KafkaProducer,
  KafkaProducerSettings,
  KafkaTransaction,
  NewTopic,
  PartitionOffsets,
  ProducedPartition,
  ProducerRecord,
  TopicDescription,
  TopicPartitionOffset,
} from '../kafka-port.js';
import { PlatformaticConsumer } from './platformatic-consumer.js';
import { platformaticCall } from './platformatic-errors.js';

/** Connection options shared by every @platformatic/kafka client this adapter creates. */
export interface PlatformaticBaseOptions {
  readonly clientId: string;
  readonly bootstrapBrokers: string[];
  readonly timeout: number;
  readonly connectTimeout: number;
  readonly retries: number;
  /** Delay before retry `attempt` (1-based) of a retriable failure. */
  readonly retryDelay: (client: unknown, operationId: string, attempt: number) => number;
}

/**
 * Backoff of the client's own retries: 20 ms, doubling, at most 1 s. The
 * library's default is a fixed 1 s, and the commonest retriable answer of a
 * busy transactional producer, CONCURRENT_TRANSACTIONS (the previous
 * transaction's markers are still being written when the next one adds its
 * partitions), clears within milliseconds: with 1 s every transaction after
 * the first waited about half a second (measured: 516 ms per 500-record
 * transaction against 75 ms with kafkajs, whose backoff starts near 100 ms).
 * The Java client retries that error after 20 ms for the same reason.
 */
export function platformaticRetryDelay(_client: unknown, _operationId: string, attempt: number): number {
  return Math.min(1_000, 20 * 2 ** Math.max(0, attempt - 1));
}

/** Creates the @platformatic/kafka client; connections open on first use. */
export function createPlatformaticClient(options: KafkaClientOptions): KafkaClient {
  const base: PlatformaticBaseOptions = {
    clientId: options.clientId,
    bootstrapBrokers: [...options.brokers],
    timeout: options.requestTimeoutMs,
    connectTimeout: options.connectTimeoutMs,
    retries: options.retries,
    retryDelay: platformaticRetryDelay,
  };
  return {
    adapter: 'platformatic',
    admin(): Promise<KafkaAdmin> {
      return Promise.resolve(new PlatformaticAdmin(new Admin({ ...base })));
    },
    async producer(settings: KafkaProducerSettings): Promise<KafkaProducer> {
      const producer = new Producer({
        ...base,
        acks: settings.acks,
        compression: settings.compression,
        idempotent: settings.idempotent || settings.transactionalId !== undefined,
        autocreateTopics: false,
        ...(settings.transactionalId === undefined ? {} : { transactionalId: settings.transactionalId }),
      });
      if (settings.transactionalId !== undefined) {
        // Register the transactional id now (InitProducerId), which fences any earlier producer with the same id. The
        // client sends InitProducerId with the transactional id only while a transaction object exists, so open one and
        // cancel it (local only: nothing was added to it, so there is nothing to end on the broker). Producer id and epoch
        // -1 ask for a new epoch of the id; the client's default (0, 0) claims to be producer 0 and is itself refused as
        // fenced once the id has a producer.
        await platformaticCall('producer.initTransactions', async () => (await producer.beginTransaction({ producerId: -1n, producerEpoch: -1 })).cancel());
      }
      return new PlatformaticProducer(producer, new Admin({ ...base }), settings);
    },
    consumer(settings: KafkaConsumerSettings): KafkaConsumer {
      return new PlatformaticConsumer(base, settings);
    },
  };
}

class PlatformaticAdmin implements KafkaAdmin {
  constructor(private readonly admin: Admin) {}

  async createTopics(topics: readonly NewTopic[]): Promise<void> {
    const existing = new Set(await this.listTopics());
    for (const t of topics) {
      if (existing.has(t.topic)) continue;
      await platformaticCall('admin.createTopics', () =>
        this.admin.createTopics({
          topics: [t.topic],
          partitions: t.partitions,
          replicas: t.replicationFactor ?? 1,
          configs: [...(t.configs ?? new Map<string, string>())].map(([name, value]) => ({ name, value })),
        }),
      );
    }
    await this.#waitForLeaders(topics.map((t) => t.topic));
  }

  /** Waits until every partition of the topics has a leader (the broker creates them asynchronously). */
  async #waitForLeaders(topics: readonly string[]): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const described = await this.describeTopics(topics);
        if (described.length === topics.length && described.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
      if (Date.now() > deadline) throw new KafkaClientStateError('platformatic', `no leaders for ${topics.join(', ')} after 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async deleteTopics(topics: readonly string[]): Promise<void> {
    await platformaticCall('admin.deleteTopics', () => this.admin.deleteTopics({ topics: [...topics] }));
  }

  async listTopics(): Promise<string[]> {
    const topics = await platformaticCall('admin.listTopics', () => this.admin.listTopics({ includeInternals: false }));
    return topics.filter((t) => !t.startsWith('__'));
  }

  async describeTopics(topics: readonly string[]): Promise<TopicDescription[]> {
    const metadata = await platformaticCall('admin.describeTopics', () => this.admin.metadata({ topics: [...topics], forceUpdate: true }));
    return topics.map((topic) => {
      const t = metadata.topics.get(topic);
      return { topic, partitions: (t?.partitions ?? []).map((p, partition) => ({ partition, leader: p.leader })) };
    });
  }

  async fetchTopicOffsets(topic: string): Promise<PartitionOffsets[]> {
    const [description] = await this.describeTopics([topic]);
    const partitions = (description?.partitions ?? []).map((p) => p.partition);
    const list = (timestamp: bigint): Promise<Map<number, bigint>> =>
      platformaticCall('admin.fetchTopicOffsets', async () => {
        const result = await this.admin.listOffsets({ topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, timestamp })) }] });
        return new Map(result.flatMap((t) => t.partitions.map((p) => [p.partitionIndex, p.offset] as const)));
      });
    const [earliest, end] = await Promise.all([list(ListOffsetTimestamps.EARLIEST), list(ListOffsetTimestamps.LATEST)]);
    return partitions.map((partition) => ({ partition, earliest: earliest.get(partition) ?? 0n, end: end.get(partition) ?? 0n }));
  }

  async deleteRecords(topic: string, before: readonly { readonly partition: number; readonly offset: bigint }[]): Promise<void> {
    await platformaticCall('admin.deleteRecords', () => this.admin.deleteRecords({ topics: [{ name: topic, partitions: before.map((b) => ({ partition: b.partition, offset: b.offset })) }] }));
  }

  async fetchCommittedOffsets(groupId: string, topics: readonly string[]): Promise<TopicPartitionOffset[]> {
    const described = await this.describeTopics(topics);
    const result = await platformaticCall('admin.fetchCommittedOffsets', () =>
      this.admin.listConsumerGroupOffsets({
        groups: [{ groupId, topics: described.map((t) => ({ name: t.topic, partitionIndexes: t.partitions.map((p) => p.partition) })) }],
        // Offsets of a transaction still being completed are not reported as -1 but retried (UNSTABLE_OFFSET_COMMIT).
        requireStable: true,
      }),
    );
    const committed = new Map<string, bigint>();
    for (const g of result) for (const t of g.topics) for (const p of t.partitions) committed.set(`${t.name}\u0000${p.partitionIndex}`, p.committedOffset);
    return described.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: committed.get(`${t.topic}\u0000${p.partition}`) ?? -1n })));
  }

  async close(): Promise<void> {
    await platformaticCall('admin.close', () => this.admin.close());
  }
}

/** The Java client's partition of a key: murmur2, sign bit cleared, modulo the partition count. */
function javaPartition(key: Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

class PlatformaticProducer implements KafkaProducer {
  #closed = false;
  /** Topics the brokers were seen to have. */
  readonly #knownTopics = new Set<string>();
  readonly #coordinators = new Map<string, number>();

  constructor(
    private readonly producer: Producer,
    private readonly admin: Admin,
    private readonly settings: KafkaProducerSettings,
  ) {}

  async send(records: readonly ProducerRecord[]): Promise<ProducedPartition[]> {
    this.#requireOpen('send');
    if (this.settings.transactionalId !== undefined) throw new KafkaClientStateError('platformatic', 'a transactional producer sends inside beginTransaction()');
    const messages = await this.toMessages(records);
    const result = await platformaticCall('producer.send', () => this.producer.send({ messages }));
    return toProduced(result);
  }

  async beginTransaction(): Promise<KafkaTransaction> {
    this.#requireOpen('beginTransaction');
    if (this.settings.transactionalId === undefined) throw new KafkaClientStateError('platformatic', 'beginTransaction needs a transactionalId');
    const tx = await platformaticCall('producer.beginTransaction', () => this.producer.beginTransaction());
    return new PlatformaticTransaction(this, tx);
  }

  /**
   * Refuses a topic the brokers do not have (retriable: it may be created):
   * @platformatic/kafka's send and metadata calls wait for such a topic for
   * ever (with topic auto-creation off, measured past 40 s with `retries: 0`),
   * which would hold the pipeline's batch without a word. A topic seen once
   * is not asked about again.
   */
  async #requireTopics(topics: readonly string[]): Promise<void> {
    const unknown = topics.filter((t) => !this.#knownTopics.has(t));
    if (unknown.length === 0) return;
    const listed = new Set(await platformaticCall('producer.listTopics', () => this.admin.listTopics({ includeInternals: false })));
    for (const t of unknown) if (listed.has(t)) this.#knownTopics.add(t);
    const missing = unknown.filter((t) => !listed.has(t));
    if (missing.length > 0) {
      throw new KafkaOperationError(
        { adapter: 'platformatic', operation: 'producer.send', code: 'UNKNOWN_TOPIC_OR_PARTITION', retriable: true, cause: undefined },
        `the brokers have no topic ${missing.slice(0, 5).map((t) => JSON.stringify(t)).join(', ')}`,
      );
    }
  }

  /** Converts port records, choosing the Java-compatible partition for keyed records without one. */
  async toMessages(records: readonly ProducerRecord[]): Promise<MessageToProduce[]> {
    await this.#requireTopics([...new Set(records.map((r) => r.topic))]);
    const keyedTopics = [...new Set(records.filter((r) => r.partition === undefined && r.key != null).map((r) => r.topic))];
    const counts = new Map<string, number>();
    if (keyedTopics.length > 0) {
      const metadata = await platformaticCall('producer.metadata', () => this.producer.metadata({ topics: keyedTopics }));
      for (const t of keyedTopics) counts.set(t, metadata.topics.get(t)?.partitionsCount ?? 1);
    }
    return records.map((r) => {
      const partition = r.partition ?? (r.key == null ? undefined : javaPartition(r.key, counts.get(r.topic) ?? 1));
      return {
        topic: r.topic,
        ...(r.key == null ? {} : { key: r.key }),
        ...(r.value === null ? {} : { value: r.value }),
        ...(r.headers === undefined ? {} : { headers: new Map([...r.headers].map(([name, value]) => [Buffer.from(name), value])) }),
        ...(partition === undefined ? {} : { partition }),
      };
    });
  }

  /** The node coordinating `groupId` (cached; TxnOffsetCommit goes there). */
  async coordinatorOf(groupId: string): Promise<number> {
    const known = this.#coordinators.get(groupId);
    if (known !== undefined) return known;
    const [found] = await platformaticCall('transaction.findCoordinator', () => this.admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: [groupId] }));
    if (found === undefined) throw new KafkaClientStateError('platformatic', `no coordinator found for group ${groupId}`);
    this.#coordinators.set(groupId, found.nodeId);
    return found.nodeId;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await platformaticCall('producer.close', async () => {
      await this.producer.close();
      await this.admin.close();
    });
  }

  #requireOpen(operation: string): void {
    if (this.#closed) throw new KafkaClientStateError('platformatic', `${operation} on a closed producer`);
  }
}

function toProduced(result: ProduceResult): ProducedPartition[] {
  return (result.offsets ?? []).map((o) => ({ topic: o.topic, partition: o.partition, baseOffset: o.offset }));
}

class PlatformaticTransaction implements KafkaTransaction {
  constructor(
    private readonly owner: PlatformaticProducer,
    private readonly tx: Awaited<ReturnType<Producer['beginTransaction']>>,
  ) {}

  async send(records: readonly ProducerRecord[]): Promise<ProducedPartition[]> {
    const messages = await this.owner.toMessages(records);
    return toProduced(await platformaticCall('transaction.send', () => this.tx.send({ messages })));
  }

  async sendOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void> {
    const coordinatorId = await this.owner.coordinatorOf(groupId);
    // addConsumer only reads the group id; AddOffsetsToTxn registers the group with the transaction.
    await platformaticCall('transaction.sendOffsets', () => this.tx.addConsumer({ groupId } as Consumer));
    for (const o of offsets) {
      // addOffset commits `offset + 1` of a consumed message; generation -1 and no member skip the group-generation
      // check (the transaction's fencing is by producer epoch).
      const consumed = {
        topic: o.topic,
        partition: o.partition,
        offset: o.offset - 1n,
        metadata: { consumer: { groupId, generationId: -1, memberId: '', coordinatorId } },
      } as unknown as Message;
      await platformaticCall('transaction.sendOffsets', () => this.tx.addOffset(consumed));
    }
  }

  async commit(): Promise<void> {
    await platformaticCall('transaction.commit', () => this.tx.commit());
  }

  async abort(): Promise<void> {
    await platformaticCall('transaction.abort', () => this.tx.abort());
  }
}
