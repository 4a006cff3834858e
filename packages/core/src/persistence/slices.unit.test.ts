import { describe, expect, it } from 'vitest';
import { checkSliceRange, entityTypeOf, sliceForPersistenceId, sliceRanges } from './slices.js';

describe('slices', () => {
  it('match Pekko: abs(String.hashCode % 1024)', () => {
    // Values from Java 17's jshell: "pipeline-orders".hashCode() == 445663344, Math.abs(h % 1024) == 112;
    // "ü-ñ-😀".hashCode() == -1324834320 (negative, surrogate pairs as two code units) gives 528.
    expect(sliceForPersistenceId('pipeline-orders')).toBe(112);
    expect(sliceForPersistenceId('ü-ñ-😀')).toBe(528);
    expect(sliceForPersistenceId('')).toBe(0);
    for (const id of ['a', 'pipeline-x', '__proto__', 'ü-ñ-😀']) {
      const slice = sliceForPersistenceId(id);
      expect(slice).toBeGreaterThanOrEqual(0);
      expect(slice).toBeLessThan(1024);
    }
  });

  it('splits 0..1023 into n contiguous ranges and refuses an n that does not divide 1024', () => {
    expect(sliceRanges(1)).toEqual([{ min: 0, max: 1023 }]);
    expect(sliceRanges(4).map((r) => [r.min, r.max])).toEqual([
      [0, 255],
      [256, 511],
      [512, 767],
      [768, 1023],
    ]);
    expect(() => sliceRanges(3)).toThrow(/must divide 1024/);
    expect(() => checkSliceRange({ min: 5, max: 1024 })).toThrow(/0 <= min <= max <= 1023/);
  });

  it('takes the entity type as the prefix before the first dash', () => {
    expect(entityTypeOf('pipeline-orders')).toBe('pipeline');
    expect(entityTypeOf('pipeline-a-b')).toBe('pipeline');
    expect(entityTypeOf('coordinator')).toBe('coordinator');
    expect(entityTypeOf('-x')).toBe('');
  });
});
