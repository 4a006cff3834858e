/**
 * `parallelism` against this package's registry: the Kafka source (a
 * consumer-group member) declares parallel tasks; the others are refused with
 * a field-level message (ADR 0013).
 */
import { validatePipelineDefinition } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { allConnectorsRegistry } from './local-connector-schemas.js';

const sink = { type: 'console' };

describe('parallelism with the connectors registry', () => {
  it('a Kafka source may run as several tasks', () => {
    const result = validatePipelineDefinition(
      { name: 'orders', parallelism: 3, source: { type: 'kafka', brokers: ['127.0.0.1:9092'], topics: ['orders'] }, sink },
      { connectors: allConnectorsRegistry },
    );
    expect(result.ok ? result.definition.parallelism : result.issues).toBe(3);
  });

  it.each([
    ['file', { type: 'file', path: '/tmp/in.jsonl', format: 'ndjson' }],
    ['generator', { type: 'generator', count: 10 }],
  ])('a %s source with parallelism 2 is refused at the field', (type, source) => {
    const result = validatePipelineDefinition({ name: 'orders', parallelism: 2, source, sink }, { connectors: allConnectorsRegistry });
    expect(result.ok ? [] : result.issues).toEqual([
      {
        path: 'parallelism',
        message: `parallelism 2 is not possible: a ${type} source cannot split its input among tasks; only kafka sources run as several tasks (use parallelism 1 or leave it out)`,
      },
    ]);
  });

  it('bounds are checked whatever the source', () => {
    const result = validatePipelineDefinition(
      { name: 'orders', parallelism: 100, source: { type: 'kafka', brokers: ['127.0.0.1:9092'], topics: ['orders'] }, sink },
      { connectors: allConnectorsRegistry },
    );
    expect(result.ok ? [] : result.issues).toEqual([{ path: 'parallelism', message: 'parallelism must be at most 64' }]);
  });
});

describe('a Kafka sink with exactlyOnce (it commits the source offsets in its transaction)', () => {
  const kafkaSink = { type: 'kafka', brokers: ['127.0.0.1:9092'], topic: 'out', exactlyOnce: true };

  it('runs under a Kafka source', () => {
    const result = validatePipelineDefinition({ name: 'copy', source: { type: 'kafka', brokers: ['127.0.0.1:9092'], topics: ['in'] }, sink: kafkaSink }, { connectors: allConnectorsRegistry });
    expect(result.ok ? 'ok' : result.issues).toBe('ok');
  });

  it.each([
    ['generator', { type: 'generator', count: 10 }],
    ['file', { type: 'file', path: '/tmp/in.jsonl', format: 'ndjson' }],
  ])('is refused at sink.exactlyOnce under a %s source (its first batch failed at run time before)', (type, source) => {
    const result = validatePipelineDefinition({ name: 'copy', source, sink: kafkaSink }, { connectors: allConnectorsRegistry });
    expect(result.ok ? [] : result.issues).toEqual([
      {
        path: 'sink.exactlyOnce',
        message: `exactlyOnce commits the source's offsets in the kafka sink's transaction, and a ${type} source has none it can commit; only kafka sources do (set exactlyOnce: false, or read from one of them)`,
      },
    ]);
  });

  it('without exactlyOnce, any source', () => {
    const result = validatePipelineDefinition({ name: 'copy', source: { type: 'generator', count: 10 }, sink: { ...kafkaSink, exactlyOnce: false } }, { connectors: allConnectorsRegistry });
    expect(result.ok ? 'ok' : result.issues).toBe('ok');
  });
});
