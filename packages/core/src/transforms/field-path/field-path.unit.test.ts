import { describe, expect, it } from 'vitest';
import { formatFieldPath, getPath, withoutPath, withPath } from './field-path.js';
import { parseFieldPath } from '../expression/expression-parser.js';
import { validatePipelineDefinition } from '../../pipeline/definition/pipeline-definition.js';

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

  it('refuses a path of more segments than a record has levels (64), naming where, and in a definition by field', () => {
    const deepest = Array.from({ length: 64 }, () => 'a').join('.');
    expect(parseFieldPath(deepest)).toHaveLength(64);
    expect(parseFieldPath(`${Array.from({ length: 63 }, () => 'a').join('.')}[0]`)).toHaveLength(64);
    expect(() => parseFieldPath(`${deepest}.b`)).toThrow(`Field path has more than 64 segments at position ${deepest.length} (records nest at most 64 levels)`);
    expect(() => parseFieldPath(`${deepest}[1]`)).toThrow(/more than 64 segments/);
    // Seen: a map to a 5 000-segment path passed validation and failed its pipeline at the first batch with 'Maximum call stack size exceeded'.
    const result = validatePipelineDefinition({
      name: 'deep-path',
      source: { type: 'generator', count: 10 },
      transforms: [{ type: 'map', set: [{ to: `${'a.'.repeat(5_000)}b`, value: 1 }] }],
      sink: { type: 'console' },
    });
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.issues).toEqual([{ path: 'transforms[0].set[0].to', message: expect.stringContaining('Invalid field path: Field path has more than 64 segments at position 127') as string }]);
  });

  it('formats paths so that they parse back to the same segments', () => {
    for (const path of [['a', 'b'], ['a', 'x-y', 0], ['top level'], ['and'], ['a', 'and']]) {
      expect(parseFieldPath(formatFieldPath(path))).toEqual(path);
    }
    expect(formatFieldPath(['a', 'x-y', 0])).toBe('a["x-y"][0]');
  });
});
