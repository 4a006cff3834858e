/**
 * Batch preparation without actors: the source's parse policy, the chain
 * (synchronous or not), each stage's error policy and the letters it makes,
 * and the sink's policy over refused records.
 */
import { describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../connector/source.js';
import { createTransform } from '../../transforms/create-transform.js';
import { InMemoryLookupSource } from '../../transforms/enrich/lookup-source.js';
import { validatePipelineDefinition } from '../definition/pipeline-definition.js';
import { prepareBatch, prepareFlush, refuseAtSink, type PreparationPlan } from './batch-preparation.js';

function plan(overrides: Record<string, unknown>, lookups = {}): PreparationPlan {
  const validation = validatePipelineDefinition({ name: 'prep', source: { type: 'array' }, sink: { type: 'map' }, ...overrides });
  if (!validation.ok) throw new Error(JSON.stringify(validation.issues));
  const definition = validation.definition;
  const transforms = definition.transforms.map((t, i) => createTransform(t, { stage: `transforms[${i}]`, lookups }));
  return { definition, transforms, stateful: transforms.some((t) => t.kind === 'stateful') };
}

const context = { pipelineId: 'p1', batchId: 'p1:4', now: 1_000, attempt: 2 };
const unreadable: SourceRecord = { ok: false, raw: '{bad', reason: 'not JSON' };
const good = (value: Record<string, string | number>): SourceRecord => ({ ok: true, value });

describe('prepareBatch', () => {
  it('is synchronous for synchronous stages and applies each stage policy', () => {
    const p = plan({
      source: { type: 'array', onError: 'dead-letter' },
      transforms: [{ type: 'json-parse', field: 'body', onError: 'skip' }],
      deadLetter: { type: 'file', path: '/x' },
    });
    const prepared = prepareBatch(p, [null], [good({ body: '{"a":1}' }), unreadable, good({ body: 'nope' })], context);
    if (prepared instanceof Promise) throw new Error('expected a synchronous result');
    expect(prepared.output).toEqual([{ a: 1 }]);
    expect(prepared.failed).toBe(2);
    expect(prepared.letters).toEqual([
      { pipelineId: 'p1', stage: 'source', stageName: 'array', error: { message: 'not JSON', retriable: false }, attempt: 2, payload: '{bad', batchId: 'p1:4', failedAt: 1_000 },
    ]);
  });

  it('dead-letters a transform failure with its stage name and reason tag', () => {
    const p = plan({ transforms: [{ type: 'json-parse', field: 'body', onError: 'dead-letter' }], deadLetter: { type: 'file', path: '/x' } });
    const prepared = prepareBatch(p, [null], [good({ body: 'nope' })], context);
    if (prepared instanceof Promise) throw new Error('expected a synchronous result');
    expect(prepared.letters[0]).toMatchObject({ stage: 'transform', stageName: 'transforms[0]:json-parse', error: { tag: 'transform/record-rejected' }, payload: { body: 'nope' } });
  });

  it('throws StageFailedError for a record whose stage policy is fail', () => {
    const p = plan({ transforms: [{ type: 'json-parse', field: 'body' }] });
    expect(() => prepareBatch(p, [null], [good({ body: 'nope' })], context)).toThrow(expect.objectContaining({ tag: 'pipeline/stage-failed' }) as Error);
  });

  it('returns a promise when a stage is asynchronous (enrich), with its policies applied', async () => {
    const p = plan(
      { transforms: [{ type: 'enrich', lookup: 'c', key: 'id', target: 'c', onMiss: 'fail', onError: 'skip' }] },
      { c: new InMemoryLookupSource({ k1: { n: 1 } }) },
    );
    const prepared = prepareBatch(p, [null], [good({ id: 'k1' }), good({ id: 'k2' })], context);
    expect(prepared).toBeInstanceOf(Promise);
    await expect(prepared).resolves.toMatchObject({ output: [{ id: 'k1', c: { n: 1 } }], failed: 1, letters: [] });
  });

  it('flushes open windows into one more output', async () => {
    const p = plan({ transforms: [{ type: 'aggregate', groupBy: [], windowMs: 100, timestampField: 'ts', aggregations: [{ op: 'count', as: 'n' }] }] });
    const first = prepareBatch(p, [p.transforms[0]?.kind === 'stateful' ? p.transforms[0].initialState() : null], [good({ ts: 5 }), good({ ts: 7 })], context);
    if (first instanceof Promise) throw new Error('expected a synchronous result');
    expect(first.output).toEqual([]);
    const flushed = await prepareFlush(p, first.transformStates, context);
    expect(flushed.output).toEqual([{ windowStart: 0, windowEnd: 100, n: 2 }]);
  });
});

describe('refuseAtSink', () => {
  it('applies the sink policy to refused records', () => {
    const p = plan({ sink: { type: 'map', onError: 'dead-letter' }, deadLetter: { type: 'file', path: '/x' } });
    const refusal = refuseAtSink(p.definition, [{ record: { id: 1 }, failure: { message: 'too big', retriable: false } }], context);
    expect(refusal).toMatchObject({ failed: 1, letters: [{ stage: 'sink', stageName: 'map', payload: { id: 1 }, error: { message: 'too big' } }] });
    const skipping = plan({ sink: { type: 'map', onError: 'skip' } });
    expect(refuseAtSink(skipping.definition, [{ record: { id: 1 }, failure: { message: 'x', retriable: false } }], context)).toEqual({ letters: [], failed: 1 });
  });
});
