/**
 * ADR 0013: a task of a pipeline with `parallelism > 1` opens its source with
 * `SourceContext.task` (the pipeline's id, the task's index and the count),
 * while the context's `pipelineId` stays the task's own id; a pipeline of
 * parallelism 1 opens it as before, without `task`.
 */
import { describe, expect, it } from 'vitest';
import type { Sink } from '../../connector/sink.js';
import type { Source, SourceContext } from '../../connector/source.js';
import { validatePipelineDefinition } from '../definition/pipeline-definition.js';
import { ConnectorRun } from './connector-run.js';

function definition(parallelism: number | undefined) {
  const validation = validatePipelineDefinition({ name: 'tasks', source: { type: 'array' }, sink: { type: 'map' }, ...(parallelism === undefined ? {} : { parallelism }) });
  if (!validation.ok) throw new Error(JSON.stringify(validation.issues));
  return validation.definition;
}

async function openedContext(pipelineId: string, parallelism: number | undefined): Promise<SourceContext | undefined> {
  let context: SourceContext | undefined;
  const source: Source = {
    type: 'array',
    open: (ctx) => {
      context = ctx;
      return Promise.resolve();
    },
    poll: () => Promise.resolve({ records: [], offset: null, done: true }),
    ack: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  const sink: Sink = { type: 'map', open: () => Promise.resolve(), write: () => Promise.resolve({}), close: () => Promise.resolve() };
  const run = ConnectorRun.create(1, pipelineId, definition(parallelism), { createSource: () => source, createSink: () => sink, createDeadLetterTarget: () => { throw new Error('none'); } }, undefined);
  await run.open(undefined, undefined);
  return context;
}

describe('the source context of a task', () => {
  it('names the pipeline, the task and the count for every task of a pipeline with parallelism 3', async () => {
    expect((await openedContext('orders', 3))?.task).toEqual({ pipelineId: 'orders', index: 0, count: 3 });
    const third = await openedContext('orders.2', 3);
    expect(third?.pipelineId).toBe('orders.2');
    expect(third?.task).toEqual({ pipelineId: 'orders', index: 2, count: 3 });
  });

  it('is left out for a pipeline of parallelism 1 (or none given)', async () => {
    expect(await openedContext('orders', 1)).not.toHaveProperty('task');
    expect(await openedContext('orders', undefined)).not.toHaveProperty('task');
  });
});
