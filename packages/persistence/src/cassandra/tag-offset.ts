/**
 * Offsets of the Cassandra `eventsByTag` stream: a time watermark plus the
 * ids delivered within the backtracking window (Pekko r2dbc's
 * `TimestampOffset`), bounded in size and made in O(1) per event.
 *
 * An offset `{ kind: 'timestamp', value, seen }` means: every tag row with a
 * timestamp before `value` has been delivered (or is later than the
 * configured clock-skew bound allows), and `seen` holds the sequence number
 * delivered last of every id that has a delivered row at or after `value`. A
 * resumed stream re-reads from `value` and drops what `seen` covers.
 *
 * `value` trails the newest delivered row by the backtracking window, so
 * `seen` holds only the ids active within that window, and at most
 * `maxSeen` of them: beyond that the oldest are dropped and `value` moves
 * past them (a resumed stream then re-reads less of the window).
 *
 * Copying `seen` for every event cost O(ids) per event (4 ms an event at
 * 10 000 ids). Here each offset shares an immutable base snapshot, rebuilt
 * after as many deliveries as it has entries (amortized O(1)), plus its
 * position in the log of deliveries since; `seen` is materialized when first
 * read (a read-only view: `JSON.stringify`, spreads and `Object.entries` see a
 * plain object; `structuredClone` does not take it, store offsets as JSON).
 */
import { JournalReadError, type Offset } from '@dataflow/core';

type TimestampOffset = Extract<Offset, { kind: 'timestamp' }>;

/** The last delivery of one id: sequence number and the newest row timestamp delivered for it. */
interface Delivered {
  readonly sequenceNr: number;
  readonly at: number;
}

type Entry = readonly [persistenceId: string, delivered: Delivered];

/** Smallest number of deliveries between two base snapshots. */
const MIN_GENERATION = 256;

export interface TagOffsetOptions {
  /** How far `value` trails the newest delivered row (the backtracking window). */
  readonly windowMs: number;
  /** Most ids in `seen`. */
  readonly maxSeen: number;
  /**
   * `value` never passes this: the time up to which every row was read when
   * it was surely readable (see `limit`).
   */
  readonly cap?: number;
}

export class TagOffsetTracker {
  /** Ids with a delivery at or after the current `value`, oldest delivery first (re-inserted on each delivery). */
  private readonly recent = new Map<string, Delivered>();
  private watermark = Number.NEGATIVE_INFINITY;
  /** `value` never goes below this: the resumed offset, or past the ids dropped for size. */
  private floor: number;
  private base: readonly Entry[] = [];
  private log: Entry[] = [];
  private cap: number;

  constructor(
    private readonly options: TagOffsetOptions,
    resumed?: TimestampOffset,
  ) {
    this.floor = resumed?.value ?? Number.NEGATIVE_INFINITY;
    this.cap = options.cap ?? Number.POSITIVE_INFINITY;
    if (resumed !== undefined) {
      for (const [persistenceId, sequenceNr] of seenEntries(resumed)) this.recent.set(persistenceId, { sequenceNr, at: resumed.value });
      this.base = [...this.recent];
    }
  }

  /** Where a resumed stream starts reading (epoch ms), or undefined from the beginning. */
  get start(): number | undefined {
    return Number.isFinite(this.floor) ? this.floor : undefined;
  }

  /** Moves the cap: every row timestamped before `cap` has been read while surely readable. */
  limit(cap: number): void {
    this.cap = cap;
  }

  /** Records a delivered event whose tag row is timestamped `at`, and returns the offset after it. */
  delivered(persistenceId: string, sequenceNr: number, at: number): Offset {
    const previous = this.recent.get(persistenceId);
    const entry: Delivered = { sequenceNr, at: previous === undefined ? at : Math.max(previous.at, at) };
    if (previous !== undefined) this.recent.delete(persistenceId);
    this.recent.set(persistenceId, entry);
    if (at > this.watermark) this.watermark = at;
    const value = this.evict();
    this.log.push([persistenceId, entry]);
    const { base, log } = this;
    const length = log.length;
    if (length >= Math.max(MIN_GENERATION, this.recent.size)) {
      this.base = [...this.recent];
      this.log = [];
    }
    const snapshot: Snapshot = { base, log, length, value, seen: undefined };
    return { kind: 'timestamp', value, seen: new Proxy(snapshot, LAZY_SEEN) as unknown as Readonly<Record<string, number>> };
  }

  /** Drops ids whose deliveries are all before `value`, and the oldest beyond `maxSeen`; returns `value`. */
  private evict(): number {
    const { windowMs, maxSeen } = this.options;
    let value = Math.max(this.floor, Math.min(this.watermark - windowMs, this.cap));
    for (const [persistenceId, delivered] of this.recent) {
      if (delivered.at >= value && this.recent.size <= maxSeen) break;
      if (delivered.at >= value) {
        // Too many ids within the window: the offset moves past the oldest delivery.
        this.floor = Math.max(this.floor, delivered.at + 1);
        value = Math.max(value, this.floor);
      }
      this.recent.delete(persistenceId);
    }
    return value;
  }
}

/** `seen` of a stored offset as entries, refusing what no stream made. */
function seenEntries(offset: TimestampOffset): Array<[string, number]> {
  if (!Number.isFinite(offset.value) || typeof offset.seen !== 'object' || offset.seen === null) {
    throw new JournalReadError('Invalid timestamp offset: expected a finite value and a seen object', { retriable: false });
  }
  const entries = Object.entries(offset.seen);
  for (const [, sequenceNr] of entries) {
    if (!Number.isSafeInteger(sequenceNr) || sequenceNr < 0) {
      throw new JournalReadError(`Invalid timestamp offset: seen holds ${String(sequenceNr)}`, { retriable: false });
    }
  }
  return entries;
}

/** What one offset's `seen` is made from, when first read. */
interface Snapshot {
  readonly base: readonly Entry[];
  readonly log: readonly Entry[];
  readonly length: number;
  readonly value: number;
  seen: Readonly<Record<string, number>> | undefined;
}

function seenOf(snapshot: Snapshot): Readonly<Record<string, number>> {
  return (snapshot.seen ??= materialize(snapshot.base, snapshot.log, snapshot.length, snapshot.value));
}

/**
 * `seen` as a read-only view that is built on first use: property reads,
 * `Object.keys`/`entries`, spreads and `JSON.stringify` see a plain object of
 * sequence numbers (a getter on each offset object would cost about 20 times
 * more to create). Writes are refused.
 */
const LAZY_SEEN: ProxyHandler<Snapshot> = {
  get: (snapshot, key) => (typeof key === 'string' && Object.hasOwn(seenOf(snapshot), key) ? seenOf(snapshot)[key] : undefined),
  has: (snapshot, key) => typeof key === 'string' && Object.hasOwn(seenOf(snapshot), key),
  ownKeys: (snapshot) => Object.keys(seenOf(snapshot)),
  getOwnPropertyDescriptor: (snapshot, key) => {
    const seen = seenOf(snapshot);
    if (typeof key !== 'string' || !Object.hasOwn(seen, key)) return undefined;
    return { value: seen[key], writable: false, enumerable: true, configurable: true };
  },
  getPrototypeOf: () => Object.prototype,
  set: () => false,
  defineProperty: () => false,
  deleteProperty: () => false,
  setPrototypeOf: () => false,
};

function materialize(base: readonly Entry[], log: readonly Entry[], length: number, value: number): Readonly<Record<string, number>> {
  const latest = new Map<string, Delivered>(base);
  for (let i = 0; i < length; i++) {
    const entry = log[i];
    if (entry !== undefined) latest.set(entry[0], entry[1]);
  }
  const seen: Array<[string, number]> = [];
  for (const [persistenceId, delivered] of latest) if (delivered.at >= value) seen.push([persistenceId, delivered.sequenceNr]);
  // fromEntries defines own properties: ids such as `__proto__` stay ordinary keys.
  return Object.fromEntries(seen);
}
