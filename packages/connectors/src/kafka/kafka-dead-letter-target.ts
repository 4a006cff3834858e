/**
 * The Kafka dead-letter target: each letter becomes one record of the topic
 * `dead-letter-queue` (by default). The value is the original payload as JSON
 * (what a replay feeds back into the pipeline); the error details travel in
 * headers, so consumers can route on them without parsing the value:
 *
 * | header | |
 * |---|---|
 * | `dataflow.error.message` | the error message |
 * | `dataflow.error.tag` | the error's tag, when it has one |
 * | `dataflow.error.stage` | `source`, `transform` or `sink` |
 * | `dataflow.error.stage-name` | e.g. `transforms[1]:filter` |
 * | `dataflow.error.retriable` | `true` / `false` |
 * | `dataflow.error.attempt` | how many times the stage was tried |
 * | `dataflow.pipeline` | the pipeline id (also the record key) |
 * | `dataflow.batch` | the batch id, when known |
 * | `dataflow.failed-at` | epoch milliseconds |
 *
 * All letters of one `send` carry the pipeline id as their key, so they land
 * in one partition, in one produce request: the broker appends them all or
 * none. The producer is idempotent with acks from all in-sync replicas.
 */
import type { DeadLetter, DeadLetterTarget } from '@dataflow/core';
import { ConnectorError } from '@dataflow/core';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';
import { createKafkaClient } from './kafka-client.js';
import { kafkaClientOptionsSchema, parseKafkaProducerOptions } from './kafka-options.js';
import type { KafkaClient, KafkaProducer, ProducerRecord } from './kafka-port.js';

/**
 * Definition of the Kafka dead-letter target.
 *
 * @example
 * ```ts
 * parseKafkaDeadLetterDefinition({ type: 'kafka', brokers: ['127.0.0.1:9092'] }); // topic 'dead-letter-queue'
 * ```
 */
export const kafkaDeadLetterDefinitionSchema = z.strictObject({
  type: z.literal('kafka'),
  ...kafkaClientOptionsSchema.shape,
  topic: z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, 'a topic name holds 1-249 letters, digits, ".", "_" or "-"').default('dead-letter-queue'),
  compression: z.enum(['none', 'gzip', 'snappy', 'lz4', 'zstd']).default('none'),
});

export type KafkaDeadLetterDefinition = z.output<typeof kafkaDeadLetterDefinitionSchema>;

/** Validates the definition; throws `InvalidConnectorOptionsError` with field-level issues. */
export function parseKafkaDeadLetterDefinition(input: unknown): KafkaDeadLetterDefinition {
  return parseDefinition('kafka', kafkaDeadLetterDefinitionSchema, input);
}

/** The record a letter becomes; see the module comment. */
export function deadLetterRecord(topic: string, letter: DeadLetter): ProducerRecord {
  const headers = new Map<string, Buffer>([
    ['dataflow.error.message', Buffer.from(letter.error.message)],
    ['dataflow.error.stage', Buffer.from(letter.stage)],
    ['dataflow.error.stage-name', Buffer.from(letter.stageName)],
    ['dataflow.error.retriable', Buffer.from(String(letter.error.retriable))],
    ['dataflow.error.attempt', Buffer.from(String(letter.attempt))],
    ['dataflow.pipeline', Buffer.from(letter.pipelineId)],
    ['dataflow.failed-at', Buffer.from(String(letter.failedAt))],
  ]);
  if (letter.error.tag !== undefined) headers.set('dataflow.error.tag', Buffer.from(letter.error.tag));
  if (letter.batchId !== undefined) headers.set('dataflow.batch', Buffer.from(letter.batchId));
  return { topic, key: Buffer.from(letter.pipelineId), value: Buffer.from(JSON.stringify(letter.payload)), headers };
}

/** The Kafka dead-letter target; see the module comment. */
export class KafkaDeadLetterTarget implements DeadLetterTarget {
  readonly type = 'kafka';
  readonly definition: KafkaDeadLetterDefinition;
  readonly #client: KafkaClient;
  #producer: KafkaProducer | undefined;

  constructor(definition: Record<string, unknown>, dependencies: { readonly client?: KafkaClient } = {}) {
    this.definition = parseKafkaDeadLetterDefinition(definition);
    const d = this.definition;
    this.#client =
      dependencies.client ??
      createKafkaClient({ client: d.client, brokers: d.brokers, clientId: d.clientId, connectTimeoutMs: d.connectTimeoutMs, requestTimeoutMs: d.requestTimeoutMs, retries: d.retries });
  }

  async open(): Promise<void> {
    this.#producer ??= await this.#client.producer(parseKafkaProducerOptions(this.#client.adapter, { compression: this.definition.compression }));
  }

  async send(letters: readonly DeadLetter[]): Promise<void> {
    const producer = this.#producer;
    if (producer === undefined) throw new ConnectorError('kafka', 'send on a Kafka dead-letter target that is not open', { retriable: false });
    if (letters.length === 0) return;
    // One key per call (the pipeline id of the first letter) keeps the call's letters in one partition.
    const key = Buffer.from(letters[0]?.pipelineId ?? '');
    try {
      await producer.send(letters.map((letter) => ({ ...deadLetterRecord(this.definition.topic, letter), key })));
    } catch (error) {
      throw new ConnectorError('kafka', `writing ${letters.length} dead letter(s) to topic ${this.definition.topic} failed: ${error instanceof Error ? error.message : String(error)}`, {
        retriable: (error as { retriable?: unknown } | null)?.retriable === true,
        cause: error,
      });
    }
  }

  async close(): Promise<void> {
    const producer = this.#producer;
    this.#producer = undefined;
    await producer?.close();
  }
}
