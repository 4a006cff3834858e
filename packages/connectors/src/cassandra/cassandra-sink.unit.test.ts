import { InvalidConnectorOptionsError } from '@dataflow/core';
import { types } from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { CassandraSink, type CassandraSinkDefinition } from './cassandra-sink.js';
import { CassandraValueError, convertValue, formatCqlType, parseCqlType, valueKey } from './cassandra-values.js';

const base: CassandraSinkDefinition = {
  type: 'cassandra',
  contactPoints: ['127.0.0.1:9042'],
  localDataCenter: 'dc1',
  keyspace: 'metrics',
  table: 'samples',
  columns: { metric_name: 'metric_name' },
};

function issuesOf(definition: unknown): { path: string; message: string }[] {
  try {
    new CassandraSink(definition as CassandraSinkDefinition);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConnectorOptionsError);
    return [...(error as InvalidConnectorOptionsError).issues];
  }
  throw new Error('the definition was accepted');
}

describe('Cassandra sink options', () => {
  it('accepts a definition and applies defaults', () => {
    const sink = new CassandraSink(base);
    expect(sink.table).toBe('"metrics"."samples"');
    expect(sink.pipelinedWrites).toBe(true);
  });

  it('names every bad field', () => {
    const paths = issuesOf({
      ...base,
      contactPoints: ['bad host'],
      keyspace: 'Bad-Name',
      columns: { value: 'a..b' },
      consistency: 'SERIAL',
      maxConcurrency: 0,
      extra: 1,
    }).map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['contactPoints.0', 'keyspace', 'columns.value', 'consistency', 'maxConcurrency', '(definition)']));
  });

  it('refuses `__proto__` and `constructor`-like column names that are not CQL names, and an empty mapping', () => {
    const issues = issuesOf({ ...base, columns: JSON.parse('{"__proto__": "x", "Constructor": "y"}') as unknown });
    expect(issues.map((i) => i.path)).toEqual(['columns.__proto__', 'columns.Constructor']);
    expect(issues[0]?.message).toMatch(/not a lower-case CQL name/);
    expect(issuesOf({ ...base, columns: {} }).map((i) => i.path)).toEqual(['columns']);
  });

  it('checks createTable: cql or columns + partitionKey, keys among the columns', () => {
    const issues = issuesOf({
      ...base,
      createTable: { columns: { a: 'text', b: 'tuple<int>' }, partitionKey: ['a', 'zz'], clusteringKey: ['a'] },
    });
    expect(issues.map((i) => i.path)).toEqual(expect.arrayContaining(['createTable.columns.b', 'createTable.partitionKey.1', 'createTable.clusteringKey.0']));
    expect(issuesOf({ ...base, createTable: { cql: 'DROP TABLE x' } }).map((i) => i.path)).toEqual(['createTable.cql']);
    expect(issuesOf({ ...base, createTable: {} }).map((i) => i.path)).toEqual(['createTable.columns', 'createTable.partitionKey']);
  });

  it('never echoes credentials in an options error', () => {
    const secret = 'hunter2-very-secret';
    const error = (() => {
      try {
        new CassandraSink({ ...base, credentials: { username: 'u', password: secret, extra: secret } as never, keyspace: 'BAD' });
      } catch (e) {
        return e as Error;
      }
      throw new Error('accepted');
    })();
    expect(error.message).not.toContain(secret);
    expect(JSON.stringify(error)).not.toContain(secret);
  });
});

describe('Cassandra value conversion (C6)', () => {
  const convert = (type: string, value: unknown): unknown => convertValue(parseCqlType(type), value as never).value;

  it('parses and formats CQL types', () => {
    expect(formatCqlType(parseCqlType('FROZEN< map<text,text> >'))).toBe('frozen<map<text, text>>');
    expect(() => parseCqlType('map<int, text>')).toThrow(/map keys must be text/);
    expect(() => parseCqlType('counter')).toThrow(/not a supported type/);
    expect(() => parseCqlType('list<'.repeat(20) + 'int' + '>'.repeat(20))).toThrow(/nested deeper/);
    expect(() => parseCqlType('int extra')).toThrow(/unexpected text/);
  });

  it('converts doubles with the C4 non-finite strings', () => {
    expect(convert('double', 1.5)).toBe(1.5);
    expect(convert('double', 'NaN')).toBeNaN();
    expect(convert('double', 'StaleNaN')).toBeNaN();
    expect(convert('double', '+Inf')).toBe(Number.POSITIVE_INFINITY);
    expect(convert('double', '-Inf')).toBe(Number.NEGATIVE_INFINITY);
    expect(() => convert('double', 'Inf')).toThrow(CassandraValueError);
    expect(() => convert('double', null)).toThrow(/got null/);
  });

  it('converts timestamps from epoch ms and ISO strings only', () => {
    expect(convert('timestamp', 1_700_000_000_000)).toEqual(new Date(1_700_000_000_000));
    expect(convert('timestamp', '2024-01-02T03:04:05.678Z')).toEqual(new Date('2024-01-02T03:04:05.678Z'));
    expect(() => convert('timestamp', 'Tuesday')).toThrow(/epoch milliseconds or an ISO-8601 string/);
    expect(() => convert('timestamp', 1.5)).toThrow(CassandraValueError);
    expect(() => convert('timestamp', 1e300)).toThrow(CassandraValueError);
  });

  it('converts maps of strings, keeping `__proto__` as a plain key, and refuses nested objects and nulls', () => {
    const labels = JSON.parse('{"__proto__": "p", "constructor": "c", "a": "1"}') as Record<string, string>;
    const converted = convert('map<text, text>', labels) as Record<string, string>;
    expect(Object.getPrototypeOf(converted)).toBe(Object.prototype);
    expect(Object.entries(converted)).toEqual([['__proto__', 'p'], ['constructor', 'c'], ['a', '1']]);
    expect(() => convert('map<text, text>', { a: { b: 'c' } })).toThrow(/map entry "a": expected a string/);
    expect(() => convert('map<text, text>', { a: null })).toThrow(/cannot hold nulls/);
    expect(() => convert('map<text, text>', ['a'])).toThrow(/expected an object/);
  });

  it('converts integers within their ranges, bigints from digit strings', () => {
    expect(convert('int', 7)).toBe(7);
    expect(() => convert('int', 2 ** 31)).toThrow(/from -2147483648 to 2147483647/);
    expect(String(convert('bigint', '9223372036854775807'))).toBe('9223372036854775807');
    expect(() => convert('bigint', '9223372036854775808')).toThrow(/within 64 bits/);
    expect(() => convert('bigint', 2 ** 60)).toThrow(CassandraValueError);
    expect(convert('uuid', '123e4567-e89b-12d3-a456-426614174000')).toBeInstanceOf(types.Uuid);
    expect(() => convert('blob', 'not base64!')).toThrow(/base64/);
  });

  it('keys equal values equally, whatever the map order', () => {
    expect(valueKey({ b: '1', a: '2' })).toBe(valueKey({ a: '2', b: '1' }));
    expect(valueKey(new Date(5))).not.toBe(valueKey(5));
    expect(valueKey('1')).not.toBe(valueKey(1));
  });

  it('describes a huge value without copying it into the reason', () => {
    const huge = 'x'.repeat(100_000);
    try {
      convert('int', huge);
    } catch (error) {
      expect((error as Error).message.length).toBeLessThan(200);
      return;
    }
    throw new Error('accepted');
  });
});
