/**
 * Where a batch failed, as the `pipeline.batch.failed` event names it
 * (`failureStage`), and the per-stage counts of records that failed without
 * failing their batch (`failedByStage` of a prepared batch).
 */
import { describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../connector/source.js';
import { createTransform } from '../../transforms/create-transform.js';
import { validatePipelineDefinition } from '../definition/pipeline-definition.js';
import { openCycle, stepCycle, type BatchCycle, type CycleConfig, type CycleEvent } from './batch-cycle.js';
import { prepareBatch, type PreparationPlan, type PreparedRecords } from './batch-preparation.js';
import { failureStage } from './failure-stage.js';
import { StageFailedError } from './pipeline-protocol.js';

function definitionWith(overrides: Record<string, unknown> = {}) {
  const validation = validatePipelineDefinition({ name: 'stages', source: { type: 'array' }, sink: { type: 'map' }, batch: { size: 10, maxWaitMs: 5 }, ...overrides });
  if (!validation.ok) throw new Error(JSON.stringify(validation.issues));
  return validation.definition;
}

const config: CycleConfig = {
  pipelineId: 'p1',
  definition: definitionWith(),
  stateful: false,
  pipelinedWrites: false,
  hasDeadLetterTarget: true,
  maxBatchesPerCheckpoint: 4,
};
const start = { recorded: 0, committedStates: [], offset: null, position: null, retry: null };
const prepared = (n: number): PreparedRecords => ({ output: Array.from({ length: n }, (_, i) => ({ i })), letters: [], failed: 0, transformStates: [] });
const polled: CycleEvent = { type: 'polled', batch: { records: [{ ok: true, value: { id: 1 } }], offset: 1, done: false } };

function after(...events: CycleEvent[]): BatchCycle {
  let cycle = openCycle(config, start);
  for (const event of events) cycle = stepCycle(cycle, event, 0).cycle;
  return cycle;
}

const error = new Error('boom');
const failed = (batchId: string | undefined): CycleEvent => ({ type: 'failed', batchId, error });

describe('failureStage', () => {
  it('names the phase the cycle was in', () => {
    expect(failureStage(after(), failed(undefined), error)).toBe('open');
    expect(failureStage(after({ type: 'opened' }), failed(undefined), error)).toBe('source');
    expect(failureStage(after({ type: 'opened' }, polled), failed('p1:1'), error)).toBe('transforms');
    const writing = after({ type: 'opened' }, polled, { type: 'prepared', batchId: 'p1:1', result: prepared(1) });
    expect(writing.front.stage).toBe('writing');
    expect(failureStage(writing, { type: 'write-failed', batchId: 'p1:1', error }, error)).toBe('sink');
    const checkpointing = stepCycle(writing, { type: 'written', batchId: 'p1:1', result: {} }, 0).cycle;
    expect(checkpointing.back.stage).toBe('checkpointing');
    expect(failureStage(checkpointing, failed('p1:1'), error)).toBe('checkpoint');
    expect(failureStage(after({ type: 'opened' }, polled), failed(undefined), error)).toBe('ack');
    expect(failureStage(checkpointing, { type: 'timeout', batchId: 'p1:1' }, error)).toBe('timeout');
  });

  it('takes the stage a record failed from its StageFailedError', () => {
    const stageError = new StageFailedError('transforms[1]:json-parse', 'not JSON', { at: 'transforms[1]' });
    expect(stageError.message).toBe('Stage transforms[1]:json-parse failed a record: not JSON');
    expect(failureStage(after({ type: 'opened' }, polled), { type: 'failed', batchId: 'p1:1', error: stageError }, stageError)).toBe('transforms[1]');
    expect(new StageFailedError('deadLetter', 'no target').at).toBe('deadLetter');
  });
});

describe('failedByStage', () => {
  const plan = (overrides: Record<string, unknown>): PreparationPlan => {
    const definition = definitionWith(overrides);
    const transforms = definition.transforms.map((t, i) => createTransform(t, { stage: `transforms[${i}]`, lookups: {} }));
    return { definition, transforms, stateful: false };
  };
  const context = { pipelineId: 'p1', batchId: 'p1:1', now: 0, attempt: 1 };
  const good = (body: string): SourceRecord => ({ ok: true, value: { body } });

  it('counts the records each stage dropped and is absent when none was', () => {
    const p = plan({
      source: { type: 'array', onError: 'skip' },
      transforms: [{ type: 'filter', expression: 'true' }, { type: 'json-parse', field: 'body', onError: 'skip' }],
    });
    const result = prepareBatch(p, [null, null], [good('{"a":1}'), { ok: false, raw: 'x', reason: 'unreadable' }, good('no'), good('nope')], context);
    if (result instanceof Promise) throw new Error('expected a synchronous result');
    expect(result.failed).toBe(3);
    expect(result.failedByStage).toEqual({ source: 1, 'transforms[1]': 2 });
    const clean = prepareBatch(p, [null, null], [good('{"a":1}')], context);
    if (clean instanceof Promise) throw new Error('expected a synchronous result');
    expect(clean.failedByStage).toBeUndefined();
  });

  it('names the stage whose policy is fail', () => {
    const p = plan({ transforms: [{ type: 'json-parse', field: 'body', onError: 'fail' }] });
    expect(() => prepareBatch(p, [null], [good('no')], context)).toThrow(expect.objectContaining({ tag: 'pipeline/stage-failed', at: 'transforms[0]' }));
  });

  it('adds the records the sink refused under sink', () => {
    const skipping: CycleConfig = { ...config, definition: definitionWith({ sink: { type: 'map', onError: 'skip' } }) };
    let cycle = openCycle(skipping, start);
    for (const event of [{ type: 'opened' }, polled, { type: 'prepared', batchId: 'p1:1', result: { ...prepared(2), failed: 1, failedByStage: { 'transforms[0]': 1 } } }] as CycleEvent[]) {
      cycle = stepCycle(cycle, event, 0).cycle;
    }
    const { effects } = stepCycle(cycle, { type: 'written', batchId: 'p1:1', result: { rejected: [{ index: 0, reason: 'too big' }] } }, 0);
    expect(effects).toContainEqual(expect.objectContaining({ type: 'checkpoint', batches: [expect.objectContaining({ failed: 2, failedByStage: { 'transforms[0]': 1, sink: 1 } })] }));
  });
});
