/**
 * The Kafka client port: the few operations DataFlow's Kafka source, sink and
 * dead-letter target need, independent of the client library. Two adapters
 * implement it (`kafkajs`, the default, and `@platformatic/kafka`); one
 * contract suite (`describeKafkaClientContract` in
 * `@dataflow/connectors/testing`) keeps them interchangeable.
 *
 * Conventions: offsets are `bigint` (Kafka offsets are 64-bit); a committed
 * offset is the offset of the *next* record to read, as in Kafka itself; keys,
 * values and header values are bytes (`Buffer`), header names are strings.
 * Every failure is a `KafkaError` (see `kafka-errors.ts`) with `retriable`
 * taken from the client's own classification.
 */

/** A topic and one of its partitions. */
export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** A position in a partition: the offset of the next record to read. */
export interface TopicPartitionOffset extends TopicPartition {
  readonly offset: bigint;
}

/** A record to produce. Without `partition`, the key's murmur2 hash picks it (Java-client compatible); without a key, the client spreads records. */
export interface ProducerRecord {
  readonly topic: string;
  readonly partition?: number;
  readonly key?: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: ReadonlyMap<string, Buffer>;
}

/** Where a produced batch landed: one entry per partition written. */
export interface ProducedPartition extends TopicPartition {
  /** Offset of the first record written to the partition by this call (`-1n` when the broker did not say, e.g. with acks = 0). */
  readonly baseOffset: bigint;
}

/** A record read by a consumer. */
export interface ConsumedRecord extends TopicPartition {
  readonly offset: bigint;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers: ReadonlyMap<string, Buffer>;
  /** The record's timestamp (create or log-append time, per the topic), epoch milliseconds. */
  readonly timestamp: number;
}

/** A topic to create. */
export interface NewTopic {
  readonly topic: string;
  readonly partitions: number;
  /** Default 1 (the test broker has one node); production topics should use 3. */
  readonly replicationFactor?: number;
  /** Topic configs, e.g. `retention.ms`. */
  readonly configs?: ReadonlyMap<string, string>;
}

/** A topic's partitions and their leaders. */
export interface TopicDescription {
  readonly topic: string;
  readonly partitions: readonly { readonly partition: number; readonly leader: number }[];
}

/** The earliest and the end offset of a partition (end = offset the next record will get). */
export interface PartitionOffsets {
  readonly partition: number;
  readonly earliest: bigint;
  readonly end: bigint;
}

/** Topic and consumer-group administration. */
export interface KafkaAdmin {
  /** Creates the topics and waits for their leaders; topics that already exist are left as they are. */
  createTopics(topics: readonly NewTopic[]): Promise<void>;
  deleteTopics(topics: readonly string[]): Promise<void>;
  /** Names of all topics, internal ones (`__consumer_offsets`, ...) excluded. */
  listTopics(): Promise<string[]>;
  describeTopics(topics: readonly string[]): Promise<TopicDescription[]>;
  /** Earliest and end offsets of every partition of `topic`. */
  fetchTopicOffsets(topic: string): Promise<PartitionOffsets[]>;
  /** Deletes the records of each partition before `offset` (as retention would): the partition's earliest offset becomes `offset`. */
  deleteRecords(topic: string, before: readonly { readonly partition: number; readonly offset: bigint }[]): Promise<void>;
  /**
   * The group's committed offsets for every partition of `topics`; `-1n` for a
   * partition without one. Offsets committed by a transaction become visible
   * shortly after the transaction's commit returns (the coordinator writes
   * its markers asynchronously): the platformatic adapter asks for stable
   * offsets (the broker makes it retry while one is pending); kafkajs' admin
   * cannot, and may still return the earlier offset for a moment.
   */
  fetchCommittedOffsets(groupId: string, topics: readonly string[]): Promise<TopicPartitionOffset[]>;
  close(): Promise<void>;
}

/** Producer settings (already validated; see `kafkaProducerOptionsSchema`). */
export interface KafkaProducerSettings {
  /** -1 (all in-sync replicas, the default), 1 (leader) or 0 (no acknowledgement). */
  readonly acks: -1 | 0 | 1;
  readonly compression: KafkaCompression;
  /** Exactly-once per partition and session (no duplicates from client retries). Requires acks = -1. */
  readonly idempotent: boolean;
  /**
   * Makes the producer transactional. Creating it registers the id with the
   * transaction coordinator at once (InitProducerId), which aborts an open
   * transaction of an earlier producer with the same id and fences that
   * producer: its next operation fails with `KafkaProducerFencedError`.
   */
  readonly transactionalId?: string;
  /** Broker-side timeout of an open transaction, ms. */
  readonly transactionTimeoutMs: number;
}

export type KafkaCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';

/** Produces batches of records. */
export interface KafkaProducer {
  /** Sends the records (any topics, any partitions) and resolves once the broker acknowledged them per `acks`. Not allowed on a transactional producer. */
  send(records: readonly ProducerRecord[]): Promise<ProducedPartition[]>;
  /** Begins a transaction (transactional producers only; one at a time). */
  beginTransaction(): Promise<KafkaTransaction>;
  close(): Promise<void>;
}

/** An open Kafka transaction: records and consumer offsets become visible together on commit, or never. */
export interface KafkaTransaction {
  send(records: readonly ProducerRecord[]): Promise<ProducedPartition[]>;
  /** Commits `offsets` (next offsets to read) for consumer group `groupId` as part of this transaction. */
  sendOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Consumer settings (already validated; see `kafkaConsumerOptionsSchema`). */
export interface KafkaConsumerSettings {
  readonly groupId: string;
  /** Where a partition starts without a committed offset, or when its position is no longer in the log (deleted by retention). */
  readonly autoOffsetReset: 'earliest' | 'latest';
  /** `read_committed` hides records of open and aborted transactions. */
  readonly isolation: 'read_committed' | 'read_uncommitted';
  /** Most records fetched but not yet polled, over all partitions; fetching waits while the buffer is full. */
  readonly maxBufferedRecords: number;
  readonly maxBytesPerPartition: number;
  /** Longest a broker holds a fetch waiting for data, ms. */
  readonly fetchMaxWaitMs: number;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly rebalanceTimeoutMs: number;
}

/**
 * Told when the group assigns or takes away partitions. The classic (eager)
 * group protocol that both adapters use takes every partition away when a
 * rebalance starts (`onRevoked`) and hands out the new assignment once the
 * group is synced (`onAssigned`). When `onRevoked` is called, records of those
 * partitions are no longer returned by `poll` (buffered ones are dropped and
 * will be fetched again from the committed offset). Neither client waits for
 * the callbacks' promises before rejoining; a commit made from `onRevoked` may
 * therefore fail with a retriable `KafkaRebalanceError`.
 */
export interface RebalanceListener {
  onAssigned?(partitions: readonly TopicPartition[]): void | Promise<void>;
  onRevoked?(partitions: readonly TopicPartition[]): void | Promise<void>;
}

/** Options of `poll`. */
export interface PollOptions {
  /** Most records returned. */
  readonly maxRecords: number;
  /** Longest to wait for the first record, ms; an empty array after it. */
  readonly maxWaitMs: number;
  /** Ends the wait early (resolves with what is buffered, possibly nothing). */
  readonly signal?: AbortSignal;
}

/**
 * A consumer-group member. Offsets are committed only by `commit` (never
 * automatically). Records are fetched in the background into a bounded buffer
 * (`maxBufferedRecords`) and handed out by `poll`, in offset order per
 * partition.
 */
export interface KafkaConsumer {
  /**
   * Joins the group subscribed to `topics` (names, or a pattern resolved
   * against the broker's topics when subscribing) and starts fetching.
   * Called once.
   */
  subscribe(topics: readonly string[] | RegExp, listener?: RebalanceListener): Promise<void>;
  /** The next buffered records of partitions that are assigned and not paused. */
  poll(options: PollOptions): Promise<ConsumedRecord[]>;
  /** Stops delivering the partitions: `poll` returns none of their records until `resume`, and no more are fetched. */
  pause(partitions: readonly TopicPartition[]): void;
  resume(partitions: readonly TopicPartition[]): void;
  /** Makes `offset` the next record `poll` returns for the partition (must be assigned). */
  seek(position: TopicPartitionOffset): void;
  /** Commits the offsets (next offsets to read) for the group. */
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void>;
  /** Partitions currently assigned to this member. */
  assignment(): TopicPartition[];
  /** Leaves the group and closes the connections; a pending `poll` resolves with what it has. */
  close(): Promise<void>;
}

/** A connected client of one adapter; hands out admins, producers and consumers sharing its connection settings. */
export interface KafkaClient {
  readonly adapter: KafkaAdapterName;
  admin(): Promise<KafkaAdmin>;
  producer(settings: KafkaProducerSettings): Promise<KafkaProducer>;
  consumer(settings: KafkaConsumerSettings): KafkaConsumer;
}

export type KafkaAdapterName = 'kafkajs' | 'platformatic';

/** Map key of a topic-partition (`topic` may contain any character but NUL, so the separator cannot collide). */
export function partitionKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`;
}
