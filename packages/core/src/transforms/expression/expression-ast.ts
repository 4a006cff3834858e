/**
 * The syntax tree of a parsed filter expression. Plain data: it can be
 * inspected, serialized and evaluated without re-parsing.
 */
import type { FieldPath } from '../field-path/field-path.js';
import type { ComparisonOperator } from './expression-tokenizer.js';

export type { ComparisonOperator } from './expression-tokenizer.js';

/** A literal value written in the expression. */
export interface LiteralNode {
  readonly kind: 'literal';
  readonly value: string | number | boolean | null;
}

/** A reference to a record field. */
export interface FieldNode {
  readonly kind: 'field';
  readonly path: FieldPath;
}

/** `left <op> right`. */
export interface ComparisonNode {
  readonly kind: 'comparison';
  readonly operator: ComparisonOperator;
  readonly left: ExpressionNode;
  readonly right: ExpressionNode;
}

/** `NOT operand`. */
export interface NotNode {
  readonly kind: 'not';
  readonly operand: ExpressionNode;
}

/** `a AND b AND ...` or `a OR b OR ...`, flattened so long chains stay shallow. */
export interface LogicalNode {
  readonly kind: 'and' | 'or';
  readonly operands: readonly ExpressionNode[];
}

/**
 * Any node of a parsed expression.
 *
 * @example
 * ```ts
 * const ast: ExpressionNode = parseExpression('status == "ok"');
 * // { kind: 'comparison', operator: '==', left: { kind: 'field', path: ['status'] },
 * //   right: { kind: 'literal', value: 'ok' } }
 * ```
 */
export type ExpressionNode = LiteralNode | FieldNode | ComparisonNode | NotNode | LogicalNode;
