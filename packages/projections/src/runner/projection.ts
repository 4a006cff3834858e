/**
 * Projection definitions, named by their delivery guarantee as in Pekko
 * Projection:
 *
 * - `exactlyOnce`: each event's handler writes and the offset after it commit
 *   in one SQL transaction, so a crash never applies an event twice;
 * - `groupedWithin`: up to `size` events (or what arrived within `withinMs`)
 *   are handled in one transaction with the offset: exactly once, fewer
 *   commits;
 * - `atLeastOnce`: the handler writes outside the offset's transaction and
 *   the offset is saved every `saveEvery` events or `saveAfterMs`; after a
 *   crash the events since the last save are handled again, so the handler
 *   must be idempotent.
 *
 * A handler failure is handled by the projection's recovery strategy:
 * `fail` (the default: the runner fails and its supervisor restarts it with
 * backoff from the stored offset), `skip`, `retryAndFail(n, delayMs)`,
 * `retryAndSkip(n, delayMs)`.
 */
import type { EventEnvelope } from '@dataflow/core';
import type { SqlQueryable } from '@dataflow/persistence';
import { z } from 'zod';
import { fieldErrorsOf, InvalidProjectionInputError } from '../offset-store/projection-management-errors.js';
import type { ProjectionId } from '../offset-store/projection-offset-store.js';
import { checkSliceRange, sliceKey, type SliceRange } from '../slices/slices.js';

/** Parses `value` or fails with `InvalidProjectionInputError` naming each field. */
function check<T>(schema: z.ZodType<T>, input: string, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new InvalidProjectionInputError(input, fieldErrorsOf(result.error, input));
  return result.data;
}

/** What to do when a handler fails. */
export type HandlerRecoveryStrategy =
  | { readonly type: 'fail' }
  | { readonly type: 'skip' }
  | { readonly type: 'retry-and-fail'; readonly retries: number; readonly delayMs: number }
  | { readonly type: 'retry-and-skip'; readonly retries: number; readonly delayMs: number };

const retrySchema = z.object({
  retries: z.number().int('must be a positive integer').min(1, 'must be a positive integer'),
  delayMs: z.number({ error: 'must be a non-negative number' }).min(0, 'must be a non-negative number'),
});

function checkRetries(retries: number, delayMs: number): void {
  check(retrySchema, 'recovery', { retries, delayMs });
}

/** The recovery strategies (Pekko's `HandlerRecoveryStrategy`). */
export const HandlerRecoveryStrategy = {
  fail: { type: 'fail' } as HandlerRecoveryStrategy,
  skip: { type: 'skip' } as HandlerRecoveryStrategy,
  retryAndFail(retries: number, delayMs: number): HandlerRecoveryStrategy {
    checkRetries(retries, delayMs);
    return { type: 'retry-and-fail', retries, delayMs };
  },
  retryAndSkip(retries: number, delayMs: number): HandlerRecoveryStrategy {
    checkRetries(retries, delayMs);
    return { type: 'retry-and-skip', retries, delayMs };
  },
} as const;

/** Handles one event; `db` is the transaction (exactly-once) or the database (at-least-once). */
export type EventHandler = (envelope: EventEnvelope, db: SqlQueryable) => Promise<void>;

/** Handles a group of events in one transaction. */
export type GroupHandler = (envelopes: readonly EventEnvelope[], tx: SqlQueryable) => Promise<void>;

export type ProjectionGuarantee =
  | { readonly kind: 'exactly-once' }
  | { readonly kind: 'grouped-within'; readonly size: number; readonly withinMs: number }
  | { readonly kind: 'at-least-once'; readonly saveEvery: number; readonly saveAfterMs: number };

/** A projection: which events, what to do with them, how. */
export interface Projection {
  readonly id: ProjectionId;
  /** The journal tag whose events the projection reads (`eventsByTag`). */
  readonly tag: string;
  readonly guarantee: ProjectionGuarantee;
  /** Per event (exactly-once, at-least-once) or per group (grouped-within). */
  readonly handler: EventHandler | GroupHandler;
  readonly recovery: HandlerRecoveryStrategy;
  /** Only events of persistence ids in this slice range. */
  readonly slices?: SliceRange;
  /**
   * The entity type (persistence id prefix before the first `-`) of the ids the
   * projection reads. With `slices`, on a store that offers `eventsBySlices`,
   * the projection reads only its slices of that entity type (and keeps the
   * events carrying `tag`) instead of reading the whole tag and filtering.
   */
  readonly entityType?: string;
  /**
   * Catch-up in SQL: on a Postgres or PGlite journal in the read model's own
   * database, a projection far behind reads a whole range of events with
   * set-based statements (several parts of the range at once, each on its
   * own connection), then writes what they found in the transaction that
   * saves its offset (exactly once, as the handler would), then continues
   * event by event. It must give the same rows as the handler.
   */
  readonly bulk?: BulkCatchUp;
}

/** The journal's table as the bulk statement reads it, and the range to apply. */
export interface BulkRange {
  /** The quoted `event_journal` table of the journal's schema. */
  readonly journalTable: string;
  /** Orderings after `after`, up to and including `upTo`. */
  readonly after: number;
  readonly upTo: number;
  readonly tag: string;
  readonly slices?: SliceRange;
}

/**
 * Thrown by a bulk statement that cannot read a range (events it cannot
 * decode in SQL): the transaction rolls back and the projection reads event
 * by event from where the bulk catch-up got to.
 */
export class BulkNotApplicableError extends Error {
  override readonly name = 'BulkNotApplicableError';
}

/** What reading one part of a range found: the value to write, and the events it covered as the handler path counts them. */
export interface BulkPart<T> {
  /** Events carrying the tag in the part (counted towards the offset's `eventsApplied`). */
  readonly events: number;
  /** The newest of them, epoch ms (undefined: none). */
  readonly lastEventAt: number | undefined;
  readonly value: T;
}

/**
 * A catch-up in SQL, in two steps (map, then reduce and write):
 *
 * - `read` aggregates one part of a range, read-only. The runner reads the
 *   parts of a range at once, each in its own transaction on its own
 *   connection (the range's events are all committed: it ends at the
 *   journal's safe ordering), so a catch-up uses more than one core of the
 *   database. It throws `BulkNotApplicableError` for a part it cannot read.
 * - `write` combines the parts' values and writes them, in the transaction
 *   that then saves the range's offset: the range is applied exactly once.
 */
export interface BulkCatchUp<T = unknown> {
  read(tx: SqlQueryable, range: BulkRange): Promise<BulkPart<T>>;
  write(tx: SqlQueryable, parts: readonly T[]): Promise<void>;
}

interface Common {
  readonly name: string;
  /** Default `default`. */
  readonly key?: string;
  readonly tag: string;
  readonly recovery?: HandlerRecoveryStrategy;
  /** Only the events of persistence ids in these slices (see `sliceRanges`); the key defaults to `slices-<min>-<max>`. */
  readonly slices?: SliceRange;
  /** The entity type of the ids read (e.g. `pipeline`): lets a sliced projection read by `eventsBySlices` (see `Projection.entityType`). */
  readonly entityType?: string;
}

const commonSchema = z.object({
  name: z.string().min(1, 'a projection needs a name'),
  key: z.string().min(1, 'a projection key cannot be empty').optional(),
  tag: z.string().min(1, 'a projection needs a tag'),
  handler: z.custom<unknown>((value) => typeof value === 'function', 'must be a function'),
});

function id(options: Common): ProjectionId {
  const checked = check(commonSchema, 'projection', options);
  return { name: checked.name, key: checked.key ?? (options.slices === undefined ? 'default' : sliceKey(checkSliceRange(options.slices))) };
}

/** The slices part of a projection (none: every event). */
function slicesOf(options: Common): { readonly slices?: SliceRange; readonly entityType?: string } {
  const entityType = options.entityType === undefined ? {} : { entityType: check(z.object({ entityType: z.string().min(1, 'an entity type cannot be empty').regex(/^[^-]*$/, 'an entity type cannot contain "-"') }), 'projection', { entityType: options.entityType }).entityType };
  return options.slices === undefined ? entityType : { slices: checkSliceRange(options.slices), ...entityType };
}

const positiveInteger = z.number().int('must be a positive integer').min(1, 'must be a positive integer');

function positive(name: string, value: number): number {
  return check(z.object({ [name]: positiveInteger }), 'projection', { [name]: value })[name] as number;
}

/**
 * A projection whose handler's writes and offset commit together, per event.
 *
 * @example
 * ```ts
 * const p = exactlyOnce({ name: 'orders-by-day', tag: 'order-events', handler: async (env, tx) => { await tx.query('...'); } });
 * ```
 */
export function exactlyOnce(options: Common & { readonly handler: EventHandler }): Projection {
  return { id: id(options), tag: options.tag, guarantee: { kind: 'exactly-once' }, handler: options.handler, recovery: options.recovery ?? HandlerRecoveryStrategy.fail, ...slicesOf(options) };
}

/**
 * A projection handling groups of up to `size` events (or what arrived within `withinMs`) in one transaction with the offset.
 *
 * @example
 * ```ts
 * const p = groupedWithin({ name: 'metrics', tag: 'batch-events', size: 500, withinMs: 200, handler: async (envs, tx) => { ... } });
 * ```
 */
export function groupedWithin(options: Common & { readonly handler: GroupHandler; readonly size?: number; readonly withinMs?: number; readonly bulk?: BulkCatchUp }): Projection {
  return {
    ...(options.bulk === undefined ? {} : { bulk: options.bulk }),
    id: id(options),
    tag: options.tag,
    guarantee: { kind: 'grouped-within', size: positive('size', options.size ?? 500), withinMs: positive('withinMs', options.withinMs ?? 200) },
    handler: options.handler,
    recovery: options.recovery ?? HandlerRecoveryStrategy.fail,
    ...slicesOf(options),
  };
}

/**
 * A projection whose offset is saved every `saveEvery` events or `saveAfterMs`; the handler must be idempotent.
 *
 * @example
 * ```ts
 * const p = atLeastOnce({ name: 'search-index', tag: 'all-events', saveEvery: 100, handler: async (env, db) => { ...upsert... } });
 * ```
 */
export function atLeastOnce(options: Common & { readonly handler: EventHandler; readonly saveEvery?: number; readonly saveAfterMs?: number }): Projection {
  return {
    id: id(options),
    tag: options.tag,
    guarantee: { kind: 'at-least-once', saveEvery: positive('saveEvery', options.saveEvery ?? 100), saveAfterMs: positive('saveAfterMs', options.saveAfterMs ?? 1000) },
    handler: options.handler,
    recovery: options.recovery ?? HandlerRecoveryStrategy.fail,
    ...slicesOf(options),
  };
}
