/**
 * Group commit for the Postgres journal: appends that arrive while a write is
 * in flight are written together by the next call of the schema's
 * `append_events` function (sql/0001-journal.sql): one statement, one round
 * trip and one WAL flush. Each append still succeeds or fails on its own: the
 * function decides conflicts per append (under a lock per persistence id). A
 * group whose connection was lost after it was sent fails with
 * `JournalWriteOutcomeUnknownError`: it may have been committed.
 */
import { createHash } from 'node:crypto';
import { ConcurrencyConflictError, JournalWriteError, JournalWriteOutcomeUnknownError, type AppendResult } from '@dataflow/core';
import { errorCode, isOutcomeUnknownDbError, isRetriableDbError, messageOf, UNDEFINED_FUNCTION, UNIQUE_VIOLATION } from './postgres-errors.js';
import { POSTGRES_MIGRATE_COMMAND } from './postgres-schema.js';
import type { PostgresStore } from './postgres-store.js';

/** One event, serialized and ready to insert. */
export interface SerializedEvent {
  readonly eventType: string;
  readonly schemaVersion: number;
  readonly serializerId: string;
  readonly bytes: Uint8Array;
  /** Without duplicates. */
  readonly tags: readonly string[];
}

/** One append, serialized and ready to insert. */
export interface PendingAppend {
  readonly persistenceId: string;
  readonly expectedSequenceNr: number;
  readonly writerId: string;
  /** Epoch milliseconds, the same for all its events. */
  readonly writtenAt: number;
  readonly events: readonly SerializedEvent[];
}

interface Queued extends PendingAppend {
  resolve(result: AppendResult): void;
  reject(error: Error): void;
}

/** A refused append of a group: its 1-based index and the highest sequence number stored. */
interface ConflictRow {
  readonly append_index: number;
  readonly highest_sequence_nr: string | number;
}

export class PostgresGroupWriter {
  private queue: Queued[] = [];
  private inFlight: Promise<void> | undefined;
  private readonly appendSql: string;
  private readonly statementName: string;

  constructor(
    private readonly store: PostgresStore,
    /** Most events one group takes from the queue (a larger single append still goes alone). */
    private readonly maxEventsPerGroup = 2000,
  ) {
    this.appendSql = `SELECT append_index, highest_sequence_nr FROM ${store.appendFunction}($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`;
    // pg prepares a named statement once per connection; the name (at most 63 bytes) stays tied to this text.
    this.statementName = `dataflow_append_${createHash('sha256').update(this.appendSql).digest('hex').slice(0, 32)}`;
  }

  submit(append: PendingAppend): Promise<AppendResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ ...append, resolve, reject });
      this.drain();
    });
  }

  /** Resolves when every submitted append has been written or failed. */
  async drained(): Promise<void> {
    while (this.inFlight !== undefined) await this.inFlight;
  }

  private drain(): void {
    if (this.inFlight !== undefined || this.queue.length === 0) return;
    const group = this.takeGroup();
    this.inFlight = this.writeGroup(group).finally(() => {
      this.inFlight = undefined;
      this.drain();
    });
  }

  private takeGroup(): Queued[] {
    let events = 0;
    let count = 0;
    for (const append of this.queue) {
      if (count > 0 && events + append.events.length > this.maxEventsPerGroup) break;
      events += append.events.length;
      count++;
    }
    return this.queue.splice(0, count);
  }

  /** Writes a group; never rejects: every append's own promise settles. */
  private async writeGroup(group: readonly Queued[]): Promise<void> {
    let conflicts: ConflictRow[];
    try {
      // Outside an explicit transaction: the statement is its own, so BEGIN and COMMIT cost no round trips.
      conflicts = await this.store.executor.query<ConflictRow>(this.appendSql, appendParams(group), { name: this.statementName });
    } catch (error) {
      if (group.length > 1 && (errorCode(error) === UNIQUE_VIOLATION || !isRetriableDbError(error))) {
        // One append spoiled the group (a writer outside the journal took its sequence number, or
        // Postgres refuses its data, e.g. a NUL in a text column): retry one by one so only it fails.
        for (const append of group) await this.writeGroup([append]);
        return;
      }
      for (const append of group) append.reject(toWriteError(append, error));
      return;
    }
    const refused = new Map(conflicts.map((row) => [row.append_index - 1, Number(row.highest_sequence_nr)]));
    if (refused.size < group.length) this.store.appended();
    group.forEach((append, i) => {
      const highest = refused.get(i);
      if (highest === undefined) append.resolve({ lastSequenceNr: append.expectedSequenceNr + append.events.length });
      else append.reject(new ConcurrencyConflictError(append.persistenceId, append.expectedSequenceNr, highest));
    });
  }
}

/** The parameters of `append_events`: five arrays with one entry per append, five with one per event. */
function appendParams(group: readonly PendingAppend[]): unknown[] {
  const events = group.flatMap((append) => append.events);
  return [
    group.map((append) => append.persistenceId),
    group.map((append) => append.expectedSequenceNr),
    group.map((append) => append.events.length),
    group.map((append) => append.writerId),
    group.map((append) => append.writtenAt),
    events.map((event) => event.eventType),
    events.map((event) => event.schemaVersion),
    events.map((event) => event.serializerId),
    events.map((event) => event.bytes),
    JSON.stringify(events.map((event) => event.tags)),
  ];
}

function toWriteError(append: PendingAppend, error: unknown): Error {
  if (errorCode(error) === UNIQUE_VIOLATION) {
    return new ConcurrencyConflictError(append.persistenceId, append.expectedSequenceNr, undefined, { cause: error });
  }
  if (isOutcomeUnknownDbError(error)) {
    // Sent, then the connection was lost: the commit may have happened. The writer re-reads its head before writing again.
    return new JournalWriteOutcomeUnknownError(append.persistenceId, messageOf(error), { cause: error });
  }
  // A schema without the function: its migrations were not applied.
  const hint = errorCode(error) === UNDEFINED_FUNCTION ? ` (run \`${POSTGRES_MIGRATE_COMMAND}\`, or pass ensureSchema: true)` : '';
  return new JournalWriteError(append.persistenceId, `${messageOf(error)}${hint}`, { retriable: isRetriableDbError(error), cause: error });
}
