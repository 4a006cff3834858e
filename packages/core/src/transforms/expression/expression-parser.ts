/**
 * A recursive-descent parser for the filter expression language (grammar in
 * docs-pipelines.md). Nesting depth and input length are bounded, so hostile
 * input ends in an `ExpressionSyntaxError`, never in a stack overflow.
 *
 *     expression := or
 *     or         := and (('OR' | '||') and)*
 *     and        := not (('AND' | '&&') not)*
 *     not        := ('NOT' | '!') not | comparison
 *     comparison := primary (('==' | '!=' | '>' | '>=' | '<' | '<=') primary)?
 *     primary    := string | number | 'true' | 'false' | 'null' | path | '(' expression ')'
 *     path       := (identifier | '[' key ']') ('.' name | '[' key ']')*
 *     key        := string | non-negative integer
 */
import type { FieldPath } from '../field-path/field-path.js';
import type { ComparisonOperator, ExpressionNode } from './expression-ast.js';
import { ExpressionSyntaxError } from './expression-syntax-error.js';
import { preview, tokenize, type Token } from './expression-tokenizer.js';

/** Limits that keep parsing of untrusted expressions bounded. */
export interface ExpressionLimits {
  /** Deepest nesting of parentheses and NOT (default 64). */
  readonly maxDepth?: number;
  /** Longest accepted expression in characters (default 4 Mi, room for a 1 MB literal). */
  readonly maxLength?: number;
}

/** Default deepest nesting of parentheses and NOT. */
export const DEFAULT_MAX_EXPRESSION_DEPTH = 64;
/** Default longest expression, in characters. */
export const DEFAULT_MAX_EXPRESSION_LENGTH = 4 * 1024 * 1024;

/**
 * Parses a filter expression into its syntax tree.
 *
 * @throws ExpressionSyntaxError naming the position and what was expected.
 * @example
 * ```ts
 * const ast = parseExpression('status == "ok" AND (value > 3 OR NOT archived)');
 * evaluateExpression(ast, { status: 'ok', value: 5 }); // true
 * ```
 */
export function parseExpression(text: string, limits: ExpressionLimits = {}): ExpressionNode {
  const parser = new Parser(checkLength(text, limits), limits.maxDepth ?? DEFAULT_MAX_EXPRESSION_DEPTH);
  const node = parser.parseOr(0);
  parser.expectEnd('AND, OR or the end of the expression');
  return node;
}

/**
 * Parses a field path as written in expressions and transform options:
 * `a.b.c`, `a["x-y"]`, `items[0].sku`, `["top level"]`.
 *
 * @throws ExpressionSyntaxError naming the position and what was expected.
 * @example
 * ```ts
 * parseFieldPath('order.items[0]["unit-price"]'); // ['order', 'items', 0, 'unit-price']
 * ```
 */
export function parseFieldPath(text: string, limits: ExpressionLimits = {}): FieldPath {
  const parser = new Parser(checkLength(text, limits), limits.maxDepth ?? DEFAULT_MAX_EXPRESSION_DEPTH);
  const path = parser.parsePath();
  parser.expectEnd("'.', '[' or the end of the path");
  return path;
}

function checkLength(text: string, limits: ExpressionLimits): string {
  const maxLength = limits.maxLength ?? DEFAULT_MAX_EXPRESSION_LENGTH;
  if (text.length > maxLength) {
    throw new ExpressionSyntaxError(
      maxLength,
      `at most ${maxLength} characters`,
      `${text.length} characters`,
      `Expression is too long: ${text.length} characters, at most ${maxLength} are accepted`,
    );
  }
  return text;
}

class Parser {
  private readonly tokens: Token[];
  private index = 0;

  constructor(
    text: string,
    private readonly maxDepth: number,
  ) {
    this.tokens = tokenize(text);
  }

  parseOr(depth: number): ExpressionNode {
    const operands = [this.parseAnd(depth)];
    while (this.peek().kind === 'or') {
      this.index++;
      operands.push(this.parseAnd(depth));
    }
    return operands.length === 1 ? (operands[0] as ExpressionNode) : { kind: 'or', operands };
  }

  private parseAnd(depth: number): ExpressionNode {
    const operands = [this.parseNot(depth)];
    while (this.peek().kind === 'and') {
      this.index++;
      operands.push(this.parseNot(depth));
    }
    return operands.length === 1 ? (operands[0] as ExpressionNode) : { kind: 'and', operands };
  }

  private parseNot(depth: number): ExpressionNode {
    const token = this.peek();
    if (token.kind !== 'not') return this.parseComparison(depth);
    this.index++;
    return { kind: 'not', operand: this.parseNot(this.deeper(depth, token)) };
  }

  private parseComparison(depth: number): ExpressionNode {
    const left = this.parsePrimary(depth);
    const token = this.peek();
    if (token.kind !== 'comparison') return left;
    this.index++;
    const right = this.parsePrimary(depth);
    const next = this.peek();
    if (next.kind === 'comparison') {
      throw new ExpressionSyntaxError(
        next.position,
        'AND, OR, a closing parenthesis or the end of the expression (comparisons do not chain; use AND)',
        describe(next),
      );
    }
    return { kind: 'comparison', operator: token.text as ComparisonOperator, left, right };
  }

  private parsePrimary(depth: number): ExpressionNode {
    const token = this.peek();
    switch (token.kind) {
      case 'string':
      case 'number':
        this.index++;
        return { kind: 'literal', value: token.value as string | number };
      case 'true':
      case 'false':
        this.index++;
        return { kind: 'literal', value: token.kind === 'true' };
      case 'null':
        this.index++;
        return { kind: 'literal', value: null };
      case 'identifier':
      case '[':
        return { kind: 'field', path: this.parsePath() };
      case '(': {
        this.index++;
        const inner = this.parseOr(this.deeper(depth, token));
        this.expect(')', "')' to close the parenthesis opened at position " + String(token.position));
        return inner;
      }
      default:
        throw new ExpressionSyntaxError(token.position, 'a value (a field, a literal or a parenthesis)', describe(token));
    }
  }

  parsePath(): FieldPath {
    const path: (string | number)[] = [];
    const first = this.peek();
    if (first.kind === 'identifier') {
      this.index++;
      path.push(first.text);
    } else if (first.kind === '[') {
      path.push(this.parseBracket());
    } else {
      throw new ExpressionSyntaxError(first.position, 'a field name', describe(first));
    }
    for (;;) {
      const token = this.peek();
      // A record nests at most 64 levels (RECORD_BOUNDS): a longer path can name nothing, and walking it would only exhaust the stack.
      if ((token.kind === '.' || token.kind === '[') && path.length >= this.maxDepth) {
        throw new ExpressionSyntaxError(
          token.position,
          `at most ${this.maxDepth} segments in a field path`,
          describe(token),
          `Field path has more than ${this.maxDepth} segments at position ${token.position} (records nest at most ${this.maxDepth} levels)`,
        );
      }
      if (token.kind === '.') {
        this.index++;
        const name = this.peek();
        // After a dot every word is a field name, keywords included: `a.and`, `a.null`.
        if (!/^[A-Za-z_$]/.test(name.text)) {
          throw new ExpressionSyntaxError(name.position, "a field name after '.'", describe(name));
        }
        this.index++;
        path.push(name.text);
      } else if (token.kind === '[') {
        path.push(this.parseBracket());
      } else {
        return path;
      }
    }
  }

  private parseBracket(): string | number {
    this.index++;
    const key = this.peek();
    let segment: string | number;
    if (key.kind === 'string') {
      segment = key.value as string;
    } else if (key.kind === 'number' && Number.isSafeInteger(key.value) && (key.value as number) >= 0) {
      segment = key.value as number;
    } else {
      throw new ExpressionSyntaxError(key.position, 'a quoted key or a non-negative integer index', describe(key));
    }
    this.index++;
    this.expect(']', "']'");
    return segment;
  }

  expectEnd(expected: string): void {
    const token = this.peek();
    if (token.kind !== 'end') throw new ExpressionSyntaxError(token.position, expected, describe(token));
  }

  private expect(kind: Token['kind'], expected: string): void {
    const token = this.peek();
    if (token.kind !== kind) throw new ExpressionSyntaxError(token.position, expected, describe(token));
    this.index++;
  }

  private deeper(depth: number, token: Token): number {
    if (depth + 1 > this.maxDepth) {
      throw new ExpressionSyntaxError(
        token.position,
        `at most ${this.maxDepth} levels of nesting`,
        describe(token),
        `Expression nests deeper than ${this.maxDepth} levels (parentheses and NOT) at position ${token.position}`,
      );
    }
    return depth + 1;
  }

  private peek(): Token {
    // The token list always ends with an `end` token, and parsing never moves past it.
    return this.tokens[this.index] as Token;
  }
}

function describe(token: Token): string {
  switch (token.kind) {
    case 'end':
      return 'end of expression';
    case 'string':
      return `the string "${preview(token.value as string)}"`;
    case 'number':
      return `the number ${String(token.value)}`;
    default:
      return `'${preview(token.text)}'`;
  }
}
