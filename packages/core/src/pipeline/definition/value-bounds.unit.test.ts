import { describe, expect, it } from 'vitest';
import { checkRecordBounds, checkValueBounds, DEFINITION_BOUNDS, RECORD_BOUNDS } from './value-bounds.js';

/** Objects and arrays in turn, `levels` deep; the outermost is an object when `levels` is odd. */
function nested(levels: number): unknown {
  let value: unknown = 'leaf';
  for (let i = 0; i < levels; i++) value = i % 2 === 0 ? { 'a b': value } : [value];
  return value;
}

describe('checkRecordBounds', () => {
  it('accepts an ordinary record, keeping __proto__ keys as data', () => {
    const record = JSON.parse('{"id": 1, "tags": ["a", "b"], "__proto__": {"admin": true}, "at": null, "ok": true}') as unknown;
    expect(checkRecordBounds(record)).toBeUndefined();
    expect(checkRecordBounds({ bytes: new Uint8Array(10), when: new Date(0), big: 10n, gone: undefined })).toBeUndefined();
  });

  it('names the field where a record nests deeper than the limit, quoting keys that are not identifiers', () => {
    expect(checkRecordBounds(nested(64))).toBeUndefined();
    const issue = checkRecordBounds(nested(3_001));
    expect(issue?.message).toBe('The record is nested deeper than 64 levels');
    expect(issue?.path).toBe('["a b"][0]'.repeat(32));
    expect(checkRecordBounds(nested(11), { maxDepth: 4 })?.path).toBe('["a b"][0]["a b"][0]');
  });

  it('names the field that takes a record over its size, counting UTF-8 bytes', () => {
    expect(checkRecordBounds({ id: 1, body: 'x'.repeat(2 * 1024 * 1024) })).toEqual({
      path: 'body',
      message: 'The record is larger than 1048576 bytes (as JSON); it passes the limit here',
    });
    // 400 000 three-byte characters: 1.2 MB of UTF-8 in 400 000 UTF-16 code units.
    expect(checkRecordBounds({ text: '€'.repeat(400_000) })?.path).toBe('text');
    expect(checkRecordBounds({ text: '€'.repeat(300_000) })).toBeUndefined();
    expect(checkRecordBounds({ a: 'x'.repeat(60), b: 'y'.repeat(60) }, { maxBytes: 100 })?.path).toBe('b');
    expect(checkRecordBounds({ blob: new Uint8Array(900_000) })?.path).toBe('blob');
  });

  it('refuses a huge sparse array before walking its items, and shared subtrees that blow up as JSON', () => {
    const sparse: unknown[] = [];
    sparse.length = 1_000_000_000;
    expect(checkRecordBounds({ items: sparse })).toMatchObject({ path: 'items' });
    // 2^40 leaves when written out, from 40 small arrays.
    let shared: unknown = 'x';
    for (let i = 0; i < 40; i++) shared = [shared, shared];
    expect(checkValueBounds({ shared }, { ...RECORD_BOUNDS, maxDepth: 100 })?.message).toBe('The value is larger than 1048576 bytes (as JSON); it passes the limit here');
  });

  it('reports a cycle in a record instead of looping', () => {
    const record: Record<string, unknown> = { id: 1, items: [] };
    (record.items as unknown[]).push({ parent: record });
    expect(checkRecordBounds(record)).toEqual({ path: 'items[0].parent', message: 'The record contains a cycle: this field holds an object that contains it' });
  });

  it('refuses __proto__ keys only where the bounds say so', () => {
    const value = JSON.parse('{"a": {"__proto__": 1}}') as unknown;
    expect(checkValueBounds(value, RECORD_BOUNDS)).toBeUndefined();
    expect(checkValueBounds(value, DEFINITION_BOUNDS, 'The definition')).toEqual({ path: 'a.__proto__', message: 'A key named __proto__ is not allowed' });
  });
});
