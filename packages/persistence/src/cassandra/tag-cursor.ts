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

/** A row with a `timestamp` timeuuid column. */
type Stamped = Readonly<Record<string, unknown>>;

/**
 * Pages of rows from several sources, each in timeuuid order, merged into
 * one timeuuid order (ties go to the earlier source). What is merged goes out
 * before a source's next page is awaited.
 */
export async function* mergedPages<R extends Stamped>(sources: ReadonlyArray<AsyncIterable<R[]>>): AsyncIterable<R[]> {
  const iterators = sources.map((source) => source[Symbol.asyncIterator]());
  try {
    const heads = await Promise.all(iterators.map(async (iterator) => ({ iterator, page: await nextPage(iterator), at: 0 })));
    let open = heads.filter((head) => head.page !== undefined);
    let out: R[] = [];
    while (open.length > 0) {
      let min = open[0];
      for (const head of open) {
        if (min === undefined || compareStamps(row(head), row(min)) < 0) min = head;
      }
      if (min === undefined) break;
      out.push(row(min));
      min.at++;
      if (min.at >= (min.page?.length ?? 0)) {
        if (out.length > 0) yield out;
        out = [];
        min.page = await nextPage(min.iterator);
        min.at = 0;
        if (min.page === undefined) open = open.filter((head) => head !== min);
      }
    }
    if (out.length > 0) yield out;
  } finally {
    await Promise.all(iterators.map(async (iterator) => {
      await iterator.return?.();
    }));
  }
}

async function nextPage<R>(iterator: AsyncIterator<R[]>): Promise<R[] | undefined> {
  for (;;) {
    const result = await iterator.next();
    if (result.done === true) return undefined;
    if (result.value.length > 0) return result.value;
  }
}

function row<R>(head: { page: R[] | undefined; at: number }): R {
  const value = head.page?.[head.at];
  if (value === undefined) throw new RangeError('merged page read past its end');
  return value;
}

/** Orders version-1 UUIDs by their 60-bit time (high, middle, then low field), not by their byte order. */
function compareStamps(a: Stamped, b: Stamped): number {
  const x = (a['timestamp'] as types.TimeUuid).getBuffer();
  const y = (b['timestamp'] as types.TimeUuid).getBuffer();
  return (
    (x.readUInt16BE(6) & 0x0fff) - (y.readUInt16BE(6) & 0x0fff) ||
    x.readUInt16BE(4) - y.readUInt16BE(4) ||
    x.readUInt32BE(0) - y.readUInt32BE(0)
  );
}
