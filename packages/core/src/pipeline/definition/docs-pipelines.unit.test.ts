/**
 * Keeps docs-pipelines.md honest: every JSON definition in it must validate,
 * every row of its expression table must evaluate as stated, and the
 * validation example must report what the page says.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { evaluateExpression } from '../../transforms/expression/expression-evaluator.js';
import { parseExpression } from '../../transforms/expression/expression-parser.js';
import { validatePipelineDefinition } from './pipeline-definition.js';

const page = readFileSync(new URL('../../../docs-pipelines.md', import.meta.url), 'utf8');

const jsonBlocks = [...page.matchAll(/```json\n([\s\S]*?)```/g)].map((match) => match[1] as string);

const examples = (page.split('<!-- expression-examples:start -->')[1] ?? '')
  .split('<!-- expression-examples:end -->')[0]
  ?.split('\n')
  .map((line) => /^\| `(.+)` \| `(.+)` \| (true|false) \|$/.exec(line))
  .flatMap((match) => (match === null ? [] : [{ expression: match[1] as string, record: match[2] as string, result: match[3] === 'true' }]));

describe('docs-pipelines.md', () => {
  it('has the examples this test checks', () => {
    expect(jsonBlocks.length).toBeGreaterThanOrEqual(2);
    expect(examples?.length).toBeGreaterThanOrEqual(15);
  });

  it.each(jsonBlocks.map((block, i) => [i, block]))('JSON definition %i is valid', (_, block) => {
    const result = validatePipelineDefinition(JSON.parse(block));
    expect(result.ok ? [] : result.issues).toEqual([]);
  });

  it.each(examples ?? [])('$expression on $record is $result', ({ expression, record, result }) => {
    expect(evaluateExpression(parseExpression(expression), JSON.parse(record))).toBe(result);
  });

  it('reports the issues the validation example shows', () => {
    expect(validatePipelineDefinition({ name: 'x y', source: {}, sink: { type: 'console' }, batch: { size: 0 } })).toEqual({
      ok: false,
      issues: [
        { path: 'name', message: 'The name may contain only letters, digits, - and _' },
        { path: 'source.type', message: 'The source needs a type (a string such as "kafka")' },
        { path: 'batch.size', message: 'batch.size must be at least 1' },
      ],
    });
  });
});
