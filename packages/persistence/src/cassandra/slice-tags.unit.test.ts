import { describe, expect, it } from 'vitest';
import { isDataflowError, sliceForPersistenceId } from '@dataflow/core';
import { checkUserTag, sliceSelection, sliceTagOf, userTags } from './slice-tags.js';

describe('slice tags', () => {
  it('puts an id under the tag of its entity type and group of 64 slices', () => {
    const pid = 'pipeline-orders';
    expect(sliceForPersistenceId(pid)).toBe(112);
    expect(sliceTagOf(pid)).toBe('slices:pipeline:1');
    expect(sliceTagOf('coordinator')).toBe(`slices:coordinator:${Math.floor(sliceForPersistenceId('coordinator') / 64)}`);
  });

  it('reads the groups covering a range, and filters by slice only for ranges not made of whole groups', () => {
    const whole = sliceSelection('p', 256, 511);
    expect(whole.tags).toEqual(['slices:p:4', 'slices:p:5', 'slices:p:6', 'slices:p:7']);
    expect(whole.keep('p-anything')).toBe(true);
    expect(sliceSelection('p', 0, 1023).tags).toHaveLength(16);
    const inside = sliceSelection('pipeline', 100, 120);
    expect(inside.tags).toEqual(['slices:pipeline:1']);
    expect(inside.keep('pipeline-orders')).toBe(true);
    expect(sliceSelection('pipeline', 113, 127).keep('pipeline-orders')).toBe(false);
    expect(sliceSelection('p', 63, 64).tags).toEqual(['slices:p:0', 'slices:p:1']);
  });

  it('refuses a range outside 0..1023 naming minSlice and maxSlice', () => {
    for (const [min, max] of [[0, 1024], [5, 4], [-1, 3], [0.5, 3]] as const) {
      let caught: unknown;
      try {
        sliceSelection('p', min, max);
      } catch (error) {
        caught = error;
      }
      expect(isDataflowError(caught, 'journal/read-failed')).toBe(true);
      expect(String(caught)).toMatch(/minSlice \/ maxSlice/);
    }
  });

  it('refuses user tags with ":" and keeps the slice tag out of what is delivered', () => {
    expect(checkUserTag('p-1', 'pipeline-events')).toBe('pipeline-events');
    expect(() => checkUserTag('p-1', 'a:b')).toThrow(/"a:b" contains ':'/);
    const stored = ['a', 'slices:p:3', 'z'];
    expect(userTags(stored)).toEqual(['a', 'z']);
    // Rows without a slice tag (written before it existed) are passed through as they are.
    const old = ['a', 'b'];
    expect(userTags(old)).toBe(old);
  });
});
