/**
 * What the Postgres journal, read journal and snapshot store share: the
 * executor, table names of one schema, serializers, clock, query settings and
 * the closed state; plus row decoding common to journal and queries.
 */
import type { PersistedEvent, SerializerRegistry } from '@dataflow/core';
import { quoteSchema } from './postgres-schema.js';
import type { SqlExecutor } from './sql-executor.js';

export interface PostgresStoreSettings {
  readonly executor: SqlExecutor;
  readonly schema: string;
  readonly serializers: SerializerRegistry;
  readonly now: () => number;
  /** How often live queries look for new rows. */
  readonly pollIntervalMs: number;
  /** Rows fetched per query round trip by replays and queries. */
  readonly pageSize: number;
}

/** The columns of `event_journal` the stores read. */
export const EVENT_COLUMNS =
  'ordering, persistence_id, sequence_nr, writer_id, event_type, schema_version, serializer_id, payload, tags, written_at';

export interface EventRow {
  readonly ordering: string | number;
  readonly persistence_id: string;
  readonly sequence_nr: string | number;
  readonly writer_id: string;
  readonly event_type: string;
  readonly schema_version: number;
  readonly serializer_id: string;
  readonly payload: Uint8Array;
  readonly tags: string[];
  readonly written_at: string | number;
}

export class PostgresStore {
  readonly journalTable: string;
  readonly tagTable: string;
  readonly snapshotTable: string;
  /** The schema as a quoted identifier. */
  readonly schemaName: string;
  /** The function that appends a group of appends in one statement (sql/0002-parallel-appends.sql). */
  readonly appendFunction: string;
  private closedFlag = false;
  private readonly beforeClose: (() => Promise<void>)[] = [];
  /** Counts commits of this process's appends, so a live query knows whether to look again at once. */
  private appendVersion = 0;
  private waiters = new Set<() => void>();

  constructor(readonly settings: PostgresStoreSettings) {
    const schema = quoteSchema(settings.schema);
    this.schemaName = schema;
    this.journalTable = `${schema}.event_journal`;
    this.tagTable = `${schema}.event_tag`;
    this.snapshotTable = `${schema}.snapshot`;
    this.appendFunction = `${schema}.append_events`;
  }

  get executor(): SqlExecutor {
    return this.settings.executor;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** The current append version; pass it to `waitForAppend` after reading. */
  get version(): number {
    return this.appendVersion;
  }

  /** Called after appends of this process committed: wakes live queries at once. */
  appended(): void {
    this.appendVersion++;
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }

  /**
   * Waits until an append of this process commits after `sinceVersion`, the
   * poll interval passes (appends of other processes), the store closes, or
   * `signal` aborts.
   */
  waitForAppend(sinceVersion: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      if (this.appendVersion !== sinceVersion || this.closedFlag || signal?.aborted === true) {
        resolve();
        return;
      }
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, this.settings.pollIntervalMs);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Registers work to finish (e.g. queued appends) before the executor closes. */
  onClose(finish: () => Promise<void>): void {
    this.beforeClose.push(finish);
  }

  /** Refuses new calls, finishes registered work, then closes the executor. */
  async close(): Promise<void> {
    if (this.closedFlag) return;
    this.closedFlag = true;
    this.appended();
    try {
      for (const finish of this.beforeClose) await finish();
    } finally {
      await this.settings.executor.close();
    }
  }

  toEvent(row: EventRow): PersistedEvent {
    const eventType = row.event_type;
    const schemaVersion = row.schema_version;
    return {
      persistenceId: row.persistence_id,
      sequenceNr: Number(row.sequence_nr),
      payload: this.settings.serializers.deserialize(row.serializer_id, row.payload, { eventType, schemaVersion }),
      eventType,
      schemaVersion,
      tags: row.tags,
      timestamp: Number(row.written_at),
      writerId: row.writer_id,
    };
  }
}

/** Whether a stream should stop (a function, so TypeScript re-reads the flag after each await). */
export function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
