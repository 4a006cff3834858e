import { describe, expect, it } from 'vitest';
import { formatFieldPath, getPath, withoutPath, withPath } from './field-path.js';
import { parseFieldPath } from '../expression/expression-parser.js';

describe('field paths', () => {
  it('reads nested objects and arrays by own properties only', () => {
    const record = { a: { b: [{ c: 1 }] } };
    expect(getPath(record, ['a', 'b', 0, 'c'])).toBe(1);
    expect(getPath(record, ['a', 'x', 0])).toBeUndefined();
    expect(getPath(record, ['a', 'b', 'length'])).toBeUndefined();
    expect(getPath({}, ['constructor', 'prototype'])).toBeUndefined();
    expect(getPath({}, ['__proto__'])).toBeUndefined();
  });

  it('writes copy-on-write, creating missing containers, and leaves the input unchanged', () => {
    const input = { a: { keep: 1 }, other: { shared: true } };
    const output = withPath(input, ['a', 'b', 'c'], 2);
    expect(output).toEqual({ a: { keep: 1, b: { c: 2 } }, other: { shared: true } });
    expect(input).toEqual({ a: { keep: 1 }, other: { shared: true } });
    expect(output.other).toBe(input.other);
    expect(withPath({}, ['list', 1], 'x')).toEqual({ list: [null, 'x'] });
    expect(withPath({ a: 5 }, ['a', 'b'], 1)).toEqual({ a: { b: 1 } });
  });

  it('writes __proto__ as a data property without touching any prototype', () => {
    const output = withPath({}, ['__proto__', 'polluted'], true);
    expect(Object.getPrototypeOf(output)).toBe(Object.prototype);
    expect(Object.hasOwn(output, '__proto__')).toBe(true);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(getPath(output, ['__proto__', 'polluted'])).toBe(true);
  });

  it('removes fields and array elements, returning the same record when nothing is there', () => {
    const input = { a: { b: 1, c: 2 }, list: [1, 2, 3] };
    expect(withoutPath(input, ['a', 'b'])).toEqual({ a: { c: 2 }, list: [1, 2, 3] });
    expect(withoutPath(input, ['list', 1])).toEqual({ a: { b: 1, c: 2 }, list: [1, 3] });
    expect(withoutPath(input, ['missing', 'x'])).toBe(input);
    expect(input).toEqual({ a: { b: 1, c: 2 }, list: [1, 2, 3] });
  });

  it('formats paths so that they parse back to the same segments', () => {
    for (const path of [['a', 'b'], ['a', 'x-y', 0], ['top level'], ['and'], ['a', 'and']]) {
      expect(parseFieldPath(formatFieldPath(path))).toEqual(path);
    }
    expect(formatFieldPath(['a', 'x-y', 0])).toBe('a["x-y"][0]');
  });
});
