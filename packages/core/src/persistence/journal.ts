/**
 * The journal port: an append-only, per-persistence-id log of events.
 *
 * Implemented by the in-memory journal here and by the Postgres, PGlite and
 * Cassandra adapters in `@dataflow/persistence`; all of them pass the same
 * contract suite (`@dataflow/persistence/testing`).
 */

/** An event handed to the journal for appending. */
export interface NewEvent {
  /** The event itself; adapters serialize it (JSON by default). */
  readonly payload: unknown;
  /** The event's type name, e.g. `PipelineCreated`: with `schemaVersion`, the manifest. */
  readonly eventType: string;
  /** Version of the event's schema; readers upcast older versions. Defaults to 1. */
  readonly schemaVersion?: number;
  /** Tags for `eventsByTag` queries. */
  readonly tags?: readonly string[];
}

/** An event as stored in and replayed from the journal. */
export interface PersistedEvent {
  readonly persistenceId: string;
  /** 1-based, gap-free per persistence id. */
  readonly sequenceNr: number;
  readonly payload: unknown;
  readonly eventType: string;
  readonly schemaVersion: number;
  readonly tags: readonly string[];
  /** Wall-clock time of the write, epoch milliseconds. */
  readonly timestamp: number;
  /** Identifies the incarnation that wrote the event. */
  readonly writerId: string;
}

export interface AppendOptions {
  /**
   * The highest sequence number the writer believes is stored (0 for a new
   * persistence id). The events get `expectedSequenceNr + 1 ...`; when any of
   * those numbers is taken the append fails with `ConcurrencyConflictError`.
   */
  readonly expectedSequenceNr: number;
  /** Identifies the writing incarnation; stored with every event. */
  readonly writerId: string;
}

export interface AppendResult {
  /** Sequence number of the last appended event. */
  readonly lastSequenceNr: number;
}

export interface ReplayOptions {
  /** Stop after this many events. */
  readonly max?: number;
  readonly signal?: AbortSignal;
}

/**
 * The write side of the journal.
 *
 * @example
 * ```ts
 * const { lastSequenceNr } = await journal.append('counter-1',
 *   [{ eventType: 'Added', payload: { n: 1 }, tags: ['counter'] }],
 *   { expectedSequenceNr: 0, writerId: 'w1' });
 * for await (const e of journal.replay('counter-1', 1)) apply(e.sequenceNr, e.payload);
 * ```
 */
export interface Journal {
  /**
   * Appends `events` atomically: all of them are stored, or none is.
   * Fails with `ConcurrencyConflictError` when a sequence number is taken, with
   * `JournalWriteError` (see `retriable`) otherwise.
   */
  append(persistenceId: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult>;
  /** Events with `fromSequenceNr <= sequenceNr <= toSequenceNr`, in order. Deleted events are not returned. */
  replay(persistenceId: string, fromSequenceNr: number, toSequenceNr?: number, options?: ReplayOptions): AsyncIterable<PersistedEvent>;
  /** Highest stored sequence number, 0 when none; deletions do not lower it. */
  highestSequenceNr(persistenceId: string): Promise<number>;
  /** Deletes events up to and including `toSequenceNr`; the highest sequence number is kept. */
  deleteTo(persistenceId: string, toSequenceNr: number): Promise<void>;
  /** Releases connections; further calls fail. */
  close(): Promise<void>;
}
