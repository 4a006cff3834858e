/**
 * Rebuilds a read model without readers ever seeing it half-built: the
 * projection replays the journal from the start into a shadow table
 * (`<table>__rebuild`, created like the table), and when the shadow has
 * caught up with the live projection's position, one transaction swaps the
 * tables and moves the live projection's offset to the rebuild's. The live
 * projection is paused for the final stretch and resumed after the swap.
 *
 * Progress (events done / total) is reported while the replay runs.
 *
 * A read model kept by several instances over disjoint slice ranges (a
 * cluster, `liveRanges`) is rebuilt the same way: every range is paused, the
 * shadow catches up with the furthest of them, and at the swap every range's
 * offset moves to the shadow's. On Postgres and PGlite a slice-range reader
 * and the tag reader share one offset space (the journal's global ordering),
 * so the shadow's offset is a valid position for every range: all events up
 * to it, of every slice, are in the swapped-in table.
 *
 * A rebuild holds a marker (`rebuild-marker.ts`, the table
 * `projection_rebuild`) from its start to its end: who runs it, which
 * instances it paused (an instance an operator paused before stays paused
 * after it) and a heartbeat refreshed every second. While the marker is
 * fresh a second rebuild of the same read model is refused
 * (`RebuildInProgressError`); when the process dies mid-rebuild the marker's
 * heartbeat goes stale and `recoverAbandonedRebuilds` lifts the rebuild's
 * pauses and drops its shadow table (the swap is one transaction, so until
 * it commits the live table and offsets are as they were).
 */
import { NoOffset, type Offset, type ReadJournal } from '@dataflow/core';
import { quoteSchema, type SqlExecutor } from '@dataflow/persistence';
import type { ProjectionId, ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { runProjection } from '../runner/projection-runner.js';
import { REBUILD_HEARTBEAT_MS, REBUILD_STALE_MS, RebuildAbandonedError, RebuildMarkerHandle, rebuildOwner } from './rebuild-marker.js';
import type { Projection } from '../runner/projection.js';
import type { JournalTables } from '../runner/projection-runner.js';

/** Progress of a rebuild. */
export interface RebuildProgress {
  readonly done: number;
  readonly total: number;
}

export interface RebuildOptions {
  readonly queries: ReadJournal;
  readonly store: ProjectionOffsetStore;
  readonly executor: SqlExecutor;
  readonly schema: string;
  /** The read model's table, e.g. `pipeline_metrics_hourly`. */
  readonly table: string;
  /** The live projection (its offset moves to the rebuild's at the swap). */
  readonly live: Projection;
  /**
   * The instances that together keep the table when it is split into slice
   * ranges (default: `live` alone). All are paused for the swap, and each
   * gets the rebuild's offset; `live` then only names the rebuild (its tag,
   * and its key for the shadow's key).
   */
  readonly liveRanges?: readonly ProjectionId[];
  /** Builds the same projection writing to another table, under another key. */
  readonly shadow: (table: string, key: string) => Projection;
  readonly onProgress?: (progress: RebuildProgress) => void;
  /** How long to wait for the live projection to stop after pausing it, ms (default 30 000). */
  readonly pauseTimeoutMs?: number;
  /** The journal's tables in the same database: a projection with a bulk statement rebuilds in SQL (see `sqlJournalOf`). */
  readonly journal?: JournalTables;
  /** Names the process in the rebuild's marker (default: host, pid and a random part). */
  readonly owner?: string;
  /** How often the marker's heartbeat is refreshed, ms (default `REBUILD_HEARTBEAT_MS`, 1 000). */
  readonly heartbeatMs?: number;
  /** Another rebuild's marker with a heartbeat older than this (ms) is abandoned and recovered (default `REBUILD_STALE_MS`, 30 000). */
  readonly staleMs?: number;
  /** Ends the rebuild without swapping (its pauses lifted, its shadow dropped), e.g. when the node stops. */
  readonly signal?: AbortSignal;
}

/** A rebuild that holds its marker and runs. */
export interface StartedRebuild {
  /** Who runs it (the marker's owner). */
  readonly owner: string;
  /** Resolves with the number of events replayed once the swap is done and the pauses are lifted. */
  readonly done: Promise<number>;
}

async function countAfter(queries: ReadJournal, tag: string, offset: Offset): Promise<number> {
  let n = 0;
  for await (const _ of queries.eventsByTag(tag, offset)) n++;
  return n;
}

/** Whether the shadow's position covers the live one: by global sequence when both have one, else by events applied. */
function reached(shadow: { readonly offset: Offset | undefined; readonly eventsApplied: number }, live: { readonly offset: Offset | undefined; readonly eventsApplied: number }): boolean {
  if (live.offset === undefined || live.offset.kind === 'none') return true;
  if (shadow.offset?.kind === 'sequence' && live.offset.kind === 'sequence') return shadow.offset.value >= live.offset.value;
  return shadow.eventsApplied >= live.eventsApplied;
}

const identifier = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]{0,54}$/.test(name)) throw new RangeError(`Invalid table name ${JSON.stringify(name)}`);
  return name;
};

/**
 * Rebuilds `options.table` from the start of the journal; resolves with the
 * number of events replayed. The live projection must be running (or
 * stoppable) under the same offset store; it is paused during the swap and
 * resumed afterwards (the caller restarts its actor with `{ type: 'start' }`),
 * unless it was paused before the rebuild began: that pause stays. Rejects
 * with `RebuildInProgressError` while another rebuild of it is alive.
 *
 * @example
 * ```ts
 * await rebuildReadModel({ queries, store, executor, schema: 'dataflow', table: 'pipeline_metrics_hourly',
 *   live: metrics, shadow: (table, key) => pipelineMetricsHourlyProjection({ schema: 'dataflow', table, key }), onProgress: ({ done, total }) => bar.update(done, { total }) });
 * ```
 */
export async function rebuildReadModel(options: RebuildOptions): Promise<number> {
  return (await startRebuild(options)).done;
}

/**
 * Takes the rebuild's marker and starts the rebuild: resolves once the
 * marker is held (the rebuild then runs on; `done` says how it ends), or
 * rejects with `RebuildInProgressError` while another rebuild of the read
 * model is alive (an abandoned one is recovered first). For a caller that
 * answers at once (the node's API) and must refuse a concurrent rebuild.
 *
 * @example
 * ```ts
 * const { done } = await startRebuild({ queries, store, executor, schema: 'dataflow', table: 'pipeline_status', live, shadow }); // RebuildInProgressError: a rebuild runs elsewhere
 * done.then((events) => logger.info(`rebuilt from ${events} events`));
 * ```
 */
export async function startRebuild(options: RebuildOptions): Promise<StartedRebuild> {
  const table = identifier(options.table);
  const shadowTable = `${table}__rebuild`;
  const shadowKey = `${options.live.id.key}__rebuild`;
  const owner = options.owner ?? rebuildOwner();
  const marker = await RebuildMarkerHandle.acquire(options.executor, options.schema, options.live.id, { table: shadowTable, key: shadowKey }, { owner, staleMs: options.staleMs ?? REBUILD_STALE_MS });
  return { owner, done: rebuildHolding(options, marker, shadowTable, shadowKey) };
}

async function rebuildHolding(options: RebuildOptions, marker: RebuildMarkerHandle, shadowTable: string, shadowKey: string): Promise<number> {
  const { executor, store, queries, live } = options;
  const schema = quoteSchema(options.schema);
  const table = identifier(options.table);
  const controller = new AbortController();
  marker.startHeartbeat(options.heartbeatMs ?? REBUILD_HEARTBEAT_MS, () => controller.abort());
  const stop = (): void => controller.abort();
  options.signal?.addEventListener('abort', stop, { once: true });
  const paused: ProjectionId[] = [];
  let swapped = false;
  let run: Promise<unknown> = Promise.resolve();
  try {
    const shadow = options.shadow(shadowTable, shadowKey);
    const shadowId: ProjectionId = shadow.id;
    await executor.query(`DROP TABLE IF EXISTS ${schema}.${shadowTable}`);
    await executor.query(`CREATE TABLE ${schema}.${shadowTable} (LIKE ${schema}.${table} INCLUDING ALL)`);
    await store.clearOffset(shadowId);
    await store.setPaused(shadowId, false);

    const total = await countAfter(queries, live.tag, NoOffset);
    let done = 0;
    run = runProjection(
      shadow,
      {
        queries,
        store,
        executor,
        ...(options.journal === undefined ? {} : { journal: options.journal }),
        onStatus: (event) => {
          if (event.type !== 'progress') return;
          done += event.events;
          options.onProgress?.({ done, total: Math.max(total, done) });
        },
      },
      controller.signal,
    );
    const wait = async (condition: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      while (!(await condition())) {
        if (marker.lost) throw new RebuildAbandonedError(live.id.name, marker.owner);
        if (options.signal?.aborted === true) throw new Error(`rebuild of ${table}: stopped before the swap`);
        if (Date.now() > deadline) throw new Error(`rebuild of ${table}: timed out waiting for ${what}`);
        await Promise.race([new Promise((r) => setTimeout(r, 20)), run.then(() => undefined)]);
      }
    };
    // Replay up to where the journal was when the rebuild began, then pause the live projection and catch up with it.
    await wait(async () => (await store.get(shadowId)).eventsApplied >= total, 'the replay', 24 * 3_600_000);
    const lives = options.liveRanges ?? [live.id];
    // Only the instances not paused yet are the rebuild's to resume: a pause set before (by an operator) outlives the rebuild.
    for (const id of lives) if (!(await store.get(id)).paused) paused.push(id);
    await marker.recordPaused(paused);
    for (const id of paused) await store.setPaused(id, true);
    const liveOffsets = async () => JSON.stringify(await Promise.all(lives.map(async (id) => (await store.get(id)).offset ?? NoOffset)));
    // The live projections stop at their next pause check; from then on their offsets stay put.
    let previous = await liveOffsets();
    await wait(
      async () => {
        await new Promise((r) => setTimeout(r, 1_100));
        const now = await liveOffsets();
        const settled = now === previous;
        previous = now;
        return settled;
      },
      'the live projection to pause',
      options.pauseTimeoutMs ?? 30_000,
    );
    const targets = await Promise.all(lives.map((id) => store.get(id)));
    await wait(
      async () => {
        const shadowRow = await store.get(shadowId);
        return targets.every((target) => reached(shadowRow, target));
      },
      'the shadow to reach the live position',
      24 * 3_600_000,
    );
    controller.abort();
    await run;
    const rebuilt = await store.get(shadowId);
    await executor.transaction(async (tx) => {
      // First: a recovery of this rebuild as abandoned waits for this transaction, or this one finds the marker gone and rolls back.
      await marker.markSwapped(tx);
      await tx.query(`ALTER TABLE ${schema}.${table} RENAME TO ${table}__old`);
      await tx.query(`ALTER TABLE ${schema}.${shadowTable} RENAME TO ${table}`);
      await tx.query(`DROP TABLE ${schema}.${table}__old`);
      if (rebuilt.offset !== undefined) {
        // Split into ranges, the events replayed are counted once (on the first range): the sum over the ranges stays right.
        for (const [i, id] of lives.entries()) {
          await store.clearOffset(id, tx);
          await store.save(id, rebuilt.offset, i === 0 ? rebuilt.eventsApplied : 0, rebuilt.lastEventAt ?? 0, tx);
        }
      }
    });
    swapped = true;
    return rebuilt.eventsApplied;
  } finally {
    controller.abort();
    await run.then(
      () => undefined,
      () => undefined,
    );
    options.signal?.removeEventListener('abort', stop);
    await marker.stopHeartbeat();
    // A marker recovered as abandoned (a last beat tells): its pauses were lifted and its shadow dropped, and both may be the next rebuild's by now.
    if (await marker.beat()) {
      for (const id of paused) await store.setPaused(id, false);
      if (!swapped) await executor.query(`DROP TABLE IF EXISTS ${schema}.${shadowTable}`);
      await marker.release();
    }
  }
}
