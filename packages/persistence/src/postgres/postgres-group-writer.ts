/**
 * Group commit for the Postgres journal: appends that arrive while a write is
 * in flight are written together in the next transaction, under one append
 * lock and one WAL flush (ADR 0003 serializes appends, so this is where
 * concurrent writers get their throughput back). Each append still succeeds
 * or fails on its own: conflicts are decided per append inside the group.
 */
import { ConcurrencyConflictError, JournalWriteError, type AppendResult } from '@dataflow/core';
import { errorCode, isRetriableDbError, messageOf, UNIQUE_VIOLATION } from './postgres-errors.js';
import type { PostgresStore } from './postgres-store.js';
import type { SqlQueryable } from './sql-executor.js';

/** One append, serialized and ready to insert: each row holds the 9 insert parameters. */
export interface PendingAppend {
  readonly persistenceId: string;
  readonly expectedSequenceNr: number;
  readonly rows: readonly (readonly unknown[])[];
}

interface Queued extends PendingAppend {
  resolve(result: AppendResult): void;
  reject(error: Error): void;
}

const INSERT_COLUMNS = 'persistence_id, sequence_nr, writer_id, event_type, schema_version, serializer_id, payload, tags, written_at';
const COLUMN_COUNT = 9;
/** Rows per INSERT statement: well below Postgres' 65 535 bind parameters. */
const ROWS_PER_STATEMENT = 1000;

export class PostgresGroupWriter {
  private queue: Queued[] = [];
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly store: PostgresStore,
    /** Most rows one group transaction takes from the queue (a larger single append still goes alone). */
    private readonly maxRowsPerGroup = 2000,
  ) {}

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
    let rows = 0;
    let count = 0;
    for (const append of this.queue) {
      if (count > 0 && rows + append.rows.length > this.maxRowsPerGroup) break;
      rows += append.rows.length;
      count++;
    }
    return this.queue.splice(0, count);
  }

  /** Writes a group; never rejects: every append's own promise settles. */
  private async writeGroup(group: readonly Queued[]): Promise<void> {
    let outcome: { accepted: Queued[]; conflicts: [Queued, number][] };
    try {
      outcome = await this.store.executor.transaction((tx) => this.insertGroup(tx, group));
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
    if (outcome.accepted.length > 0) this.store.appended();
    for (const append of outcome.accepted) append.resolve({ lastSequenceNr: append.expectedSequenceNr + append.rows.length });
    for (const [append, highest] of outcome.conflicts) append.reject(new ConcurrencyConflictError(append.persistenceId, append.expectedSequenceNr, highest));
  }

  private async insertGroup(tx: SqlQueryable, group: readonly Queued[]): Promise<{ accepted: Queued[]; conflicts: [Queued, number][] }> {
    const { journalTable, tagTable } = this.store;
    // The lock makes orderings visible in increasing order (ADR 0003). Taken first, so the check below is exact.
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [this.store.appendLockKey]);
    const ids = [...new Set(group.map((a) => a.persistenceId))];
    const found = await tx.query<{ persistence_id: string; highest: string | number }>(
      `SELECT persistence_id, max(sequence_nr) AS highest FROM ${journalTable} WHERE persistence_id = ANY ($1::text[]) GROUP BY persistence_id`,
      [ids],
    );
    const highest = new Map(found.map((r) => [r.persistence_id, Number(r.highest)]));
    const accepted: Queued[] = [];
    const conflicts: [Queued, number][] = [];
    // In arrival order, so two appends to one id in a group behave as if written one after the other.
    for (const append of group) {
      const current = highest.get(append.persistenceId) ?? 0;
      if (current !== append.expectedSequenceNr) {
        conflicts.push([append, current]);
        continue;
      }
      accepted.push(append);
      highest.set(append.persistenceId, current + append.rows.length);
    }
    const rows = accepted.flatMap((a) => a.rows);
    for (let start = 0; start < rows.length; start += ROWS_PER_STATEMENT) {
      const chunk = rows.slice(start, start + ROWS_PER_STATEMENT);
      const tuples = chunk.map((_, i) => `(${Array.from({ length: COLUMN_COUNT }, (_, k) => `$${i * COLUMN_COUNT + k + 1}`).join(', ')})`);
      await tx.query(
        `WITH inserted AS (INSERT INTO ${journalTable} (${INSERT_COLUMNS}) VALUES ${tuples.join(', ')} RETURNING ordering, tags)
         INSERT INTO ${tagTable} (tag, ordering) SELECT unnest(tags), ordering FROM inserted`,
        chunk.flat(),
      );
    }
    return { accepted, conflicts };
  }
}

function toWriteError(append: PendingAppend, error: unknown): Error {
  if (errorCode(error) === UNIQUE_VIOLATION) {
    return new ConcurrencyConflictError(append.persistenceId, append.expectedSequenceNr, undefined, { cause: error });
  }
  return new JournalWriteError(append.persistenceId, messageOf(error), { retriable: isRetriableDbError(error), cause: error });
}
