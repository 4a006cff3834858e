/**
 * Read positions of the Cassandra `eventsByTag` scans over `tag_views`, and
 * reading a paged query one page ahead.
 */
import { types } from 'cassandra-driver';
import { bucketOf } from './event-row.js';

/** A read position in a tag's rows: rows in `bucket` with a timestamp after `lower`, then later buckets. */
export interface Cursor {
  bucket: number;
  lower: types.TimeUuid;
  /** Epoch ms of `lower`. */
  lowerMs: number;
}

export const MIN_UUID = types.TimeUuid.min(new Date(0), 0);

/** A cursor before every row at or after `from` (epoch ms), or before every row. */
export function cursorAt(from: number | undefined, timeBucketMs: number): Cursor {
  if (from === undefined) return { bucket: Number.MIN_SAFE_INTEGER, lower: MIN_UUID, lowerMs: Number.NEGATIVE_INFINITY };
  return { bucket: bucketOf(from, timeBucketMs), lower: types.TimeUuid.min(new Date(from), 0), lowerMs: from };
}

/**
 * Reads one page ahead of the consumer: the next page is fetched while the
 * current one is delivered.
 */
export async function* prefetched<T>(source: AsyncIterable<T>): AsyncIterable<T> {
  const iterator = source[Symbol.asyncIterator]();
  let next = iterator.next();
  try {
    for (;;) {
      const result = await next;
      if (result.done === true) return;
      next = iterator.next();
      yield result.value;
    }
  } finally {
    // A consumer that stopped early: the page read ahead is not wanted, nor is its failure.
    await next.then(
      () => undefined,
      () => undefined,
    );
    await iterator.return?.();
  }
}
