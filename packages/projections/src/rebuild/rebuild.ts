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
 */
import { NoOffset, type Offset, type ReadJournal } from '@dataflow/core';
import { quoteSchema, type SqlExecutor } from '@dataflow/persistence';
import type { ProjectionId, ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { runProjection } from '../runner/projection-runner.js';
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
 * resumed afterwards (the caller restarts its actor with `{ type: 'start' }`).
 *
 * @example
 * ```ts
 * await rebuildReadModel({ queries, store, executor, schema: 'dataflow', table: 'pipeline_metrics_hourly',
 *   live: metrics, shadow: (table, key) => pipelineMetricsHourlyProjection({ schema: 'dataflow', table, key }), onProgress: ({ done, total }) => bar.update(done, { total }) });
 * ```
 */
export async function rebuildReadModel(options: RebuildOptions): Promise<number> {
  const { executor, store, queries, live } = options;
  const schema = quoteSchema(options.schema);
  const table = identifier(options.table);
  const shadowTable = `${table}__rebuild`;
  const shadowKey = `${live.id.key}__rebuild`;
  const shadow = options.shadow(shadowTable, shadowKey);
  const shadowId: ProjectionId = shadow.id;
  await executor.query(`DROP TABLE IF EXISTS ${schema}.${shadowTable}`);
  await executor.query(`CREATE TABLE ${schema}.${shadowTable} (LIKE ${schema}.${table} INCLUDING ALL)`);
  await store.clearOffset(shadowId);
  await store.setPaused(shadowId, false);

  const total = await countAfter(queries, live.tag, NoOffset);
  const controller = new AbortController();
  let done = 0;
  const run = runProjection(shadow, {
    queries,
    store,
    executor,
    ...(options.journal === undefined ? {} : { journal: options.journal }),
    onStatus: (event) => {
      if (event.type !== 'progress') return;
      done += event.events;
      options.onProgress?.({ done, total: Math.max(total, done) });
    },
  }, controller.signal);
  const wait = async (condition: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`rebuild of ${table}: timed out waiting for ${what}`);
      await Promise.race([new Promise((r) => setTimeout(r, 20)), run.then(() => undefined)]);
    }
  };
  try {
    // Replay up to where the journal was when the rebuild began, then pause the live projection and catch up with it.
    await wait(async () => (await store.get(shadowId)).eventsApplied >= total, 'the replay', 24 * 3_600_000);
    const lives = options.liveRanges ?? [live.id];
    for (const id of lives) await store.setPaused(id, true);
    const liveOffsets = async () => JSON.stringify(await Promise.all(lives.map(async (id) => (await store.get(id)).offset ?? NoOffset)));
    // The live projections stop at their next pause check; from then on their offsets stay put.
    let previous = await liveOffsets();
    await wait(async () => {
      await new Promise((r) => setTimeout(r, 1_100));
      const now = await liveOffsets();
      const settled = now === previous;
      previous = now;
      return settled;
    }, 'the live projection to pause', options.pauseTimeoutMs ?? 30_000);
    const targets = await Promise.all(lives.map((id) => store.get(id)));
    await wait(async () => {
      const shadowRow = await store.get(shadowId);
      return targets.every((target) => reached(shadowRow, target));
    }, 'the shadow to reach the live position', 24 * 3_600_000);
    controller.abort();
    await run;
    const rebuilt = await store.get(shadowId);
    await executor.transaction(async (tx) => {
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
    return rebuilt.eventsApplied;
  } finally {
    controller.abort();
    await run.then(
      () => undefined,
      () => undefined,
    );
    for (const id of options.liveRanges ?? [live.id]) await store.setPaused(id, false);
  }
}
