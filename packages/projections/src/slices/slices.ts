/**
 * Slices, as in Pekko's r2dbc plugin: every persistence id belongs to one of
 * 1 024 slices (`abs(javaStringHashCode(persistenceId) % 1024)`, the same
 * function Pekko uses, so ids land in the same slice in both systems), and a
 * projection can run as N instances over disjoint slice ranges: each handles
 * only the events of its ids, with its own offset, so several nodes share one
 * projection without processing an event twice.
 *
 * Today an instance reads the whole tag and keeps its slices' events (every
 * store supports that with the tag query's guarantees); a slice-indexed query
 * in the stores (`eventsBySlices`) would spare each instance reading the
 * other slices' events.
 */

/** Number of slices. */
export const SLICE_COUNT = 1024;

/** A closed range of slices. */
export interface SliceRange {
  readonly min: number;
  readonly max: number;
}

/** Java's `String.hashCode` (UTF-16 code units, 32-bit wrap-around). */
function javaHashCode(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
  return hash;
}

/**
 * The slice of a persistence id.
 *
 * @example
 * ```ts
 * sliceForPersistenceId('pipeline-orders'); // a number in 0..1023
 * ```
 */
export function sliceForPersistenceId(persistenceId: string): number {
  return Math.abs(javaHashCode(persistenceId) % SLICE_COUNT);
}

/**
 * `n` contiguous ranges covering all slices (n must divide 1024: 1, 2, 4, ... 1024).
 *
 * @example
 * ```ts
 * sliceRanges(4); // [{min:0,max:255},{min:256,max:511},{min:512,max:767},{min:768,max:1023}]
 * ```
 */
export function sliceRanges(n: number): SliceRange[] {
  if (!Number.isInteger(n) || n < 1 || n > SLICE_COUNT || SLICE_COUNT % n !== 0) {
    throw new RangeError(`the number of slice ranges must divide ${SLICE_COUNT} (1, 2, 4, ... ${SLICE_COUNT}), got ${n}`);
  }
  const size = SLICE_COUNT / n;
  return Array.from({ length: n }, (_, i) => ({ min: i * size, max: (i + 1) * size - 1 }));
}

/** Whether a range is valid (0 <= min <= max <= 1023). */
export function checkSliceRange(range: SliceRange): SliceRange {
  if (!Number.isInteger(range.min) || !Number.isInteger(range.max) || range.min < 0 || range.max >= SLICE_COUNT || range.min > range.max) {
    throw new RangeError(`a slice range needs integers 0 <= min <= max <= ${SLICE_COUNT - 1}, got ${JSON.stringify(range)}`);
  }
  return range;
}

/** The default projection key of an instance over a range. */
export function sliceKey(range: SliceRange): string {
  return `slices-${range.min}-${range.max}`;
}
