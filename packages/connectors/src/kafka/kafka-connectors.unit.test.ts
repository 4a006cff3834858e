/**
 * Option validation of the Kafka source, sink and dead-letter target
 * (field-level issues) and the sink's mapping of records to Kafka records.
 */
import { InvalidConnectorOptionsError } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { deadLetterRecord, parseKafkaDeadLetterDefinition } from './kafka-dead-letter-target.js';
import { parseKafkaSinkDefinition, toProducerRecord, valueAtPath } from './kafka-sink.js';
import { parseKafkaSourceDefinition } from './kafka-source.js';

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof InvalidConnectorOptionsError) return [...error.issues];
    throw error;
  }
  throw new Error('expected InvalidConnectorOptionsError');
}

const brokers = ['127.0.0.1:9092'];

describe('Kafka source definition', () => {
  it('fills the defaults', () => {
    expect(parseKafkaSourceDefinition({ type: 'kafka', brokers, topics: ['orders'] })).toMatchObject({
      client: 'kafkajs',
      format: 'json',
      keyFormat: 'string',
      autoOffsetReset: 'earliest',
      isolation: 'read_committed',
      maxBufferedRecords: 5_000,
    });
  });

  it('needs exactly one of topics and topicPattern, a valid pattern, and names every bad field', () => {
    expect(issuesOf(() => parseKafkaSourceDefinition({ type: 'kafka', brokers }))).toEqual([{ path: 'topics', message: expect.stringContaining('exactly one of topics') as string }]);
    expect(issuesOf(() => parseKafkaSourceDefinition({ type: 'kafka', brokers, topics: ['a'], topicPattern: 'a.*' })).map((i) => i.path)).toEqual(['topics']);
    expect(
      issuesOf(() =>
        parseKafkaSourceDefinition({ type: 'kafka', brokers: ['nohost'], topicPattern: '(', format: 'xml', heartbeatIntervalMs: 40_000, maxBufferedRecords: 0, extra: true }),
      ).map((i) => i.path),
    ).toEqual(['brokers.0', 'topicPattern', 'format', 'maxBufferedRecords', '(definition)']);
  });
});

describe('Kafka sink definition', () => {
  it('fills the defaults: at-least-once with an idempotent producer', () => {
    expect(parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'out' })).toMatchObject({ acks: -1, idempotent: true, exactlyOnce: false, headers: {}, compression: 'none' });
  });

  it('names every bad field', () => {
    expect(issuesOf(() => parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'bad topic/{job}' })).map((i) => i.path)).toEqual(['topic']);
    expect(issuesOf(() => parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'm_{}' })).map((i) => i.path)).toEqual(['topic']);
    expect(issuesOf(() => parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'out', exactlyOnce: true, acks: 1, idempotent: false })).map((i) => i.path)).toEqual(['acks', 'idempotent']);
    expect(issuesOf(() => parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'out', transactionalId: 'x' })).map((i) => i.path)).toEqual(['transactionalId']);
    expect(issuesOf(() => parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'out', compression: 'zstd' })).map((i) => i.path)).toEqual(['compression']);
    expect(issuesOf(() => parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'out', key: 'a..b', headers: { h: '' } })).map((i) => i.path)).toEqual(['key', 'headers.h']);
    // kafkajs would throw its own 'Idempotent producer must allow retries' only when the pipeline opens the sink.
    expect(issuesOf(() => parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'out', retries: 0 })).map((i) => [i.path, i.message])).toEqual([
      ['retries', 'an idempotent producer needs retries >= 1 (set idempotent: false to send without retries)'],
    ]);
    expect(parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'out', retries: 0, idempotent: false, acks: 1 })).toMatchObject({ retries: 0, idempotent: false });
  });
});

describe('Kafka sink record mapping', () => {
  const d = parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'prometheus_metrics_{labels.job}', key: 'id', value: 'body', headers: { scraped: 'ts' } });

  it('fills the template from dotted paths and stringifies keys and non-string values', () => {
    const built = toProducerRecord(d, { id: 7, labels: { job: 'node' }, body: { a: 1 }, ts: 5 });
    expect(built).toMatchObject({ topic: 'prometheus_metrics_node', key: Buffer.from('7'), value: Buffer.from('{"a":1}') });
    expect('headers' in built ? built.headers?.get('scraped')?.toString() : undefined).toBe('5');
  });

  it('never follows inherited properties such as __proto__ or constructor', () => {
    const record = JSON.parse('{"__proto__":{"job":"evil"},"body":"x"}') as Record<string, never>;
    expect(valueAtPath(record, 'constructor')).toBeUndefined();
    expect(valueAtPath({ body: 'x' }, 'body.length')).toBeUndefined();
    expect(toProducerRecord(parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'm_{job}', value: 'body' }), record)).toEqual({
      reason: expect.stringContaining('needs field "job"') as string,
    });
    expect(toProducerRecord(parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'm_{__proto__.job}', value: 'body' }), record)).toMatchObject({ topic: 'm_evil' });
  });

  it('writes the whole record as JSON without a value field, and a null value as a tombstone', () => {
    const whole = parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'out' });
    expect(toProducerRecord(whole, { a: 1 })).toEqual({ topic: 'out', key: null, value: Buffer.from('{"a":1}') });
    expect(toProducerRecord(parseKafkaSinkDefinition({ type: 'kafka', brokers, topic: 'out', value: 'v' }), { v: null })).toMatchObject({ value: null });
  });
});

describe('Kafka dead-letter target', () => {
  it('defaults to the dead-letter-queue topic and validates the topic name', () => {
    expect(parseKafkaDeadLetterDefinition({ type: 'kafka', brokers }).topic).toBe('dead-letter-queue');
    expect(issuesOf(() => parseKafkaDeadLetterDefinition({ type: 'kafka', brokers, topic: 'a b' })).map((i) => i.path)).toEqual(['topic']);
  });

  it('puts the error details in headers and the payload as JSON in the value', () => {
    const record = deadLetterRecord('dlq', {
      pipelineId: 'p',
      stage: 'sink',
      stageName: 'kafka',
      error: { message: 'boom', retriable: true },
      attempt: 3,
      payload: { a: 1 },
      failedAt: 9,
    });
    expect(record.value?.toString()).toBe('{"a":1}');
    expect(Object.fromEntries([...(record.headers ?? new Map<string, Buffer>())].map(([k, v]) => [k, v.toString()]))).toEqual({
      'dataflow.error.message': 'boom',
      'dataflow.error.stage': 'sink',
      'dataflow.error.stage-name': 'kafka',
      'dataflow.error.retriable': 'true',
      'dataflow.error.attempt': '3',
      'dataflow.pipeline': 'p',
      'dataflow.failed-at': '9',
    });
  });
});
