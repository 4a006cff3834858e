/**
 * Options of the Kafka client port, validated with zod. Invalid options raise
 * `InvalidConnectorOptionsError` listing every bad field (`brokers.0`,
 * `compression`, ...), so a definition's problems show up at once.
 */
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';
import type { KafkaConsumerSettings, KafkaProducerSettings } from './kafka-port.js';

const brokerSchema = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9092');
const positiveMs = z.number().int().positive();

/**
 * Connection options: which adapter and which brokers.
 *
 * @example
 * ```ts
 * kafkaClientOptionsSchema.parse({ client: 'platformatic', brokers: ['127.0.0.1:9092'], clientId: 'pipeline-7' });
 * ```
 */
export const kafkaClientOptionsSchema = z.strictObject({
  /** The client library: `kafkajs` (default) or `platformatic` (`@platformatic/kafka`). */
  client: z.enum(['kafkajs', 'platformatic']).default('kafkajs'),
  brokers: z.array(brokerSchema).min(1, 'at least one broker (host:port) is needed'),
  clientId: z.string().min(1).max(249).default('dataflow'),
  connectTimeoutMs: positiveMs.default(10_000),
  requestTimeoutMs: positiveMs.default(30_000),
  /** How often the client retries a retriable failure before giving up with a retriable error. */
  retries: z.number().int().min(0).max(100).default(5),
});

export type KafkaClientOptions = z.output<typeof kafkaClientOptionsSchema>;
export type KafkaClientOptionsInput = z.input<typeof kafkaClientOptionsSchema>;

/**
 * Producer options. `idempotent` needs `acks: -1`; a `transactionalId` makes
 * the producer idempotent and transactional.
 *
 * @example
 * ```ts
 * kafkaProducerOptionsSchema.parse({ acks: -1, compression: 'gzip', transactionalId: 'dataflow-orders' });
 * ```
 */
export const kafkaProducerOptionsSchema = z
  .strictObject({
    acks: z.union([z.literal(-1), z.literal(0), z.literal(1)]).default(-1),
    compression: z.enum(['none', 'gzip', 'snappy', 'lz4', 'zstd']).default('none'),
    idempotent: z.boolean().default(true),
    transactionalId: z.string().min(1).optional(),
    transactionTimeoutMs: positiveMs.max(900_000).default(60_000),
  })
  .superRefine((value, ctx) => {
    if ((value.idempotent || value.transactionalId !== undefined) && value.acks !== -1) {
      ctx.addIssue({ code: 'custom', path: ['acks'], message: 'an idempotent or transactional producer needs acks = -1 (all in-sync replicas)' });
    }
    if (value.transactionalId !== undefined && !value.idempotent) {
      ctx.addIssue({ code: 'custom', path: ['idempotent'], message: 'a transactional producer is always idempotent; remove idempotent: false' });
    }
  });

export type KafkaProducerOptionsInput = z.input<typeof kafkaProducerOptionsSchema>;

/**
 * The consumer's tuning fields (everything but `groupId`), shared with the
 * Kafka source's definition.
 */
export function kafkaConsumerTuningFields() {
  return {
    autoOffsetReset: z.enum(['earliest', 'latest']).default('earliest'),
    isolation: z.enum(['read_committed', 'read_uncommitted']).default('read_committed'),
    maxBufferedRecords: z.number().int().min(1).max(1_000_000).default(5_000),
    maxBytesPerPartition: z.number().int().min(1024).default(1_048_576),
    fetchMaxWaitMs: positiveMs.max(60_000).default(500),
    sessionTimeoutMs: positiveMs.min(1_000).default(30_000),
    heartbeatIntervalMs: positiveMs.default(3_000),
    rebalanceTimeoutMs: positiveMs.default(60_000),
  };
}

/** Cross-field check of the consumer's timeouts. */
export function checkConsumerTimeouts(value: { heartbeatIntervalMs: number; sessionTimeoutMs: number }, ctx: z.RefinementCtx): void {
  if (value.heartbeatIntervalMs >= value.sessionTimeoutMs) {
    ctx.addIssue({ code: 'custom', path: ['heartbeatIntervalMs'], message: 'must be lower than sessionTimeoutMs (Kafka recommends a third of it)' });
  }
}

/**
 * Consumer options.
 *
 * @example
 * ```ts
 * kafkaConsumerOptionsSchema.parse({ groupId: 'dataflow-orders', isolation: 'read_committed', maxBufferedRecords: 2000 });
 * ```
 */
export const kafkaConsumerOptionsSchema = z
  .strictObject({
    groupId: z.string().min(1).max(255),
    ...kafkaConsumerTuningFields(),
  })
  .superRefine(checkConsumerTimeouts);

export type KafkaConsumerOptionsInput = z.input<typeof kafkaConsumerOptionsSchema>;

/** Validates client options; throws `InvalidConnectorOptionsError` with field-level issues. */
export function parseKafkaClientOptions(input: unknown): KafkaClientOptions {
  return parseDefinition('kafka', kafkaClientOptionsSchema, input);
}

/**
 * Validates producer options for `adapter`; throws `InvalidConnectorOptionsError` with field-level issues.
 * kafkajs ships only the gzip codec, so `snappy`, `lz4` and `zstd` are refused for it.
 */
export function parseKafkaProducerOptions(adapter: KafkaClientOptions['client'], input: unknown): KafkaProducerSettings {
  const schema = kafkaProducerOptionsSchema.superRefine((value, ctx) => {
    if (adapter === 'kafkajs' && value.compression !== 'none' && value.compression !== 'gzip') {
      ctx.addIssue({ code: 'custom', path: ['compression'], message: `the kafkajs adapter supports none and gzip; use client: 'platformatic' for ${value.compression}` });
    }
  });
  const { transactionalId, ...parsed } = parseDefinition('kafka', schema, input);
  return transactionalId === undefined ? parsed : { ...parsed, transactionalId };
}

/** Validates consumer options; throws `InvalidConnectorOptionsError` with field-level issues. */
export function parseKafkaConsumerOptions(input: unknown): KafkaConsumerSettings {
  return parseDefinition('kafka', kafkaConsumerOptionsSchema, input);
}
