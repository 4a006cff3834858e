/**
 * The Kafka source: a consumer group member per pipeline that hands out
 * batches of records and commits their offsets only once the pipeline has
 * durably checkpointed them (or never, when the sink commits them in its own
 * transaction; ADR 0009).
 *
 * Positions: the source offset of a batch is, per topic-partition, the offset
 * of the next record to read (contract C2, `kafka-source-offset.ts`). On open,
 * and whenever the group assigns a partition, the source seeks the partition
 * to the position it knows: the journal checkpoint's (the truth after a
 * crash, whatever Kafka has committed), or with `offsetsCommittedBySink` the
 * further of the checkpoint's and Kafka's committed one. Partitions it knows
 * nothing about start at the group's committed offset, else per
 * `autoOffsetReset`.
 *
 * Rebalances (the eager protocol takes every partition away, then assigns the
 * new set): records of revoked partitions that were fetched but not handed out
 * are dropped by the consumer; what was handed out stays in the batch in
 * flight, which the pipeline still writes and checkpoints. A partition assigned
 * again resumes right after what was handed out; a partition that went to
 * another member is forgotten (its position leaves the next offsets), and
 * acknowledgements skip partitions no longer assigned: the new owner starts at
 * the committed offset, so records handed out here but not yet committed may be
 * read twice across members, never skipped.
 *
 * Parallel tasks (`parallelism: N`, ADR 0013): every task's source joins the
 * same group (default `dataflow-<pipelineId>` of the pipeline, not of the
 * task), so the group protocol splits the partitions among them, and each
 * task's checkpoint holds the positions of the partitions it was assigned.
 * A task's checkpoint may still name a partition that moved to another task
 * since; so on open a task takes per partition the further of its checkpoint
 * and the group's committed offset (as with `offsetsCommittedBySink`). That is
 * safe because in this mode offsets are committed only after a durable
 * checkpoint of the task that read them: the committed offset never passes
 * what some task has written, and taking it skips only what another task
 * already wrote instead of reading it again.
 *
 * Backpressure: the consumer's buffer holds at most `maxBufferedRecords`; when
 * it is full, fetching waits (no partition is fetched ahead without bound) and
 * the pipeline pulls one batch at a time.
 *
 * Lag (`lag()`, sampled by the pipeline every few seconds): per assigned
 * partition, the end offset (high watermark) from the admin client minus the
 * next offset the source hands out; for a partition nothing was handed out
 * from yet, the group's committed offset, else the earliest or end offset per
 * `autoOffsetReset`. The admin connection is opened at the first sample and
 * kept until `close`. The same code serves both client adapters (it uses
 * only the port). Records buffered by the consumer but not handed out count
 * as lag; with transactional producers a partition's commit markers do too
 * (a partition read to its end shows 1 per trailing marker).
 */
import type { DataRecord, JsonValue, Source, SourceBatch, SourceContext, SourceLag, SourceOffset, SourceRecord } from '@dataflow/core';
import { checkRecordBounds, ConnectorError } from '@dataflow/core';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';
import { createKafkaClient } from './kafka-client.js';
import { KafkaRebalanceError } from './kafka-errors.js';
import { checkConsumerTimeouts, kafkaClientOptionsSchema, kafkaConsumerTuningFields } from './kafka-options.js';
import { partitionKey, type ConsumedRecord, type KafkaAdmin, type KafkaClient, type KafkaConsumer, type TopicPartition, type TopicPartitionOffset } from './kafka-port.js';
import { decodeKafkaSourceOffset, encodeKafkaSourceOffset } from './kafka-source-offset.js';

/** How often in a row a retriable offset commit may fail (each later ack retries it) before the failure reaches the pipeline. */
export const MAX_CONSECUTIVE_COMMIT_FAILURES = 5;

function validPattern(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

/**
 * Definition of the Kafka source.
 *
 * @example
 * ```ts
 * parseKafkaSourceDefinition({ type: 'kafka', brokers: ['127.0.0.1:9092'], topics: ['orders'], format: 'json' });
 * ```
 */
export const kafkaSourceDefinitionSchema = z
  .strictObject({
    type: z.literal('kafka'),
    ...kafkaClientOptionsSchema.shape,
    /** Topics to read; give this or `topicPattern`. */
    topics: z.array(z.string().min(1).max(249)).min(1, 'at least one topic').optional(),
    /** A regular expression matched against the broker's topic names when subscribing, e.g. `^prometheus_metrics_.*`. */
    topicPattern: z.string().min(1).refine(validPattern, 'not a valid regular expression').optional(),
    /** The consumer group; default `dataflow-<pipelineId>`. */
    groupId: z.string().min(1).max(255).optional(),
    /** How record values become record fields: parsed JSON, UTF-8 text, or base64 of the bytes. */
    format: z.enum(['json', 'string', 'bytes']).default('json'),
    /** How keys become the `key` field: UTF-8 text, or base64 of the bytes. */
    keyFormat: z.enum(['string', 'bytes']).default('string'),
    ...kafkaConsumerTuningFields(),
  })
  .superRefine((value, ctx) => {
    if ((value.topics === undefined) === (value.topicPattern === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['topics'], message: 'give exactly one of topics (a list of names) or topicPattern (a regular expression)' });
    }
    checkConsumerTimeouts(value, ctx);
  });

export type KafkaSourceDefinition = z.output<typeof kafkaSourceDefinitionSchema>;
export type KafkaSourceDefinitionInput = z.input<typeof kafkaSourceDefinitionSchema>;

/** Validates a Kafka source definition; throws `InvalidConnectorOptionsError` with field-level issues. */
export function parseKafkaSourceDefinition(input: unknown): KafkaSourceDefinition {
  return parseDefinition('kafka', kafkaSourceDefinitionSchema, input);
}

/** What the Kafka source may be given instead of building it from its definition (tests). */
export interface KafkaSourceDependencies {
  /** A client to use instead of one created from the definition; the source does not close it. */
  readonly client?: KafkaClient;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The Kafka source; see the module comment. */
export class KafkaSource implements Source {
  readonly type = 'kafka';
  readonly definition: KafkaSourceDefinition;
  readonly #injectedClient: KafkaClient | undefined;
  #client: KafkaClient | undefined;
  #consumer: KafkaConsumer | undefined;
  #groupId = '';
  #committedBySink = false;
  /** Per partition: the next offset to hand out (what the next batch's offset records). */
  readonly #positions = new Map<string, TopicPartitionOffset>();
  /** Acknowledged positions whose commit failed retriably; retried with the next ack. */
  readonly #pendingCommit = new Map<string, TopicPartitionOffset>();
  #commitFailures = 0;
  #commitFailure: ConnectorError | undefined;
  #commitInFlight: Promise<void> | undefined;
  #closed = false;
  /** The admin connection of `lag()`, opened at its first call. */
  #admin: Promise<KafkaAdmin> | undefined;

  constructor(definition: KafkaSourceDefinitionInput | Record<string, unknown>, dependencies: KafkaSourceDependencies = {}) {
    this.definition = parseKafkaSourceDefinition(definition);
    this.#injectedClient = dependencies.client;
  }

  /** The consumer group in use (known after `open`). */
  get groupId(): string {
    return this.#groupId;
  }

  async open(context: SourceContext): Promise<void> {
    const d = this.definition;
    // Tasks of one pipeline share its group (named after the pipeline, not the task).
    this.#groupId = d.groupId ?? `dataflow-${context.task?.pipelineId ?? context.pipelineId}`;
    this.#committedBySink = context.offsetsCommittedBySink === true;
    if (context.checkpoint !== undefined) {
      const restored = decodeKafkaSourceOffset(context.checkpoint);
      if (restored.groupId !== this.#groupId) {
        throw new ConnectorError(
          'kafka',
          `the checkpoint was taken with consumer group ${JSON.stringify(restored.groupId)} but the source is configured with ${JSON.stringify(this.#groupId)}; ` +
            'changing the group of a running pipeline loses its positions: reset the pipeline, or set groupId back',
          { retriable: false },
        );
      }
      for (const p of restored.positions) this.#positions.set(partitionKey(p.topic, p.partition), p);
    }
    const client = this.#injectedClient ?? createKafkaClient(clientOptions(d));
    this.#client = client;
    const subscription = d.topics ?? new RegExp(d.topicPattern ?? '');
    const reconcile = this.#committedBySink || (context.task?.count ?? 1) > 1;
    if (d.topics !== undefined || reconcile) {
      // One admin client for both checks of the open.
      const admin = await client.admin();
      try {
        if (d.topics !== undefined) await this.#requireTopics(admin, d.topics);
        if (reconcile) await this.#reconcileWithCommitted(admin, subscription);
      } finally {
        await admin.close();
      }
    }
    const consumer = client.consumer({
      groupId: this.#groupId,
      autoOffsetReset: d.autoOffsetReset,
      isolation: d.isolation,
      maxBufferedRecords: d.maxBufferedRecords,
      maxBytesPerPartition: d.maxBytesPerPartition,
      fetchMaxWaitMs: d.fetchMaxWaitMs,
      sessionTimeoutMs: d.sessionTimeoutMs,
      heartbeatIntervalMs: d.heartbeatIntervalMs,
      rebalanceTimeoutMs: d.rebalanceTimeoutMs,
    });
    this.#consumer = consumer;
    await consumer.subscribe(subscription, {
      // Called synchronously when the group hands out partitions, before any of their records can be polled.
      onAssigned: (assigned) => this.#assigned(consumer, assigned),
    });
  }

  async poll(maxRecords: number, maxWaitMs: number): Promise<SourceBatch> {
    const consumer = this.#requireOpen('poll');
    const consumed = await consumer.poll({ maxRecords, maxWaitMs });
    const records: SourceRecord[] = consumed.map((r) => this.#toRecord(r));
    for (const r of consumed) this.#positions.set(partitionKey(r.topic, r.partition), { topic: r.topic, partition: r.partition, offset: r.offset + 1n });
    return { records, offset: encodeKafkaSourceOffset(this.#groupId, [...this.#positions.values()]), done: false };
  }

  /**
   * Commits `offset` to Kafka in the background: the checkpoint, not Kafka's
   * committed offset, is what a restart resumes from, so the next batch need
   * not wait for the commit's round trip. At most one commit is in flight;
   * acks arriving meanwhile merge into the next. A commit that fails
   * retriably (a rebalance) is retried with the next ack; a failure that is
   * not retriable, or `MAX_CONSECUTIVE_COMMIT_FAILURES` in a row, fails the
   * next `ack` (and `close`) with the cause.
   */
  ack(offset: SourceOffset): Promise<void> {
    if (this.#committedBySink) return Promise.resolve();
    try {
      this.#requireOpen('ack');
      this.#throwCommitFailure();
      for (const p of decodeKafkaSourceOffset(offset).positions) this.#pendingCommit.set(partitionKey(p.topic, p.partition), p);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    this.#commitInFlight ??= this.#commitPending().finally(() => (this.#commitInFlight = undefined));
    return Promise.resolve();
  }

  #throwCommitFailure(): void {
    const failure = this.#commitFailure;
    if (failure !== undefined) throw failure;
  }

  /** Commits what is pending until nothing is (acks may add more while a commit is in flight). */
  async #commitPending(): Promise<void> {
    const consumer = this.#consumer;
    while (consumer !== undefined && this.#pendingCommit.size > 0 && this.#commitFailure === undefined) {
      const assigned = new Set(consumer.assignment().map((tp) => partitionKey(tp.topic, tp.partition)));
      // A partition no longer assigned is another member's now: its commit is not ours to make.
      for (const key of [...this.#pendingCommit.keys()]) if (!assigned.has(key)) this.#pendingCommit.delete(key);
      const commit = [...this.#pendingCommit.values()];
      if (commit.length === 0) return;
      try {
        await consumer.commit(commit);
        this.#commitFailures = 0;
        for (const p of commit) {
          const key = partitionKey(p.topic, p.partition);
          if (this.#pendingCommit.get(key) === p) this.#pendingCommit.delete(key);
        }
      } catch (error) {
        this.#commitFailures++;
        const retriable = error instanceof KafkaRebalanceError || (error as { retriable?: unknown } | null)?.retriable === true;
        if (!retriable || this.#commitFailures >= MAX_CONSECUTIVE_COMMIT_FAILURES) {
          this.#commitFailure = new ConnectorError('kafka', `committing the offsets of consumer group ${this.#groupId} failed (${this.#commitFailures} time(s) in a row)`, {
            retriable,
            cause: error,
          });
        }
        // Retried with the next ack (the positions stay pending).
        return;
      }
    }
  }

  /**
   * The lag of each partition assigned now: its end offset minus the next
   * offset this source hands out (see the module comment). Two admin round
   * trips per topic at most (end offsets, and committed offsets while a
   * partition has no position here); may run while a poll is pending.
   */
  async lag(): Promise<readonly SourceLag[]> {
    const consumer = this.#requireOpen('lag');
    const assigned = consumer.assignment();
    if (assigned.length === 0) return [];
    const client = this.#client;
    if (client === undefined) return [];
    const opening = (this.#admin ??= client.admin());
    let admin: KafkaAdmin;
    try {
      admin = await opening;
    } catch (error) {
      if (this.#admin === opening) this.#admin = undefined; // the next sample connects again
      throw new ConnectorError('kafka', `reading the lag of consumer group ${this.#groupId}: the admin client did not connect`, { retriable: true, cause: error });
    }
    try {
      const topics = [...new Set(assigned.map((tp) => tp.topic))];
      const offsets = new Map<string, { earliest: bigint; end: bigint }>();
      for (const [i, partitions] of (await Promise.all(topics.map((t) => admin.fetchTopicOffsets(t)))).entries()) {
        for (const p of partitions) offsets.set(partitionKey(topics[i] ?? '', p.partition), p);
      }
      const unknown = assigned.filter((tp) => !this.#positions.has(partitionKey(tp.topic, tp.partition)));
      const committed = new Map<string, bigint>();
      if (unknown.length > 0) {
        for (const c of await admin.fetchCommittedOffsets(this.#groupId, [...new Set(unknown.map((tp) => tp.topic))])) {
          if (c.offset >= 0n) committed.set(partitionKey(c.topic, c.partition), c.offset);
        }
      }
      const lags: SourceLag[] = [];
      for (const tp of assigned) {
        const key = partitionKey(tp.topic, tp.partition);
        const bounds = offsets.get(key);
        if (bounds === undefined) continue;
        const next = this.#positions.get(key)?.offset ?? committed.get(key) ?? (this.definition.autoOffsetReset === 'earliest' ? bounds.earliest : bounds.end);
        lags.push({ topic: tp.topic, partition: tp.partition, lag: Number(bounds.end > next ? bounds.end - next : 0n) });
      }
      return lags;
    } catch (error) {
      if (error instanceof ConnectorError) throw error;
      throw new ConnectorError('kafka', `reading the lag of consumer group ${this.#groupId} failed`, { retriable: (error as { retriable?: unknown } | null)?.retriable === true, cause: error });
    }
  }

  /** Finishes the commit in flight and commits what is still pending (so a restart re-reads less), then leaves the group. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#commitInFlight;
    if (this.#commitFailure === undefined && this.#pendingCommit.size > 0) await this.#commitPending();
    this.#closed = true;
    const admin = this.#admin;
    this.#admin = undefined;
    await this.#consumer?.close();
    // An admin client that did not connect was reported by the lag() that opened it; one that did is closed here, and its failure is this close's.
    const opened = await admin?.catch(() => undefined);
    await opened?.close();
    this.#throwCommitFailure();
  }

  #requireOpen(operation: string): KafkaConsumer {
    if (this.#consumer === undefined || this.#closed) {
      throw new ConnectorError('kafka', `${operation} on a Kafka source that is ${this.#closed ? 'closed' : 'not open'}`, { retriable: false });
    }
    return this.#consumer;
  }

  /** New assignment: seek what we know, forget partitions that went elsewhere. */
  #assigned(consumer: KafkaConsumer, assigned: readonly TopicPartition[]): void {
    const keys = new Set<string>();
    for (const tp of assigned) {
      const key = partitionKey(tp.topic, tp.partition);
      keys.add(key);
      const known = this.#positions.get(key);
      if (known !== undefined) consumer.seek(known);
    }
    for (const key of [...this.#positions.keys()]) if (!keys.has(key)) this.#positions.delete(key);
  }

  /**
   * Refuses to subscribe to a topic the brokers do not have, retriably (it
   * may be created; the pipeline retries with backoff and shows why): the
   * clients differ there (kafkajs retries a vague UNKNOWN_TOPIC_OR_PARTITION,
   * @platformatic/kafka fails for good with "Unknown topic").
   */
  async #requireTopics(admin: KafkaAdmin, topics: readonly string[]): Promise<void> {
    const listed = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !listed.has(t));
    if (missing.length === 0) return;
    throw new ConnectorError(
      'kafka',
      `the brokers have no topic ${missing.slice(0, 5).map((t) => JSON.stringify(t)).join(', ')} (of the source's topics): create it (DataFlow never has the brokers create a topic, whatever auto.create.topics.enable says); the pipeline retries until it exists`,
      { retriable: true },
    );
  }

  /**
   * With a sink that commits offsets itself, or as one of several tasks: per
   * partition, the further of the checkpoint and Kafka's committed offset.
   */
  async #reconcileWithCommitted(admin: KafkaAdmin, subscription: readonly string[] | RegExp): Promise<void> {
    const topics = Array.isArray(subscription) ? subscription : (await admin.listTopics()).filter((t) => (subscription as RegExp).test(t));
    if (topics.length === 0) return;
    for (const committed of await admin.fetchCommittedOffsets(this.#groupId, topics)) {
      if (committed.offset < 0n) continue;
      const key = partitionKey(committed.topic, committed.partition);
      const known = this.#positions.get(key);
      if (known === undefined || committed.offset > known.offset) this.#positions.set(key, committed);
    }
  }

  #toRecord(r: ConsumedRecord): SourceRecord {
    const where = `${r.topic}-${r.partition}@${r.offset}`;
    let key: string | null = null;
    if (r.key !== null) {
      if (this.definition.keyFormat === 'bytes') key = r.key.toString('base64');
      else {
        try {
          key = utf8.decode(r.key);
        } catch {
          return { ok: false, raw: rawText(r.value), reason: `record ${where}: the key is not valid UTF-8 (use keyFormat: 'bytes')` };
        }
      }
    }
    let value: JsonValue;
    if (r.value === null) value = null;
    else if (this.definition.format === 'bytes') value = r.value.toString('base64');
    else {
      let text: string;
      try {
        text = utf8.decode(r.value);
      } catch {
        return { ok: false, raw: rawText(r.value), reason: `record ${where}: the value is not valid UTF-8 (use format: 'bytes')` };
      }
      if (this.definition.format === 'string') value = text;
      else {
        try {
          value = JSON.parse(text) as JsonValue;
        } catch (error) {
          return { ok: false, raw: text, reason: `record ${where}: the value is not valid JSON (${error instanceof Error ? error.message : String(error)})` };
        }
      }
    }
    const headers = Object.fromEntries([...r.headers].map(([name, v]) => [name, v.toString('utf8')]));
    const record: DataRecord = { topic: r.topic, partition: r.partition, offset: r.offset.toString(), timestamp: r.timestamp, key, headers, value };
    // Nested deeper than 64 levels or over 1 MiB: refused here, with the value kept as text, before anything recursive meets it.
    const issue = checkRecordBounds(record);
    if (issue !== undefined) return { ok: false, raw: rawText(r.value), reason: `record ${where}: ${issue.path === '' ? '' : `${issue.path}: `}${issue.message}` };
    return { ok: true, value: record };
  }
}

/** The raw text of a value for the dead-letter queue: UTF-8 when it is, else base64 prefixed `base64:`. */
function rawText(value: Buffer | null): string {
  if (value === null) return '';
  try {
    return utf8.decode(value);
  } catch {
    return `base64:${value.toString('base64')}`;
  }
}

function clientOptions(d: KafkaSourceDefinition) {
  return {
    client: d.client,
    brokers: d.brokers,
    clientId: d.clientId,
    connectTimeoutMs: d.connectTimeoutMs,
    requestTimeoutMs: d.requestTimeoutMs,
    retries: d.retries,
  };
}
