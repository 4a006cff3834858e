/**
 * `parallelism` (ADR 0013): bounds, and more than 1 task only for a source
 * type whose registry entry declares `parallelTasks`; task ids.
 */
import * as z from 'zod';
import { describe, expect, it } from 'vitest';
import { connectorRegistry } from './connector-registry.js';
import { validatePipelineDefinition } from './pipeline-definition.js';
import { MAX_PARALLELISM, pipelineTaskId, pipelineTaskIds, pipelineTaskOf } from './pipeline-tasks.js';

const registry = connectorRegistry({
  sources: { kafka: z.looseObject({ type: z.literal('kafka') }), generator: z.looseObject({ type: z.literal('generator') }) },
  sinks: { console: z.looseObject({ type: z.literal('console') }) },
  sourceCapabilities: { kafka: { parallelTasks: true } },
});

const definition = (parallelism: unknown, source = 'kafka') => ({ name: 'orders', source: { type: source }, sink: { type: 'console' }, parallelism });

describe('parallelism', () => {
  it('is accepted from 1 to 64 for a source that declares parallel tasks, and left out when not given', () => {
    for (const n of [1, 3, MAX_PARALLELISM]) {
      const result = validatePipelineDefinition(definition(n), { connectors: registry });
      expect(result.ok ? result.definition.parallelism : result.issues).toBe(n);
    }
    const { parallelism: _omitted, ...without } = definition(1);
    const result = validatePipelineDefinition(without, { connectors: registry });
    expect(result.ok && !('parallelism' in result.definition)).toBe(true);
  });

  it('is bounded and must be an integer, with field-level messages', () => {
    const issues = (n: unknown) => {
      const result = validatePipelineDefinition(definition(n), { connectors: registry });
      return result.ok ? [] : result.issues;
    };
    expect(issues(0)).toEqual([{ path: 'parallelism', message: 'parallelism must be at least 1' }]);
    expect(issues(65)).toEqual([{ path: 'parallelism', message: 'parallelism must be at most 64' }]);
    expect(issues(2.5)).toEqual([{ path: 'parallelism', message: 'parallelism must be an integer' }]);
    expect(issues('3')).toEqual([{ path: 'parallelism', message: 'parallelism must be an integer' }]);
  });

  it('more than 1 is refused for a source that cannot split its input, naming the sources that can', () => {
    const result = validatePipelineDefinition(definition(2, 'generator'), { connectors: registry });
    expect(result.ok ? [] : result.issues).toEqual([
      {
        path: 'parallelism',
        message: 'parallelism 2 is not possible: a generator source cannot split its input among tasks; only kafka sources run as several tasks (use parallelism 1 or leave it out)',
      },
    ]);
    expect(validatePipelineDefinition(definition(1, 'generator'), { connectors: registry }).ok).toBe(true);
  });

  it('asks a capability function with the source options', () => {
    const conditional = connectorRegistry({
      sources: { kafka: z.looseObject({ type: z.literal('kafka') }) },
      sinks: { console: z.looseObject({ type: z.literal('console') }) },
      sourceCapabilities: { kafka: { parallelTasks: (options) => (options['assign'] === undefined ? true : 'with assign the tasks would read the same partitions') } },
    });
    expect(validatePipelineDefinition({ ...definition(2), source: { type: 'kafka' } }, { connectors: conditional }).ok).toBe(true);
    const refused = validatePipelineDefinition({ ...definition(2), source: { type: 'kafka', assign: [0] } }, { connectors: conditional });
    expect(refused.ok ? [] : refused.issues.map((i) => i.path)).toEqual(['parallelism']);
  });
});

describe('task ids', () => {
  it('task 0 keeps the pipeline id; the others add .k, which a pipeline id cannot contain', () => {
    expect(pipelineTaskIds('orders', 3)).toEqual(['orders', 'orders.1', 'orders.2']);
    expect(pipelineTaskIds('orders', undefined)).toEqual(['orders']);
    expect(pipelineTaskId('orders', 0)).toBe('orders');
    expect(pipelineTaskOf('orders.2')).toEqual({ pipelineId: 'orders', index: 2 });
    expect(pipelineTaskOf('orders')).toEqual({ pipelineId: 'orders', index: 0 });
    expect(pipelineTaskOf('orders.0')).toEqual({ pipelineId: 'orders.0', index: 0 });
    expect(pipelineTaskOf('orders.x')).toEqual({ pipelineId: 'orders.x', index: 0 });
  });
});
