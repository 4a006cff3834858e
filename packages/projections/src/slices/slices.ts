/**
 * Slices of a projection: a projection can run as N instances over disjoint
 * slice ranges, each handling only the events of its persistence ids with its
 * own offset, so several nodes share one projection without processing an
 * event twice. The slice function itself (1 024 slices, Pekko's
 * `abs(javaStringHashCode(persistenceId) % 1024)`) lives in `@dataflow/core`
 * beside the `eventsBySlices` query; this module re-exports it and adds the
 * projection's key of a range.
 */
import type { SliceRange } from '@dataflow/core';

export { checkSliceRange, entityTypeOf, SLICE_COUNT, sliceForPersistenceId, sliceRanges, type SliceRange } from '@dataflow/core';

/**
 * The default projection key of an instance over a range.
 *
 * @example
 * ```ts
 * sliceKey({ min: 0, max: 511 }); // 'slices-0-511'
 * ```
 */
export function sliceKey(range: SliceRange): string {
  return `slices-${range.min}-${range.max}`;
}
