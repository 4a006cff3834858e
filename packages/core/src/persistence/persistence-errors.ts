/**
 * Typed failures of the persistence SPI. Adapters (in-memory, Postgres, PGlite,
 * Cassandra) throw only these, wrapping driver errors as `cause`, so callers
 * decide on `tag` and `retriable` alone.
 */
import { DataflowError, isDataflowError } from '../errors/dataflow-error.js';

export type PersistenceErrorTag =
  | 'journal/concurrency-conflict'
  | 'journal/write-failed'
  | 'journal/write-outcome-unknown'
  | 'journal/writer-lease-held'
  | 'journal/read-failed'
  | 'journal/replay-gap'
  | 'snapshot/failed'
  | 'serialization/failed'
  | 'serialization/payload-too-large';

/** Base of every persistence failure. */
export abstract class PersistenceError<Tag extends PersistenceErrorTag = PersistenceErrorTag> extends DataflowError<Tag> {}

/**
 * The sequence number a writer wanted is already taken: another writer (or an
 * earlier incarnation of this one) appended first. Never retriable: the writer
 * must stop and recover instead of forking the history.
 */
export class ConcurrencyConflictError extends PersistenceError<'journal/concurrency-conflict'> {
  constructor(
    readonly persistenceId: string,
    /** The sequence number the writer expected to be the current highest. */
    readonly expectedSequenceNr: number,
    /** The highest sequence number found in the journal, when the adapter knows it. */
    readonly actualSequenceNr: number | undefined,
    options: { cause?: unknown } = {},
  ) {
    super(
      'journal/concurrency-conflict',
      `Concurrency conflict on ${persistenceId}: expected highest sequence number ${expectedSequenceNr}` +
        (actualSequenceNr === undefined ? ', but it is already taken' : `, found ${actualSequenceNr}`),
      { retriable: false, ...options },
    );
  }
}

/** An append failed; nothing of it was stored (appends are all-or-nothing). */
export class JournalWriteError extends PersistenceError<'journal/write-failed'> {
  constructor(
    readonly persistenceId: string,
    message: string,
    options: { retriable: boolean; cause?: unknown },
  ) {
    super('journal/write-failed', `Journal write for ${persistenceId} failed: ${message}`, options);
  }
}

/**
 * An append may or may not have been stored: the store timed out, or the
 * connection was lost after the write was sent (a commit whose answer never
 * came). Retriable, but only after re-reading the head: the writer must read
 * its highest sequence number before it writes again, and treat events found
 * there as its own.
 */
export class JournalWriteOutcomeUnknownError extends PersistenceError<'journal/write-outcome-unknown'> {
  constructor(
    readonly persistenceId: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super('journal/write-outcome-unknown', `Journal write for ${persistenceId} may or may not have been stored: ${message}`, {
      retriable: true,
      ...options,
    });
  }
}

/**
 * Another writer holds the single-writer lease of a persistence id (for
 * example a crashed process whose lease has not expired yet). Retriable: the
 * lease can be taken once it lapses; nothing was written.
 */
export class WriterLeaseHeldError extends PersistenceError<'journal/writer-lease-held'> {
  constructor(
    readonly persistenceId: string,
    /** Who holds the lease, when the store knows it. */
    readonly holder: string | undefined,
    /** How long until the lease lapses at the latest, when the store knows it. */
    readonly retryAfterMs: number | undefined,
    options: { cause?: unknown } = {},
  ) {
    super(
      'journal/writer-lease-held',
      `The writer lease of ${persistenceId} is held by ${holder ?? 'another writer'}` +
        (retryAfterMs === undefined ? '' : `; it lapses within ${retryAfterMs} ms`),
      { retriable: true, ...options },
    );
  }
}

/** A read (replay, query, highest sequence number) failed. */
export class JournalReadError extends PersistenceError<'journal/read-failed'> {
  constructor(message: string, options: { retriable: boolean; cause?: unknown }) {
    super('journal/read-failed', message, options);
  }
}

/**
 * A query saw a hole in a persistence id's sequence numbers that did not fill
 * within the allowed delay. Reported loudly instead of skipping events.
 */
export class ReplayGapError extends PersistenceError<'journal/replay-gap'> {
  constructor(
    readonly persistenceId: string,
    readonly expectedSequenceNr: number,
    readonly foundSequenceNr: number,
    options: { cause?: unknown } = {},
  ) {
    super(
      'journal/replay-gap',
      `Missing events for ${persistenceId}: expected sequence number ${expectedSequenceNr}, found ${foundSequenceNr}`,
      { retriable: true, ...options },
    );
  }
}

/** Saving, loading or deleting a snapshot failed. */
export class SnapshotError extends PersistenceError<'snapshot/failed'> {
  constructor(
    readonly persistenceId: string,
    message: string,
    options: { retriable: boolean; cause?: unknown },
  ) {
    super('snapshot/failed', `Snapshot operation for ${persistenceId} failed: ${message}`, options);
  }
}

/** An event or snapshot could not be serialized or deserialized. */
export class SerializationError extends PersistenceError<'serialization/failed'> {
  constructor(
    readonly manifest: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super('serialization/failed', `Cannot (de)serialize ${manifest}: ${message}`, { retriable: false, ...options });
  }
}

/** A serialized payload is larger than the configured limit. */
export class PayloadTooLargeError extends PersistenceError<'serialization/payload-too-large'> {
  constructor(
    readonly manifest: string,
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super(
      'serialization/payload-too-large',
      `Payload of ${manifest} is ${sizeBytes} bytes, over the limit of ${limitBytes} bytes`,
      { retriable: false },
    );
  }
}

/** True when `error` is a concurrency conflict (from any copy of this package). */
export function isConcurrencyConflict(error: unknown): error is ConcurrencyConflictError {
  return isDataflowError(error, 'journal/concurrency-conflict');
}

/** True when an append failed without knowing whether it was stored (re-read the head before writing again). */
export function isWriteOutcomeUnknown(error: unknown): error is JournalWriteOutcomeUnknownError {
  return isDataflowError(error, 'journal/write-outcome-unknown');
}

/** True when another writer holds the persistence id's lease (retriable after it lapses). */
export function isWriterLeaseHeld(error: unknown): error is WriterLeaseHeldError {
  return isDataflowError(error, 'journal/writer-lease-held');
}
