/**
 * The root of DataFlow's error hierarchy.
 *
 * Every error a DataFlow package throws or reports carries a `tag` (checked by
 * guards instead of `instanceof`, so two copies of a package still agree), a
 * `retriable` flag that tells a caller whether trying again can help, and the
 * underlying `cause`.
 */

/** Options common to every DataFlow error. */
export interface DataflowErrorOptions {
  readonly retriable?: boolean;
  readonly cause?: unknown;
}

const TAG_PREFIX = 'dataflow/';

/**
 * Base class of all DataFlow errors.
 *
 * @example
 * ```ts
 * class WidgetMissing extends DataflowError<'widget/missing'> {
 *   constructor(readonly widgetId: string) {
 *     super('widget/missing', `Widget ${widgetId} does not exist`, { retriable: false });
 *   }
 * }
 * ```
 */
export abstract class DataflowError<Tag extends string = string> extends Error {
  /** Stable, namespaced identifier of the kind of error, e.g. `journal/concurrency-conflict`. */
  readonly tag: Tag;
  /** Whether the same operation may succeed if tried again. */
  readonly retriable: boolean;
  /** Marks the object as a DataFlow error across package copies. */
  readonly dataflowError = `${TAG_PREFIX}v1` as const;

  protected constructor(tag: Tag, message: string, options: DataflowErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.tag = tag;
    this.retriable = options.retriable ?? false;
    this.name = new.target.name;
  }
}

/** True when `value` is a DataFlow error (of any package copy), optionally with the given tag. */
export function isDataflowError<Tag extends string = string>(value: unknown, tag?: Tag): value is DataflowError<Tag> {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as { dataflowError?: unknown; tag?: unknown };
  if (v.dataflowError !== `${TAG_PREFIX}v1` || typeof v.tag !== 'string') return false;
  return tag === undefined || v.tag === tag;
}

/** Whether an unknown failure may succeed when retried: DataFlow errors say so; anything else is treated as permanent. */
export function isRetriable(error: unknown): boolean {
  return isDataflowError(error) && error.retriable;
}
