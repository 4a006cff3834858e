/**
 * The safe ordering of a schema: the highest `ordering` up to which every
 * event is visible or rolled back for good, so a tag query that reads only up
 * to it and resumes after its last delivered ordering never skips an event
 * (docs/adr/0003-postgres-tag-ordering.md).
 *
 * Appends run in parallel (a lock per persistence id), so orderings are drawn
 * in one order and become visible in another. Every append holds a shared
 * advisory lock from before it draws an ordering until its commit is
 * visible; `append_watermark()` reads the sequence's last drawn value and
 * then the transactions holding that lock. Once those transactions are gone,
 * every ordering up to the value read is settled. Readers wait for them (a
 * few milliseconds: one append statement) and never block a writer.
 */
import { isAborted, type PostgresStore } from './postgres-store.js';

/** Longest pause between two looks at the appends still running. */
const MAX_PAUSE_MS = 50;

export class OrderingWatermark {
  private readonly watermarkSql: string;
  private readonly stillRunningSql: string;

  constructor(private readonly store: PostgresStore) {
    this.watermarkSql = `SELECT drawn, appenders FROM ${store.schemaName}.append_watermark()`;
    this.stillRunningSql = `SELECT ${store.schemaName}.appenders_still_running($1) AS running`;
  }

  /**
   * The safe ordering now: every event acknowledged before the call is at or
   * below it. Waits for the appends in flight at the call; resolves with
   * `undefined` if `signal` aborts meanwhile. Throws the driver's error.
   */
  async safeOrdering(signal?: AbortSignal): Promise<number | undefined> {
    const [row] = await this.store.executor.query<{ drawn: string | number; appenders: string[] }>(this.watermarkSql);
    const drawn = Number(row?.drawn ?? 0);
    let waiting = row?.appenders ?? [];
    let pauseMs = 1;
    while (waiting.length > 0) {
      if (isAborted(signal)) return undefined;
      await new Promise((resolve) => setTimeout(resolve, pauseMs));
      pauseMs = Math.min(pauseMs * 2, MAX_PAUSE_MS);
      const [still] = await this.store.executor.query<{ running: string[] }>(this.stillRunningSql, [waiting]);
      waiting = still?.running ?? [];
    }
    return drawn;
  }
}
