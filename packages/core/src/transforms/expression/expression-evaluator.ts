/**
 * Evaluates a parsed filter expression against a record. No `eval`, no
 * `Function`: the tree is walked directly, and fields are read with own-property
 * lookups only.
 *
 * Semantics (also in docs-pipelines.md):
 * - A missing field reads as `null`.
 * - `==` is true for two equal strings, numbers or booleans of the same type,
 *   and for `null == null`; never across types (`"3" == 3` is false) and never
 *   for objects or arrays. `!=` is exactly `NOT ==`.
 * - `> >= < <=` compare two numbers, or two strings by UTF-16 code units; any
 *   other pair (mixed types, null, booleans, objects) is false.
 * - A value used as a condition (`active AND ...`) is true only when it is the
 *   boolean `true`.
 */
import { getPath } from '../field-path/field-path.js';
import type { ComparisonOperator, ExpressionNode } from './expression-ast.js';

/**
 * Whether `record` satisfies the expression.
 *
 * @example
 * ```ts
 * const ast = parseExpression('level >= 3 AND tags[0] == "prod"');
 * evaluateExpression(ast, { level: 4, tags: ['prod'] }); // true
 * evaluateExpression(ast, { level: '4', tags: ['prod'] }); // false: no coercion
 * ```
 */
export function evaluateExpression(node: ExpressionNode, record: unknown): boolean {
  switch (node.kind) {
    case 'and':
      return node.operands.every((operand) => evaluateExpression(operand, record));
    case 'or':
      return node.operands.some((operand) => evaluateExpression(operand, record));
    case 'not':
      return !evaluateExpression(node.operand, record);
    case 'comparison':
      return compareValues(node.operator, valueOf(node.left, record), valueOf(node.right, record));
    case 'literal':
      return node.value === true;
    case 'field':
      return getPath(record, node.path) === true;
  }
}

function valueOf(node: ExpressionNode, record: unknown): unknown {
  switch (node.kind) {
    case 'literal':
      return node.value;
    case 'field':
      return getPath(record, node.path) ?? null;
    default:
      return evaluateExpression(node, record);
  }
}

/**
 * Applies one comparison operator with the language's semantics (see the module header).
 *
 * @example
 * ```ts
 * compareValues('<', 'a', 'b'); // true
 * compareValues('<', 1, '2');   // false: type mismatch
 * ```
 */
export function compareValues(operator: ComparisonOperator, left: unknown, right: unknown): boolean {
  switch (operator) {
    case '==':
      return valuesEqual(left, right);
    case '!=':
      return !valuesEqual(left, right);
    default:
      if (!((typeof left === 'number' && typeof right === 'number') || (typeof left === 'string' && typeof right === 'string'))) {
        return false;
      }
      if (operator === '>') return left > right;
      if (operator === '>=') return left >= right;
      if (operator === '<') return left < right;
      return left <= right;
  }
}

function valuesEqual(left: unknown, right: unknown): boolean {
  const l = left ?? null;
  const r = right ?? null;
  if (l === null || r === null) return l === r;
  if (typeof l === 'object' || typeof r === 'object') return false;
  return l === r;
}
