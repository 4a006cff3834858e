/**
 * Slices, as in Pekko's r2dbc plugin: every persistence id belongs to one of
 * 1 024 slices (`abs(javaStringHashCode(persistenceId) % 1024)`, the function
 * Pekko uses, so an id lands in the same slice in both systems), and an
 * entity type (the persistence id's prefix before its first `-`). A query
 * over an entity type and a slice range (`eventsBySlices`) lets N consumers
 * share the events of one entity type without reading each other's.
 */

/** Number of slices. */
export const SLICE_COUNT = 1024;

/** A closed range of slices (`0 <= min <= max <= 1023`). */
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
 * sliceForPersistenceId('pipeline-orders'); // 112, as Pekko computes it
 * ```
 */
export function sliceForPersistenceId(persistenceId: string): number {
  return Math.abs(javaHashCode(persistenceId) % SLICE_COUNT);
}

/**
 * The entity type of a persistence id: its prefix before the first `-`, or the
 * whole id when it has none. Pipeline entities (`pipeline-<id>`) have the
 * entity type `pipeline`; the coordinator (`coordinator`) has `coordinator`.
 * A persistence id whose entity part itself contains `-` keeps it
 * (`pipeline-a-b` is of type `pipeline`).
 *
 * @example
 * ```ts
 * entityTypeOf('pipeline-orders'); // 'pipeline'
 * entityTypeOf('coordinator');     // 'coordinator'
 * ```
 */
export function entityTypeOf(persistenceId: string): string {
  const dash = persistenceId.indexOf('-');
  return dash < 0 ? persistenceId : persistenceId.slice(0, dash);
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

/**
 * Returns `range` when it is valid (integers, `0 <= min <= max <= 1023`), else throws a `RangeError` naming it.
 *
 * @example
 * ```ts
 * checkSliceRange({ min: 0, max: 511 });
 * ```
 */
export function checkSliceRange(range: SliceRange): SliceRange {
  if (!Number.isInteger(range.min) || !Number.isInteger(range.max) || range.min < 0 || range.max >= SLICE_COUNT || range.min > range.max) {
    throw new RangeError(`a slice range needs integers 0 <= min <= max <= ${SLICE_COUNT - 1}, got ${JSON.stringify(range)}`);
  }
  return range;
}
