import { describe, expect, it } from 'vitest';
import { isDataflowError } from '../../errors/dataflow-error.js';
import { evaluateExpression } from './expression-evaluator.js';
import { parseExpression, parseFieldPath } from './expression-parser.js';
import { ExpressionSyntaxError } from './expression-syntax-error.js';

const matches = (expression: string, record: unknown): boolean => evaluateExpression(parseExpression(expression), record);

function syntaxError(run: () => unknown): ExpressionSyntaxError {
  try {
    run();
  } catch (error) {
    if (error instanceof ExpressionSyntaxError) return error;
    throw error;
  }
  throw new Error('expected an ExpressionSyntaxError');
}

describe('filter expressions: parsing', () => {
  it('builds a tree with AND binding tighter than OR and NOT tighter than AND', () => {
    expect(parseExpression('a == 1 OR b == 2 AND NOT c')).toEqual({
      kind: 'or',
      operands: [
        { kind: 'comparison', operator: '==', left: { kind: 'field', path: ['a'] }, right: { kind: 'literal', value: 1 } },
        {
          kind: 'and',
          operands: [
            { kind: 'comparison', operator: '==', left: { kind: 'field', path: ['b'] }, right: { kind: 'literal', value: 2 } },
            { kind: 'not', operand: { kind: 'field', path: ['c'] } },
          ],
        },
      ],
    });
  });

  it('flattens long AND chains into one node', () => {
    const ast = parseExpression(Array.from({ length: 5000 }, (_, i) => `f${i} == ${i}`).join(' AND '));
    expect(ast.kind).toBe('and');
    expect(ast.kind === 'and' && ast.operands.length).toBe(5000);
  });

  it('reads field paths with dots, quoted keys, indexes and keywords after a dot', () => {
    expect(parseFieldPath('a.b.c')).toEqual(['a', 'b', 'c']);
    expect(parseFieldPath('a["x-y"]')).toEqual(['a', 'x-y']);
    expect(parseFieldPath("items[0]['unit price']")).toEqual(['items', 0, 'unit price']);
    expect(parseFieldPath('["top level"].x')).toEqual(['top level', 'x']);
    expect(parseFieldPath('meta.and.null')).toEqual(['meta', 'and', 'null']);
  });

  it('decodes string escapes and number forms', () => {
    expect(parseExpression(String.raw`s == "a\"b\\c\n\u00e9'"`)).toMatchObject({ right: { value: 'a"b\\c\né\'' } });
    expect(parseExpression(String.raw`s == 'it\'s'`)).toMatchObject({ right: { value: "it's" } });
    expect(parseExpression('n == -1.5e2')).toMatchObject({ right: { value: -150 } });
  });

  it.each([
    ['status == ', 10, 'a value (a field, a literal or a parenthesis)', 'end of expression'],
    ['(a == 1', 7, "')' to close the parenthesis opened at position 0", 'end of expression'],
    ['a == 1 b', 7, 'AND, OR or the end of the expression', "'b'"],
    ['a = 1', 2, "'==' (a single '=' is not an operator)", "'='"],
    ['a & b', 2, "'&&'", "'&'"],
    ['a == 1 == 2', 7, 'AND, OR, a closing parenthesis or the end of the expression (comparisons do not chain; use AND)', "'=='"],
    ['a. == 1', 3, "a field name after '.'", "'=='"],
    ['a[-1] == 1', 2, 'a quoted key or a non-negative integer index', 'the number -1'],
    ['a[1.5] == 1', 2, 'a quoted key or a non-negative integer index', 'the number 1.5'],
    ['a == #', 5, 'a field, a literal, an operator or a parenthesis', "'#'"],
    ['AND a', 0, 'a value (a field, a literal or a parenthesis)', "'AND'"],
    ['n == 1e999', 5, 'a finite number', "'1e999'"],
  ])('reports %j at position %i with what it expected', (text, position, expected, found) => {
    const error = syntaxError(() => parseExpression(text));
    expect({ position: error.position, expected: error.expected, found: error.found }).toEqual({ position, expected, found });
    expect(error.message).toBe(`Expected ${expected} at position ${position}, found ${found}`);
    expect(isDataflowError(error, 'expression/syntax')).toBe(true);
    expect(error.retriable).toBe(false);
  });

  it('reports an unterminated string with the position where it starts', () => {
    const error = syntaxError(() => parseExpression('name == "abc'));
    expect(error.position).toBe(8);
    expect(error.message).toBe('Unterminated string starting at position 8: expected a closing " before the end of the expression');
    expect(syntaxError(() => parseExpression("name == 'abc\\'")).position).toBe(8);
  });

  it('reports an unknown escape at its position', () => {
    const error = syntaxError(() => parseExpression('s == "a\\qb"'));
    expect(error.position).toBe(7);
    expect(error.found).toBe("'\\q'");
  });
});

describe('filter expressions: hostile input', () => {
  it('rejects 10 000 nested parentheses with a clear error, not a stack overflow', () => {
    const text = `${'('.repeat(10_000)}a == 1${')'.repeat(10_000)}`;
    const error = syntaxError(() => parseExpression(text));
    expect(error.position).toBe(64);
    expect(error.message).toBe('Expression nests deeper than 64 levels (parentheses and NOT) at position 64');
  });

  it('rejects 10 000 chained NOTs the same way, and accepts nesting up to the limit', () => {
    expect(syntaxError(() => parseExpression(`${'NOT '.repeat(10_000)}a`)).message).toContain('nests deeper than 64 levels');
    expect(syntaxError(() => parseExpression(`${'!'.repeat(10_000)}a`)).position).toBe(64);
    expect(matches(`${'('.repeat(64)}a == 1${')'.repeat(64)}`, { a: 1 })).toBe(true);
    expect(syntaxError(() => parseExpression(`${'('.repeat(3)}a${')'.repeat(3)}`, { maxDepth: 2 })).position).toBe(2);
  });

  it('handles a 1 MB string literal', () => {
    const big = 'x'.repeat(1024 * 1024);
    expect(matches(`payload == "${big}"`, { payload: big })).toBe(true);
    expect(matches(`payload == "${big}"`, { payload: `${big}y` })).toBe(false);
    const escaped = '\\"'.repeat(512 * 1024);
    expect(parseExpression(`p == "${escaped}"`)).toMatchObject({ right: { value: '"'.repeat(512 * 1024) } });
  });

  it('rejects an expression longer than the limit before tokenizing it', () => {
    const error = syntaxError(() => parseExpression('a == 1 OR a == 2', { maxLength: 10 }));
    expect(error.message).toBe('Expression is too long: 16 characters, at most 10 are accepted');
    expect(syntaxError(() => parseExpression(`s == "${'x'.repeat(4 * 1024 * 1024)}"`)).message).toContain('Expression is too long');
  });

  it('never reads __proto__, constructor or prototype from Object.prototype', () => {
    expect(matches('constructor != null', {})).toBe(false);
    expect(matches('constructor == null', {})).toBe(true);
    expect(matches('constructor.prototype != null', {})).toBe(false);
    expect(matches('__proto__ != null', {})).toBe(false);
    expect(matches('__proto__.constructor != null', {})).toBe(false);
    expect(matches('a["__proto__"]["toString"] != null', { a: {} })).toBe(false);
    expect(matches('toString != null', {})).toBe(false);
    expect(matches('hasOwnProperty != null', {})).toBe(false);
    expect(matches('items.length == 2', { items: [1, 2] })).toBe(false);
  });

  it('reads an own __proto__ key that came from JSON as ordinary data', () => {
    const record: unknown = JSON.parse('{"__proto__": {"admin": true}}');
    expect(matches('__proto__.admin == true', record)).toBe(true);
    expect(({} as { admin?: unknown }).admin).toBeUndefined();
  });
});

describe('filter expressions: evaluation semantics', () => {
  const record = { status: 'ok', value: 5, nested: { 'x-y': 'dash', list: [10, 'b'] }, flag: true, off: false, nothing: null };

  it.each([
    ['status == "ok"', true],
    ["status == 'ok'", true],
    ['status != "ok"', false],
    ['value > 3 AND value <= 5', true],
    ['value >= 6 OR value < 5', false],
    ['value == 5.0', true],
    ['nested["x-y"] == "dash"', true],
    ['nested.list[0] == 10', true],
    ['nested.list[1] == "b"', true],
    ['nested.list[2] == null', true],
    ['flag', true],
    ['off', false],
    ['status', false],
    ['NOT off', true],
    ['!off && flag', true],
    ['off || flag', true],
    ['not flag or value == 5', true],
    ['NOT (value > 3 AND status == "ok")', false],
    ['(value > 3) == true', true],
    ['flag == true AND off == false', true],
    ['true', true],
    ['false OR null', false],
  ])('%s → %s', (expression, expected) => {
    expect(matches(expression, record)).toBe(expected);
  });

  it('never coerces between numbers and strings', () => {
    expect(matches('n == "5"', { n: 5 })).toBe(false);
    expect(matches('n != "5"', { n: 5 })).toBe(true);
    expect(matches('n > "4"', { n: 5 })).toBe(false);
    expect(matches('n < "6"', { n: 5 })).toBe(false);
    expect(matches('s > 4', { s: '5' })).toBe(false);
    expect(matches('b == 1', { b: true })).toBe(false);
  });

  it('treats a missing field as null, and null as equal only to null and never ordered', () => {
    expect(matches('missing == null', {})).toBe(true);
    expect(matches('missing != null', {})).toBe(false);
    expect(matches('nothing == null', { nothing: null })).toBe(true);
    expect(matches('missing == 0', {})).toBe(false);
    expect(matches('missing < 1', {})).toBe(false);
    expect(matches('missing >= 1', {})).toBe(false);
    expect(matches('nothing <= null', { nothing: null })).toBe(false);
  });

  it('orders strings by code unit and never orders booleans, objects or arrays', () => {
    expect(matches('s < "b"', { s: 'a' })).toBe(true);
    expect(matches('s < "B"', { s: 'a' })).toBe(false);
    expect(matches('b > false', { b: true })).toBe(false);
    expect(matches('o == o', { o: { a: 1 } })).toBe(false);
    expect(matches('o != null', { o: { a: 1 } })).toBe(true);
    expect(matches('a > 1', { a: [2] })).toBe(false);
  });

  it('accepts keywords in any case and fields named like keywords in bracket form', () => {
    expect(matches('a == 1 and B == 2', { a: 1, B: 2 })).toBe(true);
    expect(matches('["and"] == TRUE', { and: true })).toBe(true);
    expect(matches('["null"] == NULL', {})).toBe(true);
  });

  it('evaluates against values that are not objects without throwing', () => {
    expect(matches('a == null', null)).toBe(true);
    expect(matches('a.b.c == 1', { a: 'text' })).toBe(false);
    expect(matches('a[0] == 1', { a: { 0: 1 } })).toBe(false);
  });
});
