/**
 * Stored offsets and management of projections (Pekko Projection's offset
 * store and `ProjectionManagement`), on Postgres or embedded PGlite through
 * a `SqlExecutor`: one row per projection name and key holding the journal
 * offset after the last applied event, a paused flag, the last error and
 * progress counters.
 *
 * `save` takes the transaction of the handler's writes, which is what makes
 * `exactlyOnce` exactly once: the read model and its offset commit together.
 */
import type { Offset } from '@dataflow/core';
import { quoteSchema, type SqlExecutor, type SqlQueryable } from '@dataflow/persistence';
import { ProjectionOffsetMovedError } from '../runner/projection-errors.js';

/** Identifies one projection instance (the key tells apart slice ranges or tag variants). */
export interface ProjectionId {
  readonly name: string;
  readonly key: string;
}

/** What the store holds for a projection. */
export interface ProjectionOffsetRow {
  readonly offset: Offset | undefined;
  readonly eventsApplied: number;
  /** Epoch ms of the last applied event's write, undefined before the first. */
  readonly lastEventAt: number | undefined;
  readonly paused: boolean;
  readonly lastError: string | undefined;
  readonly updatedAt: Date | undefined;
}

interface Row {
  offset: Offset | null;
  events_applied: string | number;
  last_event_at: string | number | null;
  paused: boolean;
  last_error: string | null;
  updated_at: Date | string | null;
}

/** Offsets and management flags of projections in one schema. */
export class ProjectionOffsetStore {
  readonly #table: string;

  constructor(
    readonly executor: SqlExecutor,
    readonly schema: string,
  ) {
    this.#table = `${quoteSchema(schema)}.projection_offset`;
  }

  /** The stored row, or the defaults of a projection that never ran. */
  async get(id: ProjectionId, on: SqlQueryable = this.executor): Promise<ProjectionOffsetRow> {
    const [row] = await on.query<Row>(
      `SELECT "offset", events_applied, last_event_at, paused, last_error, updated_at FROM ${this.#table} WHERE projection_name = $1 AND projection_key = $2`,
      [id.name, id.key],
    );
    if (row === undefined) return { offset: undefined, eventsApplied: 0, lastEventAt: undefined, paused: false, lastError: undefined, updatedAt: undefined };
    return {
      offset: row.offset ?? undefined,
      eventsApplied: Number(row.events_applied),
      lastEventAt: row.last_event_at === null ? undefined : Number(row.last_event_at),
      paused: row.paused,
      lastError: row.last_error ?? undefined,
      updatedAt: row.updated_at === null ? undefined : new Date(row.updated_at),
    };
  }

  /**
   * Stores the offset after `events` more events (inside the caller's transaction for exactly-once). Clears the last error.
   * With `expected` (the offset the caller last read or saved, undefined for none) the save is conditional: when the stored
   * offset is another one, nothing is saved and it throws `ProjectionOffsetMovedError` (the caller's transaction rolls back).
   * A concurrent writer of the row waits for this transaction, so of two instances only one moves an offset.
   */
  async save(id: ProjectionId, offset: Offset, events: number, lastEventAt: number, on: SqlQueryable = this.executor, expected?: { readonly offset: Offset | undefined }): Promise<void> {
    const params: unknown[] = [id.name, id.key, JSON.stringify(offset), events, lastEventAt];
    if (expected !== undefined) params.push(expected.offset === undefined ? null : JSON.stringify(expected.offset));
    const saved = await on.query<{ saved: number }>(
      `INSERT INTO ${this.#table} AS p (projection_name, projection_key, "offset", events_applied, last_event_at, last_error, updated_at)
       VALUES ($1, $2, $3::jsonb, $4, $5, NULL, now())
       ON CONFLICT (projection_name, projection_key) DO UPDATE
         SET "offset" = EXCLUDED."offset", events_applied = p.events_applied + $4, last_event_at = EXCLUDED.last_event_at, last_error = NULL, updated_at = now()
       ${expected === undefined ? '' : 'WHERE p."offset" IS NOT DISTINCT FROM $6::jsonb'}
       RETURNING 1 AS saved`,
      params,
    );
    if (saved.length === 0) throw new ProjectionOffsetMovedError(id.name, id.key);
  }

  /** Skips ahead (or back): the next run starts after `offset`. */
  async setOffset(id: ProjectionId, offset: Offset): Promise<void> {
    await this.executor.query(
      `INSERT INTO ${this.#table} AS p (projection_name, projection_key, "offset") VALUES ($1, $2, $3::jsonb)
       ON CONFLICT (projection_name, projection_key) DO UPDATE SET "offset" = EXCLUDED."offset", updated_at = now()`,
      [id.name, id.key, JSON.stringify(offset)],
    );
  }

  /** Forgets the offset and the counters: the next run rebuilds from the start of the journal. */
  async clearOffset(id: ProjectionId, on: SqlQueryable = this.executor): Promise<void> {
    await on.query(
      `UPDATE ${this.#table} SET "offset" = NULL, events_applied = 0, last_event_at = NULL, last_error = NULL, updated_at = now() WHERE projection_name = $1 AND projection_key = $2`,
      [id.name, id.key],
    );
  }

  /** Sets the paused flag; a running projection stops at its next check and stays stopped until resumed. */
  async setPaused(id: ProjectionId, paused: boolean): Promise<void> {
    await this.executor.query(
      `INSERT INTO ${this.#table} AS p (projection_name, projection_key, paused) VALUES ($1, $2, $3)
       ON CONFLICT (projection_name, projection_key) DO UPDATE SET paused = EXCLUDED.paused, updated_at = now()`,
      [id.name, id.key, paused],
    );
  }

  /** Records the last failure (its message, never payloads). */
  async setError(id: ProjectionId, message: string): Promise<void> {
    await this.executor.query(
      `INSERT INTO ${this.#table} AS p (projection_name, projection_key, last_error) VALUES ($1, $2, $3)
       ON CONFLICT (projection_name, projection_key) DO UPDATE SET last_error = EXCLUDED.last_error, updated_at = now()`,
      [id.name, id.key, message.slice(0, 2000)],
    );
  }

  /** Every projection instance the store knows, by name and key. */
  async list(): Promise<(ProjectionId & ProjectionOffsetRow)[]> {
    const rows = await this.executor.query<Row & { projection_name: string; projection_key: string }>(
      `SELECT projection_name, projection_key, "offset", events_applied, last_event_at, paused, last_error, updated_at FROM ${this.#table} ORDER BY projection_name, projection_key`,
    );
    return rows.map((row) => ({
      name: row.projection_name,
      key: row.projection_key,
      offset: row.offset ?? undefined,
      eventsApplied: Number(row.events_applied),
      lastEventAt: row.last_event_at === null ? undefined : Number(row.last_event_at),
      paused: row.paused,
      lastError: row.last_error ?? undefined,
      updatedAt: row.updated_at === null ? undefined : new Date(row.updated_at),
    }));
  }
}
