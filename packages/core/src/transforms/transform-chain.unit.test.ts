import { describe, expect, it } from 'vitest';
import { createTransform } from './create-transform.js';
import { transformDefinitionSchema } from './transform-definition.js';
import { applyTransformChain, flushTransformChain, initialTransformStates, runTransformChain } from './transform-chain.js';
import { InMemoryLookupSource } from './enrich/lookup-source.js';
import type { LookupSource } from './enrich/lookup-source.js';

const chain = (lookups: Record<string, LookupSource> = {}) =>
  [
    { type: 'json-parse', field: 'line' },
    { type: 'filter', expression: 'kind == "click"' },
    { type: 'aggregate', groupBy: ['page'], windowMs: 1000, timestampField: 'ts', aggregations: [{ op: 'count', as: 'clicks' }] },
    { type: 'filter', expression: 'clicks >= 2' },
  ].map((definition, i) => createTransform(transformDefinitionSchema.parse(definition), { stage: `transforms[${i}]`, lookups }));

const line = (value: object) => ({ line: JSON.stringify(value) });

describe('transform chain', () => {
  it('feeds each stage with the previous output, collects failures by stage and threads state', async () => {
    const stages = chain();
    const first = await runTransformChain(
      stages,
      initialTransformStates(stages),
      [line({ kind: 'click', page: '/a', ts: 10 }), { line: 'not json' }, line({ kind: 'view', page: '/a', ts: 20 }), line({ kind: 'click', page: '/a', ts: 30 }), line({ kind: 'click', page: '/b', ts: 40 })],
      { now: 0 },
    );
    expect(first.records).toEqual([]);
    expect(first.failures.map((f) => [f.stage, f.error.reason])).toEqual([['transforms[0]', 'malformed-json']]);
    expect(first.states).toEqual([null, null, expect.objectContaining({ watermark: 40 }), null]);

    const second = await runTransformChain(stages, first.states, [line({ kind: 'click', page: '/a', ts: 1500 })], { now: 0 });
    expect(second.records).toEqual([{ page: '/a', windowStart: 0, windowEnd: 1000, clicks: 2 }]);

    const flushed = await flushTransformChain(stages, second.states, { now: 0 });
    expect(flushed.records).toEqual([]);
    expect(flushed.states).toEqual([null, null, { watermark: 1500, windows: [] }, null]);
  });

  it('passes what a flush emits through the later stages', async () => {
    const stages = chain();
    const run = await runTransformChain(stages, initialTransformStates(stages), [line({ kind: 'click', page: '/x', ts: 1 }), line({ kind: 'click', page: '/x', ts: 2 }), line({ kind: 'click', page: '/y', ts: 3 })], { now: 0 });
    const flushed = await flushTransformChain(stages, run.states, { now: 0 });
    expect(flushed.records).toEqual([{ page: '/x', windowStart: 0, windowEnd: 1000, clicks: 2 }]);
  });

  it('rejects on a stage-level failure and leaves the given states untouched', async () => {
    const broken: LookupSource = { get: () => Promise.reject(new Error('timeout')) };
    const lookup = createTransform(transformDefinitionSchema.parse({ type: 'enrich', lookup: 'pages', key: 'page', target: 'meta' }), { lookups: { pages: broken } });
    const base = chain();
    const stages = [...base.slice(0, 2), lookup, ...base.slice(2, 3)];
    const states = initialTransformStates(stages);
    await expect(runTransformChain(stages, states, [line({ kind: 'click', page: '/a', ts: 1 })], { now: 0 })).rejects.toMatchObject({
      tag: 'transform/lookup-failed',
    });
    expect(states).toEqual([null, null, null, { watermark: null, windows: [] }]);
  });
});

describe('applyTransformChain', () => {
  it('answers at once while every stage is synchronous, the same as runTransformChain', async () => {
    const stages = chain();
    const input = [line({ kind: 'click', page: '/a', ts: 10 }), line({ kind: 'click', page: '/a', ts: 2_000 })];
    const now = applyTransformChain(stages, initialTransformStates(stages), input, { now: 0 });
    expect(now).not.toBeInstanceOf(Promise);
    expect(now).toEqual(await runTransformChain(stages, initialTransformStates(stages), input, { now: 0 }));
  });

  it('continues after an asynchronous stage (enrich) with the stages behind it', async () => {
    const lookups = { pages: new InMemoryLookupSource({ '/a': { title: 'Home' } }) };
    const stages = [
      { type: 'enrich', lookup: 'pages', key: 'page', target: 'meta', onMiss: 'fail' },
      { type: 'map', set: [{ to: 'seen', value: true }] },
    ].map((definition, i) => createTransform(transformDefinitionSchema.parse(definition), { stage: `transforms[${i}]`, lookups }));
    const result = applyTransformChain(stages, initialTransformStates(stages), [{ page: '/a' }, { page: '/zzz' }], { now: 0 });
    expect(result).toBeInstanceOf(Promise);
    const settled = await result;
    expect(settled.records).toEqual([{ page: '/a', meta: { title: 'Home' }, seen: true }]);
    expect(settled.failures.map((f) => [f.stage, f.error.reason])).toEqual([['transforms[0]', 'lookup-miss']]);
    expect(settled.states).toEqual([null, null]);
  });
});
