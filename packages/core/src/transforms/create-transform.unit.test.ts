import { describe, expect, it } from 'vitest';
import type { DataRecord } from '../connector/data-record.js';
import { isDataflowError } from '../errors/dataflow-error.js';
import { createTransform } from './create-transform.js';
import { InMemoryLookupSource, type LookupSource } from './enrich/lookup-source.js';
import { transformDefinitionSchema, type TransformDefinitionInput } from './transform-definition.js';
import type { RecordFailure, StatelessTransform, TransformResult } from './transform.js';

const context = { now: 1_000 };

function stateless(input: TransformDefinitionInput, lookups: Record<string, LookupSource> = {}): StatelessTransform {
  const transform = createTransform(transformDefinitionSchema.parse(input), { stage: 'transforms[0]', lookups });
  if (transform.kind !== 'stateless') throw new Error('expected a stateless transform');
  return transform;
}

async function run(input: TransformDefinitionInput, records: readonly DataRecord[], lookups: Record<string, LookupSource> = {}): Promise<TransformResult> {
  return stateless(input, lookups).apply(records, context);
}

const reasons = (failures: readonly RecordFailure[]) => failures.map((f) => ({ stage: f.stage, reason: f.error.reason, record: f.record }));

describe('filter', () => {
  it('keeps the records the expression accepts, in order', async () => {
    const records = [{ id: 1, status: 'ok', value: 5 }, { id: 2, status: 'ok', value: 2 }, { id: 3, status: 'bad', value: 9 }, { id: 4, status: 'ok', value: 4 }];
    const result = await run({ type: 'filter', expression: 'status == "ok" AND value > 3' }, records);
    expect(result).toEqual({ records: [records[0], records[3]], failures: [] });
  });
});

describe('map', () => {
  const record = { id: 'a', ts: 10, meta: { key: 'k1', debug: true }, raw: 'x' };

  it('renames, sets constants and copies, and drops, keeping unmapped fields', async () => {
    const result = await run(
      {
        type: 'map',
        rename: [{ from: 'ts', to: 'event.timestamp' }],
        set: [{ to: 'source', value: 'kafka' }, { to: 'key', from: 'meta.key' }, { to: 'none', value: null }],
        drop: ['meta.debug', 'raw'],
      },
      [record],
    );
    expect(result.records).toEqual([{ id: 'a', meta: { key: 'k1' }, event: { timestamp: 10 }, source: 'kafka', key: 'k1', none: null }]);
    expect(record).toEqual({ id: 'a', ts: 10, meta: { key: 'k1', debug: true }, raw: 'x' });
  });

  it('outputs only the mapped fields when keepUnmapped is false', async () => {
    const result = await run(
      { type: 'map', keepUnmapped: false, rename: [{ from: 'id', to: 'recordId' }, { from: 'missing', to: 'never' }], set: [{ to: 'k', from: 'meta["key"]' }] },
      [record],
    );
    expect(result.records).toEqual([{ recordId: 'a', k: 'k1' }]);
  });

  it('copies from the input record, so a set can read a field a rename moved', async () => {
    const result = await run({ type: 'map', rename: [{ from: 'id', to: 'newId' }], set: [{ to: 'copy', from: 'id' }] }, [{ id: 'a' }]);
    expect(result.records).toEqual([{ newId: 'a', copy: 'a' }]);
  });
});

describe('flat-map', () => {
  it('emits one record per array element under the field itself', async () => {
    const result = await run({ type: 'flat-map', field: 'items' }, [{ order: 1, items: ['a', 'b'] }, { order: 2, items: [] }]);
    expect(result.records).toEqual([{ order: 1, items: 'a' }, { order: 1, items: 'b' }]);
  });

  it('splits a string by the delimiter into a target field and removes the source', async () => {
    const result = await run({ type: 'flat-map', field: 'tags', delimiter: ',', target: 'tag' }, [{ id: 1, tags: 'x,y,z' }]);
    expect(result.records).toEqual([{ id: 1, tag: 'x' }, { id: 1, tag: 'y' }, { id: 1, tag: 'z' }]);
  });

  it('keeps the source field when asked', async () => {
    const result = await run({ type: 'flat-map', field: 'n', target: 'one', keepSource: true }, [{ n: [1, 2] }]);
    expect(result.records).toEqual([{ n: [1, 2], one: 1 }, { n: [1, 2], one: 2 }]);
  });

  it('rejects records whose field cannot be split', async () => {
    const records = [{ tags: 'a,b' }, { other: 1 }, { tags: 5 }];
    const result = await run({ type: 'flat-map', field: 'tags' }, records);
    expect(result.records).toEqual([]);
    expect(reasons(result.failures)).toEqual(records.map((record) => ({ stage: 'transforms[0]', reason: 'not-splittable', record })));
    expect(result.failures.map((f) => f.error.message)).toEqual([
      'Field tags is a string, expected an array',
      'Field tags is missing, expected an array',
      'Field tags is a number, expected an array',
    ]);
  });
});

describe('json-parse', () => {
  it('merges a parsed object into the record and removes the source field', async () => {
    const result = await run({ type: 'json-parse', field: 'line' }, [{ line: '{"a":1,"b":{"c":[true]}}', n: 0 }]);
    expect(result.records).toEqual([{ n: 0, a: 1, b: { c: [true] } }]);
  });

  it('puts the parsed value under a target and can keep the source', async () => {
    const result = await run({ type: 'json-parse', field: 'raw', target: 'parsed', keepSource: true }, [{ raw: '[1,2]' }]);
    expect(result.records).toEqual([{ raw: '[1,2]', parsed: [1, 2] }]);
  });

  it('rejects malformed JSON with the parser reason and passes the rest', async () => {
    const records = [{ line: '{"ok":true}' }, { line: '{"broken": ' }, { line: 42 }, { line: '[1]' }];
    const result = await run({ type: 'json-parse', field: 'line' }, records);
    expect(result.records).toEqual([{ ok: true }]);
    expect(reasons(result.failures).map((f) => f.reason)).toEqual(['malformed-json', 'malformed-json', 'not-an-object']);
    expect(result.failures[0]?.error.message).toMatch(/^Field line is not valid JSON: /);
    expect(result.failures[0]?.error.cause).toBeInstanceOf(SyntaxError);
    expect(result.failures[1]?.error.message).toBe('Field line is not a string, expected JSON text');
    expect(isDataflowError(result.failures[0]?.error, 'transform/record-rejected')).toBe(true);
  });

  it('rejects JSON that would nest the record deeper than 64 levels or make it larger than 1 MiB, naming where, and passes the rest', async () => {
    const deep = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    const records = [{ line: deep }, { line: JSON.stringify({ big: 'x'.repeat(2 * 1024 * 1024) }) }, { line: '{"fine":1}' }];
    const result = await run({ type: 'json-parse', field: 'line' }, records);
    expect(result.records).toEqual([{ fine: 1 }]);
    expect(reasons(result.failures).map((f) => f.reason)).toEqual(['too-large', 'too-large']);
    expect(result.failures[0]?.error.message).toMatch(/^The parsed JSON makes a record out of bounds: a\.a\.a.*: The record is nested deeper than 64 levels$/);
    expect(result.failures[1]?.error.message).toMatch(/^The parsed JSON makes a record out of bounds: big: The record is larger than 1048576 bytes/);
  });

  it('keeps a JSON __proto__ key as data and never changes the prototype', async () => {
    const result = await run({ type: 'json-parse', field: 'line' }, [{ line: '{"__proto__":{"admin":true},"x":1}' }]);
    const [record] = result.records;
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
    expect(Object.hasOwn(record as object, '__proto__')).toBe(true);
    expect((record as { admin?: unknown }).admin).toBeUndefined();
  });
});

describe('enrich', () => {
  const customers = new InMemoryLookupSource({ c1: { name: 'Ada' }, '7': { name: 'Seven' } });

  it('sets the looked-up value, with one batched lookup for distinct keys', async () => {
    const seen: (readonly string[])[] = [];
    const counting: LookupSource = { get: (keys) => (seen.push(keys), customers.get(keys)) };
    const result = await run(
      { type: 'enrich', lookup: 'customers', key: 'customerId', target: 'customer' },
      [{ customerId: 'c1' }, { customerId: 7 }, { customerId: 'c1', n: 2 }],
      { customers: counting },
    );
    expect(result.records).toEqual([
      { customerId: 'c1', customer: { name: 'Ada' } },
      { customerId: 7, customer: { name: 'Seven' } },
      { customerId: 'c1', n: 2, customer: { name: 'Ada' } },
    ]);
    expect(seen).toEqual([['c1', '7']]);
  });

  it.each([
    ['keep', [{ customerId: 'nope' }, {}], []],
    ['drop', [], []],
    ['fail', [], ['lookup-miss', 'lookup-miss']],
  ] as const)('on a miss with onMiss %s', async (onMiss, kept, failed) => {
    const result = await run({ type: 'enrich', lookup: 'customers', key: 'customerId', target: 'customer', onMiss }, [{ customerId: 'nope' }, {}], { customers });
    expect(result.records).toEqual(kept);
    expect(result.failures.map((f) => f.error.reason)).toEqual(failed);
  });

  it('rejects keys that are neither strings nor numbers', async () => {
    const result = await run({ type: 'enrich', lookup: 'customers', key: 'customerId', target: 'c' }, [{ customerId: { id: 1 } }], { customers });
    expect(result.failures.map((f) => f.error.reason)).toEqual(['invalid-lookup-key']);
  });

  it('fails the whole batch when the lookup source fails, keeping the cause', async () => {
    const cause = new Error('connection refused');
    const broken: LookupSource = { get: () => Promise.reject(cause) };
    const apply = run({ type: 'enrich', lookup: 'customers', key: 'id', target: 'c' }, [{ id: 'x' }], { customers: broken });
    await expect(apply).rejects.toMatchObject({ tag: 'transform/lookup-failed', retriable: true, cause, message: 'Lookup customers failed: connection refused' });
  });

  it('refuses to build when the named lookup was not provided', () => {
    expect(() => stateless({ type: 'enrich', lookup: 'customers', key: 'id', target: 'c' }, { regions: customers })).toThrow(
      expect.objectContaining({ tag: 'transform/misconfigured', message: 'Unknown lookup customers in stage transforms[0]; provided: regions' }),
    );
  });
});

describe('json-parse with a target equal to the field', () => {
  it('replaces the text in place (field order kept), however the path is spelt', async () => {
    const result = await run({ type: 'json-parse', field: 'payload', target: '["payload"]' }, [{ payload: '{"a":1}', n: 1 }]);
    expect(result.records).toEqual([{ payload: { a: 1 }, n: 1 }]);
    expect(Object.keys(result.records[0] ?? {})).toEqual(['payload', 'n']);
  });
});
