/**
 * A read model's split: the keys its instances store offsets under. Unsplit
 * it is one instance (key `default`, every slice); in a cluster it is K slice
 * ranges (keys `slices-<min>-<max>`). Each key's offset says how far the rows
 * of its slices are built.
 *
 * When the split changes (a single node joins a cluster, the cluster's range
 * count changes, a cluster goes back to one node), the new keys have no
 * offset while the rows are already built up to the old keys' offsets.
 * Starting the new keys from the beginning would apply every event again
 * (`pipeline_metrics_hourly` adds, so it would count twice). So before an
 * instance of a split runs, `adoptSplit` looks at the other split's keys:
 *
 * - none with an offset: nothing to adopt, the split starts where its own
 *   keys are (a first start);
 * - all at one offset, together covering every slice (always so after a clean
 *   stop of a single node, whose one key covers everything): that offset is
 *   where every slice is built, so each key of the new split takes it (and
 *   the paused flag if any old key was paused), and the old keys are deleted,
 *   in one transaction under row locks (nodes starting at once adopt once);
 * - at different offsets on one ordering (ranges read their own slices, so
 *   their offsets differ even when all are caught up): with `quiet` (no event
 *   of the projection in a key's slices between its offset and the furthest
 *   one), every slice is built up to the furthest offset, which is adopted
 *   as above; the furthest offset was saved below the journal's safe
 *   ordering, so no event below it can still appear;
 * - otherwise (a range behind in its own slices, offsets that do not
 *   compare, or some slices never built): no single offset is right for a
 *   new range, and nothing is
 *   changed: `ProjectionSplitChangedError` asks for a rebuild, which builds
 *   the read model from the journal under the new split's keys
 *   (`forgetOtherSplits` drops the old keys first).
 *
 * Keys that are neither `default` nor a slice range (a benchmark's, a
 * rebuild's shadow) are not part of any split and are left alone.
 */
import { DataflowError, type Offset } from '@dataflow/core';
import { quoteSchema, type SqlExecutor, type SqlQueryable } from '@dataflow/persistence';
import { SLICE_COUNT, sliceKey, type SliceRange } from '../slices/slices.js';

/** The key of a read model run as one instance over every slice. */
export const UNSPLIT_KEY = 'default';

/** One instance of a split: its key and the slices it covers. */
export interface SplitKey {
  readonly key: string;
  readonly range: SliceRange;
}

/** The keys of a split: one `default` key, or the keys of the ranges. */
export function splitKeys(ranges: readonly SliceRange[] | undefined): SplitKey[] {
  if (ranges === undefined) return [{ key: UNSPLIT_KEY, range: { min: 0, max: SLICE_COUNT - 1 } }];
  return ranges.map((range) => ({ key: sliceKey(range), range }));
}

/** The slices a stored key covers, or undefined for a key that belongs to no split. */
export function rangeOfKey(key: string): SliceRange | undefined {
  if (key === UNSPLIT_KEY) return { min: 0, max: SLICE_COUNT - 1 };
  const match = /^slices-(\d{1,4})-(\d{1,4})$/.exec(key);
  if (match === null) return undefined;
  const min = Number(match[1]);
  const max = Number(match[2]);
  return min <= max && max < SLICE_COUNT ? { min, max } : undefined;
}

/** What `adoptSplit` did. */
export type SplitAdoption =
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'adopted'; readonly from: readonly string[]; readonly offset: Offset; readonly paused: boolean };

/**
 * The rows of the read model were built under another split whose keys stand
 * at different offsets, or do not cover every slice: no offset is right for
 * the new keys. Not retriable by waiting: rebuild the read model.
 */
export class ProjectionSplitChangedError extends DataflowError<'projection/split-changed'> {
  constructor(
    readonly projection: string,
    readonly keys: readonly { readonly key: string; readonly offset: unknown }[],
    reason: string,
  ) {
    super(
      'projection/split-changed',
      `projection ${projection} was built under another split (${keys.map((k) => `${k.key} at ${JSON.stringify(k.offset)}`).join(', ')}): ${reason}; rebuild it (POST /api/v1/projections/${projection}/rebuild or dataflow projections rebuild ${projection}) to run it under the new one`,
      { retriable: false },
    );
  }
}

interface KeyRow {
  projection_key: string;
  offset: Offset | null;
  paused: boolean;
}

/**
 * Makes the stored offsets of projection `name` those of the split `keys`:
 * see the module comment.
 *
 * @example
 * ```ts
 * const adoption = await adoptSplit(executor, 'dataflow', 'pipeline_metrics_hourly', splitKeys(sliceRanges(4)));
 * if (adoption.kind === 'adopted') logger.info(`took offset ${JSON.stringify(adoption.offset)} from ${adoption.from.join(', ')}`);
 * ```
 */
export async function adoptSplit(
  executor: SqlExecutor,
  schema: string,
  name: string,
  keys: readonly SplitKey[],
  /** Whether no event of the projection in `range` lies after ordering `after` up to `upTo` (asked on `on`, the adoption's transaction: the journal's database is the same). */
  quiet?: (range: SliceRange, after: number, upTo: number, on: SqlQueryable) => Promise<boolean>,
): Promise<SplitAdoption> {
  const table = `${quoteSchema(schema)}.projection_offset`;
  const own = new Set(keys.map((k) => k.key));
  return executor.transaction(async (tx) => {
    const rows = await tx.query<KeyRow>(`SELECT projection_key, "offset", paused FROM ${table} WHERE projection_name = $1 ORDER BY projection_key FOR UPDATE`, [name]);
    const others = rows.filter((r) => !own.has(r.projection_key) && rangeOfKey(r.projection_key) !== undefined);
    const built = others.filter((r) => r.offset !== null);
    if (built.length === 0) {
      await deleteKeys(tx, table, name, others.map((r) => r.projection_key)); // flags of keys that never ran
      return { kind: 'unchanged' };
    }
    const ownBuilt = rows.filter((r) => own.has(r.projection_key) && r.offset !== null);
    const all = [...built, ...ownBuilt];
    const listed = all.map((r) => ({ key: r.projection_key, offset: r.offset }));
    const uncovered = firstUncovered(all.map((r) => rangeOfKey(r.projection_key) as SliceRange));
    if (uncovered !== undefined) throw new ProjectionSplitChangedError(name, listed, `slice ${uncovered} is covered by no key with an offset`);
    let offset = built[0]?.offset as Offset;
    if (new Set(all.map((r) => canonical(r.offset))).size > 1) {
      const orderings = all.map((r) => orderingOf(r.offset));
      if (quiet === undefined || orderings.some((o) => o === undefined)) throw new ProjectionSplitChangedError(name, listed, 'its keys stand at different offsets');
      const furthest = Math.max(...(orderings as number[]));
      for (const [i, row] of all.entries()) {
        const at = orderings[i] as number;
        if (at < furthest && !(await quiet(rangeOfKey(row.projection_key) as SliceRange, at, furthest, tx))) {
          throw new ProjectionSplitChangedError(name, listed, `${row.projection_key} is behind in its own slices`);
        }
      }
      offset = all[orderings.indexOf(furthest)]?.offset as Offset;
    }
    const paused = others.some((r) => r.paused);
    for (const { key } of keys) {
      await tx.query(
        `INSERT INTO ${table} AS p (projection_name, projection_key, "offset", paused) VALUES ($1, $2, $3::jsonb, $4)
         ON CONFLICT (projection_name, projection_key) DO UPDATE SET "offset" = EXCLUDED."offset", paused = p.paused OR EXCLUDED.paused, updated_at = now()`,
        [name, key, JSON.stringify(offset), paused],
      );
    }
    await deleteKeys(tx, table, name, others.map((r) => r.projection_key));
    return { kind: 'adopted', from: built.map((r) => r.projection_key), offset, paused };
  });
}

/**
 * Drops the keys of every other split of projection `name` (before a rebuild
 * builds the read model under `keys`).
 */
export async function forgetOtherSplits(executor: SqlExecutor, schema: string, name: string, keys: readonly SplitKey[]): Promise<readonly string[]> {
  const table = `${quoteSchema(schema)}.projection_offset`;
  const own = new Set(keys.map((k) => k.key));
  return executor.transaction(async (tx) => {
    const rows = await tx.query<{ projection_key: string }>(`SELECT projection_key FROM ${table} WHERE projection_name = $1 FOR UPDATE`, [name]);
    const others = rows.map((r) => r.projection_key).filter((key) => !own.has(key) && rangeOfKey(key) !== undefined);
    await deleteKeys(tx, table, name, others);
    return others;
  });
}

async function deleteKeys(tx: SqlQueryable, table: string, name: string, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await tx.query(`DELETE FROM ${table} WHERE projection_name = $1 AND projection_key = ANY ($2::text[])`, [name, keys]);
}

/** Offsets compared by value (key order of stored JSON is not significant). */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The journal ordering of a sequence offset (the SQL journals'), else undefined. */
function orderingOf(offset: Offset | null): number | undefined {
  const candidate = offset as { kind?: unknown; value?: unknown } | null;
  return candidate?.kind === 'sequence' && typeof candidate.value === 'number' ? candidate.value : undefined;
}

/** The first slice none of `ranges` covers, or undefined. */
function firstUncovered(ranges: readonly SliceRange[]): number | undefined {
  const sorted = [...ranges].sort((a, b) => a.min - b.min);
  let next = 0;
  for (const range of sorted) {
    if (range.min > next) return next;
    next = Math.max(next, range.max + 1);
  }
  return next < SLICE_COUNT ? next : undefined;
}
