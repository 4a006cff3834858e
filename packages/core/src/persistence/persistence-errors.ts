/**
 * Typed failures of the persistence SPI. Adapters (in-memory, Postgres, PGlite,
 * Cassandra) throw only these, wrapping driver errors as `cause`, so callers
 * decide on `tag` and `retriable` alone.
 */
import { DataflowError, isDataflowError } from '../errors/dataflow-error.js';

export type PersistenceErrorTag =
  | 'journal/concurrency-conflict'
  | 'journal/write-failed'
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
