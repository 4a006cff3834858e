import { InvalidConnectorOptionsError } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { createKafkaClient } from './kafka-client.js';
import { parseKafkaClientOptions, parseKafkaConsumerOptions, parseKafkaProducerOptions } from './kafka-options.js';

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof InvalidConnectorOptionsError) return [...error.issues];
    throw error;
  }
  throw new Error('expected InvalidConnectorOptionsError');
}

describe('Kafka options', () => {
  it('defaults to the kafkajs adapter and fills the defaults', () => {
    expect(parseKafkaClientOptions({ brokers: ['127.0.0.1:9092'] })).toEqual({
      client: 'kafkajs',
      brokers: ['127.0.0.1:9092'],
      clientId: 'dataflow',
      connectTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      retries: 5,
    });
    expect(createKafkaClient({ client: 'platformatic', brokers: ['127.0.0.1:9092'] }).adapter).toBe('platformatic');
  });

  it('lists every bad client field with its path', () => {
    expect(issuesOf(() => parseKafkaClientOptions({ client: 'rdkafka', brokers: ['localhost', 'ok:1'], retries: -1, extra: 1 })).map((i) => i.path)).toEqual([
      'client',
      'brokers.0',
      'retries',
      '(definition)',
    ]);
    expect(issuesOf(() => parseKafkaClientOptions({ brokers: [] }))).toEqual([{ path: 'brokers', message: 'at least one broker (host:port) is needed' }]);
  });

  it('checks producer settings against each other and against the adapter', () => {
    expect(issuesOf(() => parseKafkaProducerOptions('kafkajs', { acks: 1 }))).toEqual([
      { path: 'acks', message: 'an idempotent or transactional producer needs acks = -1 (all in-sync replicas)' },
    ]);
    expect(issuesOf(() => parseKafkaProducerOptions('kafkajs', { transactionalId: 't', idempotent: false, acks: -1 })).map((i) => i.path)).toEqual(['idempotent']);
    expect(issuesOf(() => parseKafkaProducerOptions('kafkajs', { compression: 'zstd' }))[0]?.path).toBe('compression');
    expect(parseKafkaProducerOptions('platformatic', { compression: 'zstd' }).compression).toBe('zstd');
    expect(parseKafkaProducerOptions('kafkajs', { acks: 0, idempotent: false })).toEqual({ acks: 0, compression: 'none', idempotent: false, transactionTimeoutMs: 60_000 });
    expect(parseKafkaProducerOptions('kafkajs', { transactionalId: 'tx-1' }).transactionalId).toBe('tx-1');
  });

  it('checks consumer settings', () => {
    expect(parseKafkaConsumerOptions({ groupId: 'g' })).toMatchObject({ groupId: 'g', isolation: 'read_committed', autoOffsetReset: 'earliest', maxBufferedRecords: 5_000 });
    expect(issuesOf(() => parseKafkaConsumerOptions({ groupId: '', maxBufferedRecords: 0, heartbeatIntervalMs: 40_000 })).map((i) => i.path)).toEqual([
      'groupId',
      'maxBufferedRecords',
      'heartbeatIntervalMs',
    ]);
  });
});
