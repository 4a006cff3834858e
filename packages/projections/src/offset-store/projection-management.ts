/**
 * Management of projections (Pekko Projection's `ProjectionManagement`):
 * read, skip ahead or clear a projection's offset, pause and resume it, and
 * its status: where it is, how far behind the journal (in events and in
 * seconds) and its last error.
 *
 * The lag is computed from the journal's tables when the journal lives in
 * the same Postgres / PGlite database (`journalSchema`) and the offset is a
 * global ordering; a time-based offset (Cassandra) has no cheap count, so
 * its lag is reported as unknown with the reason.
 */
import type { Offset, SliceRange } from '@dataflow/core';
import { quoteSchema } from '@dataflow/persistence';
import { z } from 'zod';
import type { ProjectionId, ProjectionOffsetRow, ProjectionOffsetStore } from './projection-offset-store.js';
import { InvalidProjectionInputError, fieldErrorsOf } from './projection-management-errors.js';

/** How far a projection is behind its tag in the journal. */
export type ProjectionLag =
  | {
      readonly kind: 'known';
      /** Events carrying the tag after the stored offset. */
      readonly events: number;
      /** Age of the oldest event not yet applied, seconds (0 when caught up). */
      readonly seconds: number;
    }
  | { readonly kind: 'unknown'; readonly reason: string };

/** What `status` answers for one projection instance. */
export interface ProjectionStatus extends ProjectionOffsetRow {
  readonly id: ProjectionId;
  readonly tag: string;
  readonly lag: ProjectionLag;
}

export interface ProjectionManagementOptions {
  /** Schema of the journal's tables (`event_journal`, `event_tag`) in the same database; default the offset store's schema. */
  readonly journalSchema?: string;
  /** Epoch milliseconds, for the lag in seconds; default `Date.now`. */
  readonly now?: () => number;
}

const idSchema = z.object({
  name: z.string().min(1, 'a projection needs a name'),
  key: z.string().min(1, 'a projection key cannot be empty'),
});

const offsetSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('none') }),
  z.object({ kind: z.literal('sequence'), value: z.number().int().nonnegative() }),
  z.object({ kind: z.literal('timestamp'), value: z.number().int().nonnegative(), seen: z.record(z.string(), z.number().int().positive()) }),
]);

const sliceRangeSchema = z
  .object({ min: z.number().int().min(0).max(1023), max: z.number().int().min(0).max(1023) })
  .refine((r) => r.min <= r.max, { message: 'min must not exceed max', path: ['max'] });

function parse<T>(schema: z.ZodType<T>, what: string, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new InvalidProjectionInputError(what, fieldErrorsOf(result.error, what));
  return result.data;
}

/**
 * Operations on stored projections.
 *
 * @example
 * ```ts
 * const management = new ProjectionManagement(store);
 * await management.pause(id);
 * const status = await management.status(id, 'pipeline-events');
 * if (status.lag.kind === 'known') report(status.lag.events, status.lag.seconds);
 * await management.resume(id);
 * ```
 */
export class ProjectionManagement {
  readonly #journal: { readonly tags: string; readonly events: string };
  readonly #now: () => number;

  constructor(
    readonly store: ProjectionOffsetStore,
    options: ProjectionManagementOptions = {},
  ) {
    const schema = quoteSchema(options.journalSchema ?? store.schema);
    this.#journal = { tags: `${schema}.event_tag`, events: `${schema}.event_journal` };
    this.#now = options.now ?? Date.now;
  }

  /** The stored offset; undefined when the projection starts from the beginning. */
  async getOffset(id: ProjectionId): Promise<Offset | undefined> {
    return (await this.store.get(parse(idSchema, 'id', id))).offset;
  }

  /** Skips ahead (or back): the projection's next run starts after `offset`. A running projection's next save finds the offset moved: that run ends and the next one starts from here. */
  async setOffset(id: ProjectionId, offset: Offset): Promise<void> {
    await this.store.setOffset(parse(idSchema, 'id', id), parse(offsetSchema, 'offset', offset));
  }

  /** Forgets the offset and counters: the next run rebuilds from the start of the journal. */
  async clearOffset(id: ProjectionId): Promise<void> {
    await this.store.clearOffset(parse(idSchema, 'id', id));
  }

  /** Pauses the projection: a running one stops at its next check, a new run stops at once, until `resume`. */
  async pause(id: ProjectionId): Promise<void> {
    await this.store.setPaused(parse(idSchema, 'id', id), true);
  }

  /** Lifts a pause; a projection actor that stopped for it needs its `start` message. */
  async resume(id: ProjectionId): Promise<void> {
    await this.store.setPaused(parse(idSchema, 'id', id), false);
  }

  async isPaused(id: ProjectionId): Promise<boolean> {
    return (await this.store.get(parse(idSchema, 'id', id))).paused;
  }

  /**
   * Offset, counters, paused flag, last error and the lag behind `tag`; for an
   * instance over a slice range, `slices` counts only the events of its slices.
   */
  async status(id: ProjectionId, tag: string, slices?: SliceRange): Promise<ProjectionStatus> {
    const checked = parse(idSchema, 'id', id);
    const checkedTag = parse(z.string().min(1, 'a tag cannot be empty'), 'tag', tag);
    const checkedSlices = slices === undefined ? undefined : parse(sliceRangeSchema, 'slices', slices);
    const row = await this.store.get(checked);
    return { ...row, id: checked, tag: checkedTag, lag: await this.#lag(checkedTag, row.offset, checkedSlices) };
  }

  async #lag(tag: string, offset: Offset | undefined, slices: SliceRange | undefined): Promise<ProjectionLag> {
    if (offset !== undefined && offset.kind === 'timestamp') {
      return { kind: 'unknown', reason: 'the offset is time-based (Cassandra): the journal cannot count the events after it' };
    }
    const after = offset === undefined || offset.kind === 'none' ? 0 : offset.value;
    const [row] = await this.store.executor.query<{ events: string | number; oldest: string | number | null }>(
      `SELECT count(*) AS events, min(j.written_at) AS oldest
         FROM ${this.#journal.tags} t JOIN ${this.#journal.events} j ON j.ordering = t.ordering
        WHERE t.tag = $1 AND t.ordering > $2 AND NOT j.deleted${slices === undefined ? '' : ' AND j.slice BETWEEN $3 AND $4'}`,
      slices === undefined ? [tag, after] : [tag, after, slices.min, slices.max],
    );
    const events = Number(row?.events ?? 0);
    const oldest = row?.oldest === null || row?.oldest === undefined ? undefined : Number(row.oldest);
    const seconds = oldest === undefined ? 0 : Math.max(0, this.#now() - oldest) / 1000;
    return { kind: 'known', events, seconds };
  }
}
