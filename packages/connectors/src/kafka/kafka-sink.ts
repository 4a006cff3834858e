/**
 * The Kafka sink: writes each record to a topic named by a template
 * (`prometheus_metrics_{job}`), with its key, value and headers taken from
 * record fields.
 *
 * Two modes:
 * - at-least-once (default): an idempotent producer (no duplicates from the
 *   client's own retries) sends the batch and the write returns once the
 *   brokers acknowledged it per `acks`. After a crash, the batches after the
 *   last checkpoint are written again.
 * - `exactlyOnce`: one Kafka transaction per batch holds the batch's records
 *   and the consumer group's offsets for the source position the batch
 *   reaches (`SinkBatch.sourceOffset`, contract C1 / ADR 0009), so for
 *   `read_committed` readers the output of a Kafka -> Kafka pipeline holds
 *   every input record exactly once. The transactional id is stable per
 *   pipeline (`dataflow-<pipelineId>`): a new incarnation fences a zombie
 *   one, whose next write fails with a non-retriable error.
 *
 * A record the sink cannot write (a topic placeholder field missing, an
 * invalid topic name, a missing value field) is reported as rejected, with
 * the reason, and handled by the sink's error policy (dead-letter queue):
 * nothing is dropped silently.
 */
import type { DataRecord, JsonValue, Sink, SinkBatch, SinkContext, SinkWriteResult } from '@dataflow/core';
import { ConnectorError } from '@dataflow/core';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';
import { createKafkaClient } from './kafka-client.js';
import { KafkaProducerFencedError } from './kafka-errors.js';
import { kafkaClientOptionsSchema, parseKafkaProducerOptions } from './kafka-options.js';
import type { KafkaClient, KafkaProducer, ProducerRecord } from './kafka-port.js';
import { decodeKafkaSourceOffset } from './kafka-source-offset.js';

const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
const PLACEHOLDER = /\{([^{}]+)\}/g;
const fieldPath = z.string().regex(/^[^.\s{}]+(\.[^.\s{}]+)*$/, 'expected a field name or a dotted path such as labels.job');

/**
 * Definition of the Kafka sink.
 *
 * @example
 * ```ts
 * parseKafkaSinkDefinition({ type: 'kafka', brokers: ['127.0.0.1:9092'], topic: 'prometheus_metrics_{job}', value: 'body' });
 * ```
 */
export const kafkaSinkDefinitionSchema = z
  .strictObject({
    type: z.literal('kafka'),
    ...kafkaClientOptionsSchema.shape,
    /** The topic, or a template whose `{field}` placeholders take values from the record. */
    topic: z
      .string()
      .min(1)
      .refine((t) => [...t.matchAll(PLACEHOLDER)].every((m) => fieldPath.safeParse(m[1]).success), 'a placeholder must name a field: {job} or {labels.job}')
      .refine((t) => TOPIC_NAME.test(t.replace(PLACEHOLDER, 'x')), 'outside its placeholders a topic name holds only letters, digits, ".", "_" and "-"'),
    /** The field whose value becomes the record key (text; other JSON values as JSON); no key when absent. */
    key: fieldPath.optional(),
    /** The field written as the value (a string as is, anything else as JSON); default the whole record as JSON. */
    value: fieldPath.optional(),
    /** Header name -> field whose value (as text) becomes the header; fields a record lacks are left out. */
    headers: z.record(z.string().min(1), fieldPath).default({}),
    acks: z.union([z.literal(-1), z.literal(0), z.literal(1)]).default(-1),
    compression: z.enum(['none', 'gzip', 'snappy', 'lz4', 'zstd']).default('none'),
    idempotent: z.boolean().default(true),
    /** One Kafka transaction per batch with the source's consumer offsets (Kafka -> Kafka exactly-once). */
    exactlyOnce: z.boolean().default(false),
    /** Default `dataflow-<pipelineId>`; must be stable across restarts and unique per pipeline. */
    transactionalId: z.string().min(1).optional(),
    transactionTimeoutMs: z.number().int().positive().max(900_000).default(60_000),
  })
  .superRefine((value, ctx) => {
    if (value.exactlyOnce && value.acks !== -1) ctx.addIssue({ code: 'custom', path: ['acks'], message: 'exactlyOnce needs acks = -1' });
    if (value.exactlyOnce && !value.idempotent) ctx.addIssue({ code: 'custom', path: ['idempotent'], message: 'exactlyOnce needs the idempotent producer' });
    if (!value.exactlyOnce && value.transactionalId !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['transactionalId'], message: 'a transactionalId is only used with exactlyOnce: true' });
    }
    if (value.idempotent && value.acks !== -1) {
      ctx.addIssue({ code: 'custom', path: ['acks'], message: 'an idempotent producer needs acks = -1 (set idempotent: false for acks 0 or 1)' });
    }
    // kafkajs refuses to build such a producer, and without its retries an idempotent producer's guarantee has nothing to protect.
    if ((value.idempotent || value.exactlyOnce) && value.retries === 0) {
      ctx.addIssue({ code: 'custom', path: ['retries'], message: 'an idempotent producer needs retries >= 1 (set idempotent: false to send without retries)' });
    }
    if (value.client === 'kafkajs' && value.compression !== 'none' && value.compression !== 'gzip') {
      ctx.addIssue({ code: 'custom', path: ['compression'], message: `the kafkajs adapter supports none and gzip; use client: 'platformatic' for ${value.compression}` });
    }
  });

export type KafkaSinkDefinition = z.output<typeof kafkaSinkDefinitionSchema>;
export type KafkaSinkDefinitionInput = z.input<typeof kafkaSinkDefinitionSchema>;

/** Validates a Kafka sink definition; throws `InvalidConnectorOptionsError` with field-level issues. */
export function parseKafkaSinkDefinition(input: unknown): KafkaSinkDefinition {
  return parseDefinition('kafka', kafkaSinkDefinitionSchema, input);
}

/** What the sink may be given instead of building it from its definition (tests). */
export interface KafkaSinkDependencies {
  /** A client to use instead of one created from the definition. */
  readonly client?: KafkaClient;
}

/** The value at a dotted path of a record; undefined when a step is missing (own properties only). */
export function valueAtPath(record: DataRecord, path: string): JsonValue | undefined {
  let current: JsonValue | undefined = record;
  for (const step of path.split('.')) {
    if (current === null || typeof current !== 'object' || Array.isArray(current) || !Object.hasOwn(current, step)) return undefined;
    current = (current as { readonly [key: string]: JsonValue })[step];
  }
  return current;
}

function asText(value: JsonValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Builds the producer record of `record`, or the reason it cannot be written. */
export function toProducerRecord(d: KafkaSinkDefinition, record: DataRecord): ProducerRecord | { readonly reason: string } {
  let missing: string | undefined;
  const topic = d.topic.replace(PLACEHOLDER, (_, path: string) => {
    const v = valueAtPath(record, path);
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
    missing ??= path;
    return '';
  });
  if (missing !== undefined) return { reason: `the topic template ${JSON.stringify(d.topic)} needs field ${JSON.stringify(missing)} (a string or number), which the record lacks` };
  if (!TOPIC_NAME.test(topic)) return { reason: `${JSON.stringify(topic.slice(0, 300))} is not a valid topic name (1-249 of letters, digits, ".", "_", "-")` };
  let value: Buffer | null;
  if (d.value === undefined) value = Buffer.from(JSON.stringify(record));
  else {
    const v = valueAtPath(record, d.value);
    if (v === undefined) return { reason: `the value field ${JSON.stringify(d.value)} is missing` };
    value = v === null ? null : Buffer.from(asText(v));
  }
  const keyValue = d.key === undefined ? undefined : valueAtPath(record, d.key);
  const headerEntries: [string, Buffer][] = [];
  for (const [name, path] of Object.entries(d.headers)) {
    const v = valueAtPath(record, path);
    if (v !== undefined && v !== null) headerEntries.push([name, Buffer.from(asText(v))]);
  }
  return {
    topic,
    key: keyValue === undefined || keyValue === null ? null : Buffer.from(asText(keyValue)),
    value,
    ...(headerEntries.length === 0 ? {} : { headers: new Map(headerEntries) }),
  };
}

/** Waits for `promise`; its failure, if any, as a value. */
async function settle(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error ?? new Error('rejected without a reason');
  }
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));
const isRetriable = (error: unknown): boolean => (error as { retriable?: unknown } | null)?.retriable === true;

/** Protocol codes a broker answers for a topic it does not have. */
const UNKNOWN_TOPIC = /UNKNOWN_TOPIC_OR_PARTITION|UNKNOWN_TOPIC_ID|does not host this topic-partition|unknown topic/i;

/**
 * What to do when the brokers do not know a topic the batch writes to (the
 * client's own words, "This server does not host this topic-partition", do
 * not say that the topic is missing): the note names the batch's topics.
 */
function unknownTopicNote(error: unknown, records: readonly ProducerRecord[]): string {
  let unknown = false;
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 8 && !unknown; depth++) {
    const code = (e as { code?: unknown }).code;
    unknown = (typeof code === 'string' && UNKNOWN_TOPIC.test(code)) || (e instanceof Error && UNKNOWN_TOPIC.test(e.message));
    e = (e as { cause?: unknown }).cause;
  }
  if (!unknown) return '';
  const topics = [...new Set(records.map((r) => r.topic))].slice(0, 5).map((t) => JSON.stringify(t));
  return `; the brokers do not know topic ${topics.join(', ')}: create it (DataFlow never has the brokers create a topic, whatever auto.create.topics.enable says: a misspelt name would make a stray one); the batch is retried until it exists`;
}

/** The Kafka sink; see the module comment. */
export class KafkaSink implements Sink {
  readonly type = 'kafka';
  readonly definition: KafkaSinkDefinition;
  readonly commitsSourceOffsets: boolean;
  readonly #injectedClient: KafkaClient | undefined;
  #client: KafkaClient | undefined;
  #producer: KafkaProducer | undefined;
  #transactionalId: string | undefined;
  #closed = false;

  constructor(definition: KafkaSinkDefinitionInput | Record<string, unknown>, dependencies: KafkaSinkDependencies = {}) {
    this.definition = parseKafkaSinkDefinition(definition);
    this.commitsSourceOffsets = this.definition.exactlyOnce;
    this.#injectedClient = dependencies.client;
  }

  async open(context: SinkContext): Promise<void> {
    const d = this.definition;
    this.#client = this.#injectedClient ?? createKafkaClient({
      client: d.client,
      brokers: d.brokers,
      clientId: d.clientId,
      connectTimeoutMs: d.connectTimeoutMs,
      requestTimeoutMs: d.requestTimeoutMs,
      retries: d.retries,
    });
    if (d.exactlyOnce) this.#transactionalId = d.transactionalId ?? `dataflow-${context.pipelineId}`;
    // Creating a transactional producer registers the id at once, fencing an older incarnation.
    this.#producer = await this.#newProducer();
  }

  async write(batch: SinkBatch): Promise<SinkWriteResult> {
    if (this.#closed) throw new ConnectorError('kafka', 'write on a closed Kafka sink', { retriable: false });
    const records: ProducerRecord[] = [];
    const rejected: { index: number; reason: string }[] = [];
    batch.records.forEach((record, index) => {
      const built = toProducerRecord(this.definition, record);
      if ('reason' in built) rejected.push({ index, reason: built.reason });
      else records.push(built);
    });
    const producer = this.#producer ?? (this.#producer = await this.#newProducer());
    try {
      if (this.definition.exactlyOnce) await this.#writeTransaction(producer, batch, records);
      else if (records.length > 0) await producer.send(records);
    } catch (error) {
      // A transactional producer after a failure may hold an undecided transaction: start afresh (a new
      // InitProducerId aborts it). A fenced producer means another incarnation took over.
      let closeNote = '';
      if (this.definition.exactlyOnce) {
        this.#producer = undefined;
        const closeFailure = await settle(producer.close());
        if (closeFailure !== undefined) closeNote = ` (closing the failed producer also failed: ${messageOf(closeFailure)})`;
      }
      if (error instanceof KafkaProducerFencedError) {
        throw new ConnectorError(
          'kafka',
          `another instance of this pipeline took over transactional id ${JSON.stringify(this.#transactionalId)}; this one must stop (its last transaction was aborted)${closeNote}`,
          { retriable: false, cause: error },
        );
      }
      if (error instanceof ConnectorError && closeNote === '') throw error;
      throw new ConnectorError('kafka', `writing batch ${batch.batchId} to Kafka failed: ${messageOf(error)}${unknownTopicNote(error, records)}${closeNote}`, {
        retriable: isRetriable(error),
        cause: error,
      });
    }
    return rejected.length === 0 ? {} : { rejected };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const producer = this.#producer;
    this.#producer = undefined;
    await producer?.close();
  }

  async #writeTransaction(producer: KafkaProducer, batch: SinkBatch, records: readonly ProducerRecord[]): Promise<void> {
    if (batch.sourceOffset === undefined) {
      throw new ConnectorError('kafka', `batch ${batch.batchId} carries no source offset; exactlyOnce needs a Kafka source`, { retriable: false });
    }
    const { groupId, positions } = decodeKafkaSourceOffset(batch.sourceOffset);
    const tx = await producer.beginTransaction();
    try {
      if (records.length > 0) await tx.send(records);
      if (positions.length > 0) await tx.sendOffsets(groupId, positions);
      await tx.commit();
    } catch (error) {
      const abortFailure = await settle(tx.abort());
      // A fenced producer cannot abort either; the broker aborted its transaction when the successor registered.
      if (abortFailure === undefined || error instanceof KafkaProducerFencedError) throw error;
      // The transaction is left to the broker's timeout or the next InitProducerId, which aborts it.
      throw new ConnectorError('kafka', `batch ${batch.batchId}: the transaction failed (${messageOf(error)}) and aborting it failed too (${messageOf(abortFailure)})`, {
        retriable: isRetriable(error),
        cause: error,
      });
    }
  }

  async #newProducer(): Promise<KafkaProducer> {
    const client = this.#client;
    if (client === undefined) throw new ConnectorError('kafka', 'the Kafka sink is not open', { retriable: false });
    const d = this.definition;
    return client.producer(
      parseKafkaProducerOptions(client.adapter, {
        acks: d.acks,
        compression: d.compression,
        idempotent: d.idempotent,
        transactionTimeoutMs: d.transactionTimeoutMs,
        ...(this.#transactionalId === undefined ? {} : { transactionalId: this.#transactionalId }),
      }),
    );
  }
}
