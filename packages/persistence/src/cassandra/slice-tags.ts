/**
 * The implicit slice tags of the Cassandra store (docs/adr/0010): each event
 * is also written to `tag_views` under `slices:<entityType>:<group>`, where
 * `group = slice / SLICE_GROUP_SIZE`, so `eventsBySlices` reads the tag
 * streams of the groups covering a range (with the tag cursor, gap filling
 * and bounded offsets of `eventsByTag`, ADR 0005) and keeps the rows whose
 * slice is in the range. `:` is refused in user tags, so the names never
 * collide; the store leaves implicit tags out of delivered events.
 */
import { checkSliceRange, entityTypeOf, JournalReadError, JournalWriteError, sliceForPersistenceId, SLICE_COUNT } from '@dataflow/core';

/** Slices per implicit tag: 16 groups of 64. Changing it needs the slice rows written again. */
export const SLICE_GROUP_SIZE = 64;

const PREFIX = 'slices:';

/** The implicit slice tag of a persistence id (`slices:pipeline:1` for an id of type `pipeline` in slices 64..127). */
export function sliceTagOf(persistenceId: string): string {
  return sliceTag(entityTypeOf(persistenceId), Math.floor(sliceForPersistenceId(persistenceId) / SLICE_GROUP_SIZE));
}

function sliceTag(entityType: string, group: number): string {
  return `${PREFIX}${entityType}:${group}`;
}

/** What `eventsBySlices` reads: the group tags covering `minSlice..maxSlice`, and which ids of them to keep. */
export interface SliceSelection {
  readonly tags: readonly string[];
  readonly keep: (persistenceId: string) => boolean;
}

/** The group tags of a slice range; a `JournalReadError` naming the range when it is not within 0..1023. */
export function sliceSelection(entityType: string, minSlice: number, maxSlice: number): SliceSelection {
  try {
    checkSliceRange({ min: minSlice, max: maxSlice });
  } catch (error) {
    throw new JournalReadError(`eventsBySlices: minSlice / maxSlice out of range: ${(error as Error).message}`, { retriable: false, cause: error });
  }
  const tags: string[] = [];
  for (let group = Math.floor(minSlice / SLICE_GROUP_SIZE); group <= Math.floor(maxSlice / SLICE_GROUP_SIZE); group++) {
    tags.push(sliceTag(entityType, group));
  }
  const whole = minSlice % SLICE_GROUP_SIZE === 0 && (maxSlice + 1) % SLICE_GROUP_SIZE === 0;
  // A range of whole groups keeps every row of its tags: no slice to compute per row.
  if (whole || (minSlice === 0 && maxSlice === SLICE_COUNT - 1)) return { tags, keep: () => true };
  return {
    tags,
    keep: (persistenceId) => {
      const slice = sliceForPersistenceId(persistenceId);
      return slice >= minSlice && slice <= maxSlice;
    },
  };
}

/** A user tag, refused when it contains `:` (reserved for the implicit slice tags). */
export function checkUserTag(persistenceId: string, tag: string): string {
  if (tag.includes(':')) {
    throw new JournalWriteError(persistenceId, `the tag "${tag}" contains ':', which the Cassandra store reserves for its implicit slice tags (slices:<entityType>:<group>)`, {
      retriable: false,
    });
  }
  return tag;
}

/** The tags of a stored row (a `set<text>`, so in sorted order) without the implicit slice tag. */
export function userTags(stored: readonly string[]): readonly string[] {
  return stored.some(isSliceTag) ? stored.filter((tag) => !isSliceTag(tag)) : stored;
}

function isSliceTag(tag: string): boolean {
  return tag.startsWith(PREFIX);
}
