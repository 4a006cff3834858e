/**
 * The projection factories: the guarantee in the name, defaults, and bad
 * settings refused by field with a typed error (no store involved).
 */
import { isDataflowError } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import type { InvalidProjectionInputError } from '../offset-store/projection-management-errors.js';
import { atLeastOnce, exactlyOnce, groupedWithin, HandlerRecoveryStrategy } from './projection.js';

const handler = () => Promise.resolve();

function issuesOf(build: () => unknown): readonly { path: string; message: string }[] {
  try {
    build();
  } catch (error) {
    expect(isDataflowError(error, 'projection/invalid-input')).toBe(true);
    expect((error as InvalidProjectionInputError).retriable).toBe(false);
    return (error as InvalidProjectionInputError).issues;
  }
  throw new Error('expected the factory to refuse its options');
}

describe('projection factories', () => {
  it('name the guarantee and fill in the defaults', () => {
    const once = exactlyOnce({ name: 'p', tag: 't', handler });
    expect(once).toMatchObject({ id: { name: 'p', key: 'default' }, tag: 't', guarantee: { kind: 'exactly-once' }, recovery: { type: 'fail' } });
    expect(groupedWithin({ name: 'g', key: 'slice-0', tag: 't', handler }).guarantee).toEqual({ kind: 'grouped-within', size: 500, withinMs: 200 });
    expect(atLeastOnce({ name: 'a', tag: 't', handler, saveEvery: 10 }).guarantee).toEqual({ kind: 'at-least-once', saveEvery: 10, saveAfterMs: 1_000 });
    expect(atLeastOnce({ name: 'a', tag: 't', handler, recovery: HandlerRecoveryStrategy.retryAndSkip(3, 50) }).recovery).toEqual({ type: 'retry-and-skip', retries: 3, delayMs: 50 });
  });

  it('refuse a missing name, key, tag or handler by field', () => {
    expect(issuesOf(() => exactlyOnce({ name: '', key: '', tag: '', handler }))).toEqual([
      { path: 'projection.name', message: 'a projection needs a name' },
      { path: 'projection.key', message: 'a projection key cannot be empty' },
      { path: 'projection.tag', message: 'a projection needs a tag' },
    ]);
    expect(issuesOf(() => exactlyOnce({ name: 'p', tag: 't', handler: undefined as unknown as typeof handler }))).toEqual([{ path: 'projection.handler', message: 'must be a function' }]);
  });

  it('refuse sizes and intervals that are not positive integers', () => {
    expect(issuesOf(() => groupedWithin({ name: 'g', tag: 't', handler, size: 1.5 }))).toEqual([{ path: 'projection.size', message: 'must be a positive integer' }]);
    expect(issuesOf(() => groupedWithin({ name: 'g', tag: 't', handler, withinMs: 0 }))).toEqual([{ path: 'projection.withinMs', message: 'must be a positive integer' }]);
    expect(issuesOf(() => atLeastOnce({ name: 'a', tag: 't', handler, saveEvery: 0 }))).toEqual([{ path: 'projection.saveEvery', message: 'must be a positive integer' }]);
    expect(issuesOf(() => atLeastOnce({ name: 'a', tag: 't', handler, saveAfterMs: -5 }))).toEqual([{ path: 'projection.saveAfterMs', message: 'must be a positive integer' }]);
  });

  it('refuse retry settings by field', () => {
    expect(issuesOf(() => HandlerRecoveryStrategy.retryAndFail(0, 10))).toEqual([{ path: 'recovery.retries', message: 'must be a positive integer' }]);
    expect(issuesOf(() => HandlerRecoveryStrategy.retryAndSkip(2, -1))).toEqual([{ path: 'recovery.delayMs', message: 'must be a non-negative number' }]);
    expect(issuesOf(() => HandlerRecoveryStrategy.retryAndSkip(2, Number.POSITIVE_INFINITY))).toEqual([{ path: 'recovery.delayMs', message: 'must be a non-negative number' }]);
  });
});
