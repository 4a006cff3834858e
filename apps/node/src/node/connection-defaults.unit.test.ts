import { allConnectorsRegistry } from '@dataflow/connectors';
import { validatePipelineDefinition } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { withConnectionDefaults, type ConnectionDefaults } from './connection-defaults.js';

const defaults: ConnectionDefaults = {
  kafka: { brokers: ['kafka:9092'], client: 'platformatic' },
  cassandra: { contactPoints: ['cassandra:9042'], localDataCenter: 'dc1' },
};

describe('withConnectionDefaults', () => {
  it('fills Kafka and Cassandra connectors that give no connection, in source, sink, tee and dead letter', () => {
    const definition = {
      name: 'metrics',
      source: { type: 'kafka', topics: ['in'] },
      sink: { type: 'tee', sinks: [{ type: 'cassandra', keyspace: 'm', table: 't', columns: { id: 'id' } }, { type: 'console' }] },
      deadLetter: { type: 'kafka', topic: 'dlq', client: 'kafkajs' },
    };
    expect(withConnectionDefaults(definition, defaults)).toEqual({
      name: 'metrics',
      source: { type: 'kafka', topics: ['in'], brokers: ['kafka:9092'], client: 'platformatic' },
      sink: {
        type: 'tee',
        sinks: [{ type: 'cassandra', keyspace: 'm', table: 't', columns: { id: 'id' }, contactPoints: ['cassandra:9042'], localDataCenter: 'dc1' }, { type: 'console' }],
      },
      deadLetter: { type: 'kafka', topic: 'dlq', client: 'kafkajs', brokers: ['kafka:9092'] },
    });
    expect(definition.source).toEqual({ type: 'kafka', topics: ['in'] });
  });

  it('keeps what a definition gives, and leaves anything else alone', () => {
    const own = { name: 'x', source: { type: 'kafka', topics: ['a'], brokers: ['mine:1'] }, sink: { type: 'console' } };
    expect(withConnectionDefaults(own, defaults)).toEqual(own);
    expect(withConnectionDefaults('not a definition', defaults)).toBe('not a definition');
    expect(withConnectionDefaults({ source: null, sink: [1] }, defaults)).toEqual({ source: null, sink: [1] });
  });

  it('makes a Kafka-to-console definition without brokers valid for the node', () => {
    const definition = { name: 'kafka-in', source: { type: 'kafka', topics: ['in'] }, sink: { type: 'console' } };
    expect(validatePipelineDefinition(definition, { connectors: allConnectorsRegistry }).ok).toBe(false);
    expect(validatePipelineDefinition(withConnectionDefaults(definition, defaults), { connectors: allConnectorsRegistry }).ok).toBe(true);
  });

  it("gives a definition without a dead-letter target the node's database when it has one, and keeps a target it names", () => {
    const plain = { name: 'plain', source: { type: 'generator', fields: { id: { kind: 'sequence' } } }, sink: { type: 'console' } };
    expect(withConnectionDefaults(plain, { deadLetters: { type: 'postgres' } })).toEqual({ ...plain, deadLetter: { type: 'postgres' } });
    expect(withConnectionDefaults(plain, {})).toEqual(plain);
    expect(withConnectionDefaults(plain, { deadLetters: { type: 'postgres', schema: 'dataflow' } })).toEqual({ ...plain, deadLetter: { type: 'postgres', schema: 'dataflow' } });
    const own = { ...plain, deadLetter: { type: 'file', path: 'dlq.jsonl' } };
    expect(withConnectionDefaults(own, { deadLetters: { type: 'postgres' } })).toEqual(own);
    expect(validatePipelineDefinition(withConnectionDefaults(plain, { deadLetters: { type: 'postgres' } }), { connectors: allConnectorsRegistry }).ok).toBe(true);
  });
});
