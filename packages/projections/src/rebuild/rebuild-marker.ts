/**
 * The marker of a running rebuild (`<schema>.projection_rebuild`, one row per
 * read model): who runs it, which instances it paused, when it began, and a
 * heartbeat its process refreshes every second (`REBUILD_HEARTBEAT_MS`) from
 * the start to the end, the wait for the pause included.
 *
 * A process that dies mid-rebuild (SIGKILL, crash, node lost) leaves the
 * marker behind with a heartbeat that stops moving. Once it is older than
 * `REBUILD_STALE_MS` (30 s: thirty missed beats, well above a pause of the
 * event loop or a short database outage) the rebuild is abandoned, and
 * `recoverAbandonedRebuilds` (the node runs it at start and every few
 * seconds) lifts the pauses the rebuild set (only those: an instance paused
 * before the rebuild began stays paused), drops the shadow table and the
 * shadow's offset row, and keeps the marker as a record (`abandoned_at`)
 * until the next rebuild replaces it. This is safe because the swap is one
 * transaction: until it commits the live table and offsets are untouched,
 * and the transaction that commits it stamps the marker (`swapped_at`) under
 * the same row lock the recovery takes, so the two never interleave.
 *
 * The heartbeat and the times are the database's (`now()`), so the clocks of
 * the nodes do not matter. A rebuild that finds its marker abandoned (its
 * process was stalled past the bound) ends with `RebuildAbandonedError` and
 * touches neither the pauses nor the shadow table again: they may already
 * belong to the next rebuild.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DataflowError } from '@dataflow/core';
import { quoteSchema, type SqlExecutor, type SqlQueryable } from '@dataflow/persistence';
import type { ProjectionId } from '../offset-store/projection-offset-store.js';

/** How often a running rebuild refreshes its marker's heartbeat, ms. */
export const REBUILD_HEARTBEAT_MS = 1_000;
/** A marker whose heartbeat is older than this (ms) belongs to an abandoned rebuild. */
export const REBUILD_STALE_MS = 30_000;

/** What the marker of a rebuild says. */
export interface RebuildMarker {
  /** The read model's projection name. */
  readonly name: string;
  /** The live projection's key (`default`, or `slices` for a read model split into ranges). */
  readonly key: string;
  readonly owner: string;
  readonly shadowTable: string;
  readonly shadowKey: string;
  /** The instances the rebuild paused (not those paused before it). */
  readonly pausedIds: readonly ProjectionId[];
  readonly startedAt: Date;
  readonly heartbeatAt: Date;
  /** The swap committed: the rebuilt table is live. */
  readonly swappedAt: Date | undefined;
  /** Recovered as abandoned: the row is only a record of it. */
  readonly abandonedAt: Date | undefined;
}

/**
 * A rebuild of this read model runs elsewhere (its marker's heartbeat is
 * fresh); nothing was changed. Retriable: once it ends (or is found
 * abandoned) a rebuild may start. The node's API answers 409.
 */
export class RebuildInProgressError extends DataflowError<'projection/rebuild-in-progress'> {
  constructor(readonly marker: RebuildMarker) {
    super(
      'projection/rebuild-in-progress',
      `projection ${marker.name}: a rebuild begun at ${marker.startedAt.toISOString()} by ${marker.owner} is running (last heartbeat ${marker.heartbeatAt.toISOString()}); wait for it to end`,
      { retriable: true },
    );
  }
}

/**
 * This rebuild's marker was recovered as abandoned while it ran (its
 * heartbeat went stale: the process or its database link stalled for longer
 * than the bound). The rebuild stops without swapping; start it again.
 */
export class RebuildAbandonedError extends DataflowError<'projection/rebuild-abandoned'> {
  constructor(
    readonly projection: string,
    readonly owner: string,
  ) {
    super('projection/rebuild-abandoned', `projection ${projection}: the rebuild run by ${owner} lost its marker (its heartbeat went stale and it was recovered as abandoned); it stopped without swapping, start it again`, {
      retriable: true,
    });
  }
}

interface Row {
  projection_name: string;
  projection_key: string;
  owner: string;
  shadow_table: string;
  shadow_key: string;
  paused_ids: ProjectionId[] | string;
  started_at: Date | string;
  heartbeat_at: Date | string;
  swapped_at: Date | string | null;
  abandoned_at: Date | string | null;
}

const markerOf = (row: Row): RebuildMarker => ({
  name: row.projection_name,
  key: row.projection_key,
  owner: row.owner,
  shadowTable: row.shadow_table,
  shadowKey: row.shadow_key,
  pausedIds: typeof row.paused_ids === 'string' ? (JSON.parse(row.paused_ids) as ProjectionId[]) : row.paused_ids,
  startedAt: new Date(row.started_at),
  heartbeatAt: new Date(row.heartbeat_at),
  swappedAt: row.swapped_at === null ? undefined : new Date(row.swapped_at),
  abandonedAt: row.abandoned_at === null ? undefined : new Date(row.abandoned_at),
});

const COLUMNS = 'projection_name, projection_key, owner, shadow_table, shadow_key, paused_ids, started_at, heartbeat_at, swapped_at, abandoned_at';
const tableOf = (schema: string): string => `${quoteSchema(schema)}.projection_rebuild`;
const shadowTableName = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new RangeError(`Invalid table name ${JSON.stringify(name)}`);
  return name;
};

/** A name for the process running a rebuild: host, pid and a random part telling its runs apart. */
export function rebuildOwner(): string {
  return `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
}

/** The marker of `name`'s rebuild: running, or the record of an abandoned one; undefined when none. */
export async function readRebuildMarker(executor: SqlQueryable, schema: string, name: string): Promise<RebuildMarker | undefined> {
  const [row] = await executor.query<Row>(`SELECT ${COLUMNS} FROM ${tableOf(schema)} WHERE projection_name = $1`, [name]);
  return row === undefined ? undefined : markerOf(row);
}

export interface RecoverOptions {
  /** A heartbeat older than this (ms) is abandoned (default `REBUILD_STALE_MS`). */
  readonly staleMs?: number;
  /** Only these read models (default: all). */
  readonly names?: readonly string[];
}

/**
 * Recovers every abandoned rebuild (a marker whose heartbeat is older than
 * `staleMs`), each in one transaction: lifts the pauses it set, drops its
 * shadow table and the shadow's offset row, and stamps the marker
 * `abandoned_at`. Resolves with the markers recovered now (none when
 * another process recovered them first).
 *
 * @example
 * ```ts
 * for (const m of await recoverAbandonedRebuilds(executor, 'dataflow')) logger.warn(`the rebuild of ${m.name} begun at ${m.startedAt.toISOString()} was abandoned: start it again`);
 * ```
 */
export async function recoverAbandonedRebuilds(executor: SqlExecutor, schema: string, options: RecoverOptions = {}): Promise<RebuildMarker[]> {
  const staleMs = options.staleMs ?? REBUILD_STALE_MS;
  const names = options.names === undefined ? [] : [...options.names];
  if (options.names !== undefined && names.length === 0) return [];
  const offsets = `${quoteSchema(schema)}.projection_offset`;
  // A cheap look first: most calls find nothing, and take no lock.
  const candidates = await executor.query<{ projection_name: string }>(
    `SELECT projection_name FROM ${tableOf(schema)}
      WHERE abandoned_at IS NULL AND heartbeat_at < now() - ($1::double precision * interval '1 millisecond') ${names.length === 0 ? '' : 'AND projection_name = ANY ($2::text[])'}`,
    names.length === 0 ? [staleMs] : [staleMs, names],
  );
  const recovered: RebuildMarker[] = [];
  for (const { projection_name: name } of candidates) {
    const marker = await executor.transaction(async (tx) => {
      // The swap's transaction stamps the marker (and its heartbeat) under this row's lock: a swapping rebuild is never recovered.
      const [row] = await tx.query<Row>(
        `UPDATE ${tableOf(schema)} SET abandoned_at = now()
          WHERE projection_name = $1 AND abandoned_at IS NULL AND heartbeat_at < now() - ($2::double precision * interval '1 millisecond')
          RETURNING ${COLUMNS}`,
        [name, staleMs],
      );
      if (row === undefined) return undefined;
      const found = markerOf(row);
      for (const id of found.pausedIds) {
        await tx.query(`UPDATE ${offsets} SET paused = false, updated_at = now() WHERE projection_name = $1 AND projection_key = $2`, [id.name, id.key]);
      }
      await tx.query(`DROP TABLE IF EXISTS ${quoteSchema(schema)}.${shadowTableName(found.shadowTable)}`);
      await tx.query(`DELETE FROM ${offsets} WHERE projection_name = $1 AND projection_key = $2`, [found.name, found.shadowKey]);
      return found;
    });
    if (marker !== undefined) recovered.push(marker);
  }
  return recovered;
}

/** The marker of one rebuild run, held by its process (internal to `rebuildReadModel`). */
export class RebuildMarkerHandle {
  #beat: NodeJS.Timeout | undefined;
  #beating: Promise<void> = Promise.resolve();
  #lost = false;

  private constructor(
    private readonly executor: SqlExecutor,
    private readonly schema: string,
    readonly name: string,
    readonly owner: string,
  ) {}

  /**
   * Takes the marker of `live.name`: recovers an abandoned rebuild of it
   * first, replaces the record of an earlier abandoned one, and refuses
   * (`RebuildInProgressError`) while another rebuild's heartbeat is fresh.
   */
  static async acquire(
    executor: SqlExecutor,
    schema: string,
    live: ProjectionId,
    shadow: { readonly table: string; readonly key: string },
    options: { readonly owner: string; readonly staleMs: number },
  ): Promise<RebuildMarkerHandle> {
    await recoverAbandonedRebuilds(executor, schema, { staleMs: options.staleMs, names: [live.name] });
    const table = tableOf(schema);
    const taken = await executor.query(
      `INSERT INTO ${table} AS r (projection_name, projection_key, owner, shadow_table, shadow_key) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (projection_name) DO UPDATE
         SET projection_key = EXCLUDED.projection_key, owner = EXCLUDED.owner, shadow_table = EXCLUDED.shadow_table, shadow_key = EXCLUDED.shadow_key,
             paused_ids = '[]'::jsonb, started_at = now(), heartbeat_at = now(), swapped_at = NULL, abandoned_at = NULL
         WHERE r.abandoned_at IS NOT NULL
       RETURNING 1 AS taken`,
      [live.name, live.key, options.owner, shadow.table, shadow.key],
    );
    if (taken.length === 0) {
      const marker = await readRebuildMarker(executor, schema, live.name);
      if (marker !== undefined) throw new RebuildInProgressError(marker);
      return RebuildMarkerHandle.acquire(executor, schema, live, shadow, options); // ended in between
    }
    return new RebuildMarkerHandle(executor, schema, live.name, options.owner);
  }

  /** The marker was recovered as abandoned while this run held it. */
  get lost(): boolean {
    return this.#lost;
  }

  /** Refreshes the heartbeat once; resolves with whether this run still holds the marker (false once it was recovered as abandoned). */
  async beat(): Promise<boolean> {
    if (this.#lost) return false;
    const rows = await this.executor.query(
      `UPDATE ${tableOf(this.schema)} SET heartbeat_at = now() WHERE projection_name = $1 AND owner = $2 AND abandoned_at IS NULL RETURNING 1 AS beat`,
      [this.name, this.owner],
    );
    if (rows.length === 0) this.#lost = true;
    return !this.#lost;
  }

  /** Refreshes the heartbeat every `everyMs` until `stopHeartbeat`; `onLost` runs once when the marker is found taken away. */
  startHeartbeat(everyMs: number, onLost: () => void): void {
    const beat = (): void => {
      this.#beating = this.beat()
        .then(
          (held) => {
            if (!held) onLost();
          },
          // The database is unreachable: the next beat tries again (past the stale bound the marker is recovered, and the next beat finds it lost).
          () => undefined,
        )
        .finally(() => {
          if (this.#beat !== undefined && !this.#lost) this.#beat = setTimeout(beat, everyMs);
        });
    };
    this.#beat = setTimeout(beat, everyMs);
  }

  /** Stops the heartbeat (and waits for a beat in flight). */
  async stopHeartbeat(): Promise<void> {
    clearTimeout(this.#beat);
    this.#beat = undefined;
    await this.#beating;
    clearTimeout(this.#beat);
  }

  /** Records the instances this run is about to pause (before it pauses them: a death in between lifts a pause never set, which is harmless). */
  async recordPaused(ids: readonly ProjectionId[]): Promise<void> {
    const rows = await this.executor.query(
      `UPDATE ${tableOf(this.schema)} SET paused_ids = $3::jsonb, heartbeat_at = now() WHERE projection_name = $1 AND owner = $2 AND abandoned_at IS NULL RETURNING 1 AS recorded`,
      [this.name, this.owner, JSON.stringify(ids.map((id) => ({ name: id.name, key: id.key })))],
    );
    if (rows.length === 0) throw this.#lose();
  }

  /** Inside the swap's transaction: stamps the marker swapped (locking it against a recovery), or throws when it was recovered. */
  async markSwapped(tx: SqlQueryable): Promise<void> {
    const rows = await tx.query(
      `UPDATE ${tableOf(this.schema)} SET swapped_at = now(), heartbeat_at = now() WHERE projection_name = $1 AND owner = $2 AND abandoned_at IS NULL RETURNING 1 AS swapped`,
      [this.name, this.owner],
    );
    if (rows.length === 0) throw this.#lose();
  }

  /** Removes the marker at the end of the run (after the pauses are lifted). */
  async release(): Promise<void> {
    await this.executor.query(`DELETE FROM ${tableOf(this.schema)} WHERE projection_name = $1 AND owner = $2 AND abandoned_at IS NULL`, [this.name, this.owner]);
  }

  #lose(): RebuildAbandonedError {
    this.#lost = true;
    return new RebuildAbandonedError(this.name, this.owner);
  }
}
