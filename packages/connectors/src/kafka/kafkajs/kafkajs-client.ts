/**
 * The kafkajs adapter of the Kafka client port (the default): admin and
 * producer here, the consumer in `kafkajs-consumer.ts`. kafkajs' own logger is
 * silenced; every failure reaches the caller as a typed error instead.
 */
import { CompressionTypes, Kafka, logLevel, Partitioners, type Admin, type Message, type Producer, type RecordMetadata, type Transaction } from 'kafkajs';
import { KafkaClientStateError } from '../kafka-errors.js';
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
import { KafkaJsConsumer } from './kafkajs-consumer.js';
import { coordinatorCall, kafkaJsCall } from './kafkajs-errors.js';

/** kafkajs ships only the gzip codec; option validation refuses the others, this guards direct use of the port. */
function compressionOf(settings: KafkaProducerSettings): CompressionTypes {
  if (settings.compression === 'none') return CompressionTypes.None;
  if (settings.compression === 'gzip') return CompressionTypes.GZIP;
  throw new KafkaClientStateError('kafkajs', `compression ${settings.compression} is not available in kafkajs (none, gzip)`);
}

/** Creates the kafkajs client; connections are opened by `admin()`, `producer()` and the consumer's `subscribe()`. */
export function createKafkaJsClient(options: KafkaClientOptions): KafkaClient {
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    retry: { retries: options.retries },
    logLevel: logLevel.NOTHING,
  });
  return {
    adapter: 'kafkajs',
    async admin(): Promise<KafkaAdmin> {
      const admin = kafka.admin();
      await kafkaJsCall('admin.connect', () => admin.connect());
      return new KafkaJsAdmin(admin);
    },
    async producer(settings: KafkaProducerSettings): Promise<KafkaProducer> {
      compressionOf(settings);
      const producer = kafka.producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        idempotent: settings.idempotent,
        ...(settings.transactionalId === undefined ? {} : { transactionalId: settings.transactionalId, maxInFlightRequests: 1 }),
        transactionTimeout: settings.transactionTimeoutMs,
        allowAutoTopicCreation: false,
      });
      await kafkaJsCall('producer.connect', () => producer.connect());
      if (settings.transactionalId !== undefined) {
        // kafkajs initialises the transactional producer id lazily; an empty transaction does it now (no EndTxn is sent
        // for it), so creating the producer fences any earlier one with the same id, as the port promises.
        await kafkaJsCall('producer.initTransactions', async () => (await producer.transaction()).abort());
      }
      return new KafkaJsProducer(producer, settings);
    },
    consumer(settings: KafkaConsumerSettings): KafkaConsumer {
      return new KafkaJsConsumer(kafka, settings);
    },
  };
}

class KafkaJsAdmin implements KafkaAdmin {
  constructor(private readonly admin: Admin) {}

  async createTopics(topics: readonly NewTopic[]): Promise<void> {
    await kafkaJsCall('admin.createTopics', () =>
      this.admin.createTopics({
        waitForLeaders: true,
        topics: topics.map((t) => ({
          topic: t.topic,
          numPartitions: t.partitions,
          replicationFactor: t.replicationFactor ?? 1,
          configEntries: [...(t.configs ?? new Map<string, string>())].map(([name, value]) => ({ name, value })),
        })),
      }),
    );
  }

  async deleteTopics(topics: readonly string[]): Promise<void> {
    await kafkaJsCall('admin.deleteTopics', () => this.admin.deleteTopics({ topics: [...topics] }));
  }

  async listTopics(): Promise<string[]> {
    const topics = await kafkaJsCall('admin.listTopics', () => this.admin.listTopics());
    return topics.filter((t) => !t.startsWith('__'));
  }

  async describeTopics(topics: readonly string[]): Promise<TopicDescription[]> {
    const metadata = await kafkaJsCall('admin.describeTopics', () => this.admin.fetchTopicMetadata({ topics: [...topics] }));
    return metadata.topics.map((t) => ({
      topic: t.name,
      partitions: t.partitions.map((p) => ({ partition: p.partitionId, leader: p.leader })).sort((a, b) => a.partition - b.partition),
    }));
  }

  async fetchTopicOffsets(topic: string): Promise<PartitionOffsets[]> {
    const offsets = await kafkaJsCall('admin.fetchTopicOffsets', () => this.admin.fetchTopicOffsets(topic));
    return offsets.map((o) => ({ partition: o.partition, earliest: BigInt(o.low), end: BigInt(o.high) })).sort((a, b) => a.partition - b.partition);
  }

  async deleteRecords(topic: string, before: readonly { readonly partition: number; readonly offset: bigint }[]): Promise<void> {
    // kafkajs looks the partition leaders up in its metadata cache, which does not know topics it did not fetch yet.
    await kafkaJsCall('admin.deleteRecords', () => this.admin.fetchTopicMetadata({ topics: [topic] }));
    await kafkaJsCall('admin.deleteRecords', () => this.admin.deleteTopicRecords({ topic, partitions: before.map((b) => ({ partition: b.partition, offset: b.offset.toString() })) }));
  }

  async fetchCommittedOffsets(groupId: string, topics: readonly string[]): Promise<TopicPartitionOffset[]> {
    const result = await coordinatorCall('admin.fetchCommittedOffsets', () => this.admin.fetchOffsets({ groupId, topics: [...topics] }));
    return result.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition, offset: BigInt(p.offset) })));
  }

  async close(): Promise<void> {
    await kafkaJsCall('admin.close', () => this.admin.disconnect());
  }
}

function toMessages(records: readonly ProducerRecord[]): Map<string, Message[]> {
  const byTopic = new Map<string, Message[]>();
  for (const r of records) {
    let list = byTopic.get(r.topic);
    if (list === undefined) {
      list = [];
      byTopic.set(r.topic, list);
    }
    const headers: Record<string, Buffer> = Object.create(null) as Record<string, Buffer>;
    for (const [name, value] of r.headers ?? []) headers[name] = value;
    list.push({ key: r.key ?? null, value: r.value, headers, ...(r.partition === undefined ? {} : { partition: r.partition }) });
  }
  return byTopic;
}

function toProduced(metadata: readonly RecordMetadata[]): ProducedPartition[] {
  return metadata.map((m) => ({ topic: m.topicName, partition: m.partition, baseOffset: m.baseOffset === undefined ? -1n : BigInt(m.baseOffset) }));
}

class KafkaJsProducer implements KafkaProducer {
  #closed = false;

  constructor(
    private readonly producer: Producer,
    private readonly settings: KafkaProducerSettings,
  ) {}

  async send(records: readonly ProducerRecord[]): Promise<ProducedPartition[]> {
    if (this.#closed) throw new KafkaClientStateError('kafkajs', 'send on a closed producer');
    if (this.settings.transactionalId !== undefined) throw new KafkaClientStateError('kafkajs', 'a transactional producer sends inside beginTransaction()');
    const topicMessages = [...toMessages(records)].map(([topic, messages]) => ({ topic, messages }));
    const acks = this.settings.acks;
    const metadata = await kafkaJsCall('producer.send', () => this.producer.sendBatch({ topicMessages, acks, compression: compressionOf(this.settings) }));
    return toProduced(metadata);
  }

  async beginTransaction(): Promise<KafkaTransaction> {
    if (this.#closed) throw new KafkaClientStateError('kafkajs', 'beginTransaction on a closed producer');
    if (this.settings.transactionalId === undefined) throw new KafkaClientStateError('kafkajs', 'beginTransaction needs a transactionalId');
    const tx = await kafkaJsCall('producer.beginTransaction', () => this.producer.transaction());
    return new KafkaJsTransaction(tx, this.settings);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await kafkaJsCall('producer.close', () => this.producer.disconnect());
  }
}

class KafkaJsTransaction implements KafkaTransaction {
  constructor(
    private readonly tx: Transaction,
    private readonly settings: KafkaProducerSettings,
  ) {}

  async send(records: readonly ProducerRecord[]): Promise<ProducedPartition[]> {
    const topicMessages = [...toMessages(records)].map(([topic, messages]) => ({ topic, messages }));
    const compression = compressionOf(this.settings);
    const metadata = await kafkaJsCall('transaction.send', () => this.tx.sendBatch({ topicMessages, acks: -1, compression }));
    return toProduced(metadata);
  }

  async sendOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void> {
    const byTopic = new Map<string, { partition: number; offset: string }[]>();
    for (const o of offsets) {
      const list = byTopic.get(o.topic) ?? [];
      list.push({ partition: o.partition, offset: o.offset.toString() });
      byTopic.set(o.topic, list);
    }
    const topics = [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
    await kafkaJsCall('transaction.sendOffsets', () => this.tx.sendOffsets({ consumerGroupId: groupId, topics }));
  }

  async commit(): Promise<void> {
    await kafkaJsCall('transaction.commit', () => this.tx.commit());
  }

  async abort(): Promise<void> {
    await kafkaJsCall('transaction.abort', () => this.tx.abort());
  }
}
