/**
 * The read models a node keeps: `pipeline_status` and
 * `pipeline_metrics_hourly` (from `@dataflow/projections`), in the journal's
 * own database (the embedded PGlite or the Postgres server), each run by a
 * supervised projection actor (restart with backoff). The node's API lists
 * them with their offset, lag, last error and the progress of a rebuild, and
 * pauses, resumes and rebuilds them (the rebuild fills a shadow table and
 * swaps it in: readers never see a half-built view).
 *
 * On a store without SQL (memory, Cassandra) there are no read models: the
 * node says so once and `startNodeProjections` returns undefined.
 *
 * In a cluster (`sliceRanges`) each read model is split into slice ranges
 * of the pipelines' persistence ids, one instance per range with its own
 * offset (key `slices-<min>-<max>`); a node runs only the ranges it holds
 * the lease of (`startRange` / `stopRange`, driven by the cluster runtime).
 * The handlers work per pipeline, so disjoint ranges never apply an event
 * twice. Management covers every range from the shared offset store,
 * whichever node runs it: the status sums and maxes them (with the detail
 * per range), pause and resume set the flag of every range (a node running
 * a range notices a lifted pause at its next check and starts it again),
 * and a rebuild pauses every range, swaps the table and moves every range
 * to the rebuild's offset.
 *
 * The split may change between runs (one node joins a cluster, the range
 * count changes, a cluster goes back to one node). Before an instance runs,
 * `adoptSplit` hands it the old keys' offset when that is one offset over
 * every slice (so nothing is applied twice); otherwise the read model does
 * not run (`failing`, its last error asking for a rebuild) until a rebuild
 * builds it under the new split.
 *
 * A rebuild holds a marker in the shared store with a heartbeat (see
 * `@dataflow/projections`' rebuild-marker): a rebuild asked for while
 * another node's is alive is refused (`RebuildInProgressError`, 409). A
 * rebuild whose node died (its heartbeat older than `rebuildStaleMs`, 30 s)
 * is abandoned: at start and every `rebuildCheckMs` (5 s) the node lifts
 * the pauses it set (an operator's pause stays), drops its shadow table,
 * logs a warning naming the read model, when the rebuild began and that it
 * must be started again, and reports it in `rebuild` (`state: 'abandoned'`)
 * until the next rebuild. It does not start the rebuild again by itself: a
 * rebuild replays the whole journal, what killed it (memory, a node lost
 * mid-way) may kill it again on every node in turn, and the read model is
 * whole without it (it runs on incrementally from where it was paused);
 * the operator decides when to run it.
 *
 * `statusView` reads `pipeline_status` (`PipelineStatusView`) with its lag
 * over the split's keys, for the pipelines routes of the API.
 */
import { createActorSystem, isDataflowError, type ActorRef, type ActorSystem, type Instrumentation, type PersistencePlugin, type ReadJournal } from '@dataflow/core';
import type { SqlExecutor, SqlQueryable } from '@dataflow/persistence';
import {
  adoptSplit,
  checkProjectionsSchema,
  forgetOtherSplits,
  splitKeys,
  createProjectionStatusObserver,
  migrateProjections,
  PipelineStatusView,
  pipelineMetricsHourlyProjection,
  pipelineStatusProjection,
  ProjectionManagement,
  ProjectionOffsetStore,
  readRebuildMarker,
  recoverAbandonedRebuilds,
  REBUILD_STALE_MS,
  RebuildInProgressError,
  spawnProjection,
  startRebuild,
  sqlJournalOf,
  type Projection,
  type ProjectionLag,
  type RebuildMarker,
  type ProjectionMessage,
  type ProjectionStatusEvent,
  type RebuildProgress,
  sliceKey,
  type SliceRange,
} from '@dataflow/projections';
import { ProjectionNotFoundError } from '../node/node-errors.js';
import type { NodeLogger } from '../node/node-logger.js';

/** One slice range of a projection split over a cluster's nodes. */
export interface ProjectionRangeInfo {
  readonly key: string;
  readonly min: number;
  readonly max: number;
  readonly state: 'running' | 'paused' | 'failing';
  /** This node runs the range now. */
  readonly here: boolean;
  readonly eventsApplied: number;
  readonly lastEventAt: string | null;
  readonly lag: ProjectionLag;
  readonly lastError: string | null;
}

/** What the node reports about one projection. */
export interface ProjectionInfo {
  readonly name: string;
  /** `default`, or `slices` when it is split into slice ranges (their keys are in `ranges`). */
  readonly key: string;
  /** The table it keeps. */
  readonly table: string;
  readonly state: 'running' | 'paused' | 'failing' | 'rebuilding';
  /** Split into ranges: the sum over them. */
  readonly eventsApplied: number;
  /** Split into ranges: the latest of them. */
  readonly lastEventAt: string | null;
  /** Split into ranges: the events not applied yet summed (the ranges are disjoint), the oldest age among them. */
  readonly lag: ProjectionLag;
  /** Split into ranges: the first range's last error, named by its key. */
  readonly lastError: string | null;
  /**
   * The last rebuild: run by this node (`running`, `done`, `failed`), or one whose node died before it ended (`abandoned`,
   * from the shared store, whichever node asks; `error` says when it began and that it must be started again).
   */
  readonly rebuild: (RebuildProgress & { readonly state: 'running' | 'done' | 'failed' | 'abandoned'; readonly error?: string }) | null;
  /** Split into slice ranges (cluster mode): each range as the offset store has it. */
  readonly ranges?: readonly ProjectionRangeInfo[];
}

/** The projections of a node. */
export interface NodeProjections {
  readonly events: Instrumentation<ProjectionStatusEvent>;
  list(): Promise<readonly ProjectionInfo[]>;
  /** Undefined when no projection has this name. */
  get(name: string): Promise<ProjectionInfo | undefined>;
  pause(name: string): Promise<ProjectionInfo>;
  resume(name: string): Promise<ProjectionInfo>;
  /**
   * Starts a rebuild and returns at once; progress shows in `get(name).rebuild`. A rebuild already running here is returned as it is;
   * one running on another node (its marker's heartbeat fresh) is refused with `RebuildInProgressError`.
   */
  rebuild(name: string): Promise<ProjectionInfo>;
  /** The `pipeline_status` read model and its lag (undefined while the read models are not open). */
  statusView(): PipelineStatusView | undefined;
  close(): Promise<void>;
}

/** The projections of a node in a cluster: the read models split into slice ranges, the ranges this node holds running here. */
export interface SlicedNodeProjections extends NodeProjections {
  /** Every range of the split (the same on every node). */
  readonly ranges: readonly SliceRange[];
  /** Starts the instances of `range` (one per read model) from their stored offsets; nothing when they run already. */
  startRange(range: SliceRange): Promise<void>;
  /** Stops the instances of `range` and resolves once they have stopped (no write of theirs follows). */
  stopRange(range: SliceRange): Promise<void>;
  /** The ranges running here. */
  runningRanges(): SliceRange[];
}

export interface NodeProjectionsOptions {
  readonly persistence: PersistencePlugin;
  readonly logger: NodeLogger;
  /** `auto`: create or migrate the projections' tables at start; `check`: refuse a schema missing a migration. */
  readonly migrate: 'auto' | 'check';
  /**
   * Cluster mode: split every read model into these slice ranges (disjoint,
   * covering 0-1023, e.g. `sliceRanges(4)`), none running until
   * `startRange`. Without it, one instance of each runs over every slice
   * (key `default`).
   */
  readonly sliceRanges?: readonly SliceRange[];
  /** Split into ranges: how often the ranges running here look for a pause lifted by another node, ms (default 1 000). */
  readonly resumeCheckMs?: number;
  /** A rebuild whose marker's heartbeat is older than this is abandoned and recovered, ms (default `REBUILD_STALE_MS`, 30 000). */
  readonly rebuildStaleMs?: number;
  /** How often the node looks for abandoned rebuilds, ms (default 5 000; also once at start). */
  readonly rebuildCheckMs?: number;
}

interface Instance {
  readonly range: SliceRange | undefined;
  readonly actor: ActorRef<ProjectionMessage>;
}

interface Entry {
  /** The unsliced projection: the one that runs without ranges (key `default`); split into ranges, it names the read model (key `slices`) for the rebuild. */
  readonly projection: Projection;
  readonly table: string;
  readonly make: (options: { readonly key?: string; readonly table?: string; readonly slices?: SliceRange }) => Projection;
  /** The instances running in this node, by key. */
  readonly instances: Map<string, Instance>;
  rebuild: { progress: RebuildProgress; state: 'running' | 'done' | 'failed'; error?: string; run: Promise<void> } | undefined;
}

/** The journal's database, when the store has one. */
function sqlOf(persistence: PersistencePlugin): { readonly executor: SqlExecutor; readonly schema: string } | undefined {
  const candidate = persistence as Partial<{ executor: SqlExecutor; schema: string }>;
  return candidate.executor !== undefined && typeof candidate.schema === 'string' ? { executor: candidate.executor, schema: candidate.schema } : undefined;
}

/** The key of the whole of a read model split into ranges (the ranges have `slices-<min>-<max>`). */
const SLICED_KEY = 'slices';

/**
 * Starts the read-model projections on the node's store.
 *
 * @example
 * ```ts
 * const projections = await startNodeProjections({ persistence: node.persistence, logger, migrate: 'auto' });
 * for (const p of (await projections?.list()) ?? []) logger.info(`${p.name}: ${p.eventsApplied} events`);
 * // In a cluster: split into 4 ranges, this node running the ones it holds.
 * const sliced = await startNodeProjections({ persistence: node.persistence, logger, migrate: 'check', sliceRanges: sliceRanges(4) });
 * await sliced?.startRange({ min: 0, max: 255 });
 * ```
 */
export async function startNodeProjections(options: NodeProjectionsOptions & { readonly sliceRanges: readonly SliceRange[] }): Promise<SlicedNodeProjections | undefined>;
export async function startNodeProjections(options: NodeProjectionsOptions): Promise<NodeProjections | undefined>;
export async function startNodeProjections(options: NodeProjectionsOptions): Promise<SlicedNodeProjections | NodeProjections | undefined> {
  const sql = sqlOf(options.persistence);
  if (sql === undefined) {
    options.logger.info('read models are off: the journal store has no SQL database (they run on the embedded store and on Postgres)');
    return undefined;
  }
  if (options.migrate === 'auto') await migrateProjections(sql.executor, sql.schema);
  else await checkProjectionsSchema(sql.executor, sql.schema);
  const store = new ProjectionOffsetStore(sql.executor, sql.schema);
  const management = new ProjectionManagement(store);
  const observer = createProjectionStatusObserver();
  const system = createActorSystem({ name: 'dataflow-projections' });
  const queries: ReadJournal = options.persistence.queries;
  // On Postgres and PGlite a projection far behind (a first start, a rebuild) catches up in SQL first.
  const journal = sqlJournalOf(options.persistence);
  const deps = { queries, store, executor: sql.executor, onStatus: observer.onStatus, ...(journal === undefined ? {} : { journal }) };
  observer.on('*', (event) => {
    if (event.type === 'error') options.logger.warn(`projection ${event.id.name}/${event.id.key}: ${messageOf(event.error)} (${event.outcome}, attempt ${event.attempt})`, { projection: event.id.name });
  });
  const ranges = options.sliceRanges;
  const entries = new Map<string, Entry>();
  const add = (table: string, make: Entry['make']): void => {
    const projection = make(ranges === undefined ? {} : { key: SLICED_KEY });
    const entry: Entry = { projection, table, make, instances: new Map(), rebuild: undefined };
    entries.set(projection.id.name, entry);
  };
  add('pipeline_status', (o) => pipelineStatusProjection({ schema: sql.schema, ...o }));
  add('pipeline_metrics_hourly', (o) => pipelineMetricsHourlyProjection({ schema: sql.schema, ...o }));

  // The split's keys take over the offsets of another split (or the read model waits for a rebuild): see the module comment.
  const split = splitKeys(ranges);
  const view = new PipelineStatusView(sql.executor, { schema: sql.schema, keys: split.map((k) => k.key) });
  /** Whether no event of the tag in a slice range lies between two orderings (ranges at different offsets are then built equally far). */
  const quiet =
    (tag: string) =>
    async (range: SliceRange, after: number, upTo: number, on: SqlQueryable): Promise<boolean> => {
      if (journal === undefined) return false;
      const rows = await on.query(
        `SELECT 1 FROM ${journal.eventTable} e WHERE e.ordering > $1 AND e.ordering <= $2 AND e.slice BETWEEN $3 AND $4 AND $5 = ANY (e.tags) LIMIT 1`,
        [after, upTo, range.min, range.max, tag],
      );
      return rows.length === 0;
    };
  /** Read models built under another split that this one cannot take over, by name: they run after a rebuild. */
  const blocked = new Map<string, string>();
  const adopted = async (entry: Entry): Promise<boolean> => {
    const name = entry.projection.id.name;
    try {
      const adoption = await adoptSplit(sql.executor, sql.schema, name, split, quiet(entry.projection.tag));
      if (adoption.kind === 'adopted') {
        options.logger.info(`projection ${name}: the ${split.length === 1 ? 'unsplit key' : `${split.length} slice ranges`} took offset ${JSON.stringify(adoption.offset)} over from ${adoption.from.join(', ')} (the split changed)`, { projection: name });
      }
      blocked.delete(name);
      return true;
    } catch (error) {
      if (!isDataflowError(error, 'projection/split-changed')) {
        options.logger.warn(`projection ${name}: could not check its offsets against the split (${messageOf(error)}); trying again`, { projection: name });
        return false;
      }
      if (!blocked.has(name)) {
        options.logger.error(error.message, { projection: name });
        for (const { key } of split) await store.setError({ name, key }, error.message).catch(() => undefined);
      }
      blocked.set(name, error.message);
      return false;
    }
  };
  /** Starts the instances this node should run and does not yet (unsplit: the one instance; split: those of the ranges it holds). */
  const held = new Map<string, SliceRange>();
  const fill = async (): Promise<void> => {
    for (const entry of entries.values()) {
      const wanted = ranges === undefined ? [{ key: entry.projection.id.key, range: undefined }] : [...held].map(([key, range]) => ({ key, range }));
      const missing = wanted.filter((w) => !entry.instances.has(w.key));
      if (missing.length === 0 || entry.rebuild?.state === 'running' || !(await adopted(entry)) || closed) continue;
      for (const { key, range } of missing) {
        if (entry.instances.has(key) || (range !== undefined && !held.has(key))) continue;
        entry.instances.set(key, { range, actor: spawnProjection(system, range === undefined ? entry.projection : entry.make({ key, slices: range }), deps) });
      }
    }
  };

  const entryOf = (name: string): Entry => {
    const entry = entries.get(name);
    if (entry === undefined) throw new ProjectionNotFoundError(name, [...entries.keys()]);
    return entry;
  };
  /** The instance ids of a read model: its ranges, or its one unsliced instance. */
  const idsOf = (entry: Entry) => (ranges === undefined ? [entry.projection.id] : ranges.map((range) => ({ name: entry.projection.id.name, key: sliceKey(range) })));
  const failingHere = (id: { name: string; key: string }): boolean => {
    const last = observer.last(id);
    return last?.type === 'error' || (last?.type === 'stopped' && last.reason === 'failed');
  };
  const rebuildOf = async (entry: Entry): Promise<ProjectionInfo['rebuild']> => {
    const rebuild = entry.rebuild;
    if (rebuild?.state !== 'running') {
      // The record of an abandoned rebuild stays in the store until the next rebuild: it is the latest one, whichever node ran it.
      const marker = await readRebuildMarker(sql.executor, sql.schema, entry.projection.id.name);
      if (marker?.abandonedAt !== undefined) return { done: 0, total: 0, state: 'abandoned', error: abandonedText(marker) };
    }
    return rebuild === undefined ? null : { ...rebuild.progress, state: rebuild.state, ...(rebuild.error === undefined ? {} : { error: rebuild.error }) };
  };
  const isoOf = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
  const info = async (entry: Entry): Promise<ProjectionInfo> => {
    const rebuilding = entry.rebuild?.state === 'running';
    if (ranges === undefined) {
      const status = await management.status(entry.projection.id, entry.projection.tag);
      return {
        name: entry.projection.id.name,
        key: entry.projection.id.key,
        table: entry.table,
        state: rebuilding ? 'rebuilding' : status.paused ? 'paused' : failingHere(entry.projection.id) || blocked.has(entry.projection.id.name) ? 'failing' : 'running',
        eventsApplied: status.eventsApplied,
        lastEventAt: isoOf(status.lastEventAt),
        lag: status.lag,
        lastError: status.lastError ?? null,
        rebuild: await rebuildOf(entry),
      };
    }
    const name = entry.projection.id.name;
    const perRange = await Promise.all(
      ranges.map(async (range): Promise<ProjectionRangeInfo> => {
        const key = sliceKey(range);
        const status = await management.status({ name, key }, entry.projection.tag, range);
        // A last error stays stored until the range's next save: a range failing on another node shows here by it.
        const failing = failingHere({ name, key }) || status.lastError !== undefined;
        return {
          key,
          min: range.min,
          max: range.max,
          state: status.paused ? 'paused' : failing ? 'failing' : 'running',
          here: entry.instances.has(key),
          eventsApplied: status.eventsApplied,
          lastEventAt: isoOf(status.lastEventAt),
          lag: status.lag,
          lastError: status.lastError ?? null,
        };
      }),
    );
    const unknown = perRange.find((r) => r.lag.kind === 'unknown');
    const lag: ProjectionLag =
      unknown !== undefined
        ? unknown.lag
        : {
            kind: 'known',
            events: perRange.reduce((sum, r) => sum + (r.lag.kind === 'known' ? r.lag.events : 0), 0),
            seconds: Math.max(0, ...perRange.map((r) => (r.lag.kind === 'known' ? r.lag.seconds : 0))),
          };
    const lastEvents = perRange.flatMap((r) => (r.lastEventAt === null ? [] : [r.lastEventAt])).sort();
    const erring = perRange.find((r) => r.lastError !== null);
    return {
      name,
      key: SLICED_KEY,
      table: entry.table,
      state: rebuilding ? 'rebuilding' : perRange.every((r) => r.state === 'paused') ? 'paused' : perRange.some((r) => r.state === 'failing') ? 'failing' : 'running',
      eventsApplied: perRange.reduce((sum, r) => sum + r.eventsApplied, 0),
      lastEventAt: lastEvents.at(-1) ?? null,
      lag,
      lastError: erring === undefined ? null : `${erring.key}: ${erring.lastError}`,
      rebuild: await rebuildOf(entry),
      ranges: perRange,
    };
  };
  const startHere = (entry: Entry): void => {
    for (const instance of entry.instances.values()) instance.actor.tell({ type: 'start' });
  };

  let closed = false;
  // Rebuilds whose node died: their pauses lifted, their shadow dropped (see the module comment). Not those running here.
  const rebuildStaleMs = options.rebuildStaleMs ?? REBUILD_STALE_MS;
  const recoverAbandoned = async (): Promise<void> => {
    const names = [...entries.values()].filter((e) => e.rebuild?.state !== 'running').map((e) => e.projection.id.name);
    for (const marker of await recoverAbandonedRebuilds(sql.executor, sql.schema, { staleMs: rebuildStaleMs, names })) {
      options.logger.warn(`projection ${marker.name}: ${abandonedText(marker)} (no heartbeat for over ${Math.round(rebuildStaleMs / 1000)} s)`, { projection: marker.name });
      const entry = entries.get(marker.name);
      if (entry !== undefined && !closed) startHere(entry);
    }
  };
  let lastRecoveryFailure = '';
  const recoverLogged = async (): Promise<void> => {
    try {
      await recoverAbandoned();
      lastRecoveryFailure = '';
    } catch (error) {
      const message = messageOf(error);
      if (message !== lastRecoveryFailure) options.logger.warn(`projections: could not look for abandoned rebuilds: ${message}; trying again`);
      lastRecoveryFailure = message;
    }
  };
  await recoverLogged();
  let recovering = false;
  const rebuildCheck = setInterval(() => {
    if (recovering || closed) return;
    recovering = true;
    void recoverLogged().finally(() => (recovering = false));
  }, options.rebuildCheckMs ?? 5_000);
  rebuildCheck.unref();
  // Per range, its starts and stops one after the other.
  const transitions = new Map<string, Promise<void>>();
  const inTurn = (range: SliceRange, work: () => Promise<void>): Promise<void> => {
    const key = sliceKey(range);
    const next = (transitions.get(key) ?? Promise.resolve()).then(work);
    transitions.set(
      key,
      next.catch(() => undefined),
    );
    return next;
  };
  const checkRange = (range: SliceRange): void => {
    if (ranges === undefined || !ranges.some((r) => r.min === range.min && r.max === range.max)) {
      throw new RangeError(`slice range ${sliceKey(range)} is not one of this node's split (${(ranges ?? []).map(sliceKey).join(', ') || 'not split'})`);
    }
  };
  // A pause lifted on another node (resume, the end of a rebuild): the ranges running here start again.
  // Also: an instance that could not start (the split check failed, or waits for a rebuild) is tried again.
  let resumeCheck: NodeJS.Timeout | undefined;
  if (ranges === undefined) {
    await fill();
    if (blocked.size > 0 || [...entries.values()].some((e) => e.instances.size === 0)) {
      resumeCheck = setInterval(() => {
        if (closed || [...entries.values()].every((e) => e.instances.size > 0)) return;
        void fill().catch((error: unknown) => options.logger.warn(`projections: ${messageOf(error)}`));
      }, options.resumeCheckMs ?? 5_000);
      resumeCheck.unref();
    }
  } else {
    let checking = false;
    let lastFailure = '';
    resumeCheck = setInterval(() => {
      if (checking || closed || held.size === 0) return;
      checking = true;
      fill()
        .then(() => store.list())
        .then((rows) => {
          lastFailure = '';
          for (const entry of entries.values()) {
            for (const [key, instance] of entry.instances) {
              const row = rows.find((r) => r.name === entry.projection.id.name && r.key === key);
              if (row !== undefined && !row.paused) instance.actor.tell({ type: 'start' });
            }
          }
        })
        .catch((error: unknown) => {
          const message = messageOf(error);
          if (message !== lastFailure) options.logger.warn(`projections: could not read the paused flags of the ranges running here: ${message}; trying again`);
          lastFailure = message;
        })
        .finally(() => (checking = false));
    }, options.resumeCheckMs ?? 1_000);
    resumeCheck.unref();
  }

  const projections: SlicedNodeProjections = {
    events: observer,
    ranges: ranges ?? [],
    list: () => Promise.all([...entries.values()].map(info)),
    get: async (name) => (entries.has(name) ? info(entryOf(name)) : undefined),
    pause: async (name) => {
      const entry = entryOf(name);
      for (const id of idsOf(entry)) await management.pause(id);
      return info(entry);
    },
    resume: async (name) => {
      const entry = entryOf(name);
      for (const id of idsOf(entry)) await management.resume(id);
      startHere(entry);
      return info(entry);
    },
    rebuild: async (name) => {
      const entry = entryOf(name);
      if (entry.rebuild?.state === 'running') return info(entry);
      // Another node's rebuild alive: refused before anything changes (taking the marker below decides, by the database's clock).
      const current = await readRebuildMarker(sql.executor, sql.schema, name);
      if (current !== undefined && current.abandonedAt === undefined && Date.now() - current.heartbeatAt.getTime() < rebuildStaleMs) throw new RebuildInProgressError(current);
      // Built under another split: the rebuild builds it under this one (its keys get the rebuild's offset).
      const forgotten = await forgetOtherSplits(sql.executor, sql.schema, name, split);
      if (forgotten.length > 0) options.logger.info(`projection ${name}: rebuilding under this split; the keys of the old one (${forgotten.join(', ')}) are dropped`, { projection: name });
      blocked.delete(name);
      const progress: { progress: RebuildProgress } = { progress: { done: 0, total: 0 } };
      // Resolves once this node holds the rebuild's marker; refused (409) while another node's rebuild is alive.
      const started = await startRebuild({
        ...(journal === undefined ? {} : { journal }),
        queries,
        store,
        executor: sql.executor,
        schema: sql.schema,
        table: entry.table,
        live: entry.projection,
        ...(ranges === undefined ? {} : { liveRanges: idsOf(entry) }),
        shadow: (table, key) => entry.make({ table, key }),
        onProgress: (p) => {
          progress.progress = p;
          if (entry.rebuild !== undefined) entry.rebuild.progress = p;
        },
      });
      const run = started.done.then(
        (applied) => {
          if (entry.rebuild !== undefined) entry.rebuild.state = 'done';
          // The live projection was paused for the swap: start its actor again from the swapped offset (other nodes' ranges notice the lifted pause).
          if (!closed) {
            startHere(entry);
            void fill().catch((error: unknown) => options.logger.warn(`projections: ${messageOf(error)}`));
          }
          options.logger.info(`projection ${name} rebuilt from the journal (${applied} events) and swapped in`, { projection: name });
        },
        (error: unknown) => {
          if (entry.rebuild !== undefined) Object.assign(entry.rebuild, { state: 'failed', error: messageOf(error) });
          if (!closed) startHere(entry);
          options.logger.error(`the rebuild of projection ${name} failed: ${messageOf(error)}`, { projection: name });
        },
      );
      entry.rebuild = { progress: progress.progress, state: 'running', run };
      return info(entry);
    },
    startRange: (range) => {
      checkRange(range);
      return inTurn(range, async () => {
        if (closed) return;
        held.set(sliceKey(range), range);
        await fill();
      });
    },
    stopRange: (range) => {
      checkRange(range);
      return inTurn(range, async () => {
        const key = sliceKey(range);
        held.delete(key);
        await Promise.all(
          [...entries.values()].map(async (entry) => {
            const instance = entry.instances.get(key);
            if (instance === undefined) return;
            entry.instances.delete(key);
            await system.stop(instance.actor);
          }),
        );
      });
    },
    statusView: () => view,
    runningRanges: () => {
      const first = entries.values().next().value;
      return first === undefined ? [] : [...first.instances.values()].flatMap((i) => (i.range === undefined ? [] : [i.range])).sort((a, b) => a.min - b.min);
    },
    close: async () => {
      closed = true;
      clearInterval(resumeCheck);
      clearInterval(rebuildCheck);
      await Promise.all([...entries.values()].flatMap((e) => (e.rebuild === undefined ? [] : [e.rebuild.run])));
      await Promise.all([...transitions.values()]);
      await terminate(system);
    },
  };
  return projections;
}

async function terminate(system: ActorSystem): Promise<void> {
  await system.terminate();
}

/** What an abandoned rebuild's record says: when it began, what was undone, what to do. */
function abandonedText(marker: RebuildMarker): string {
  const began = `the rebuild begun at ${marker.startedAt.toISOString()} by ${marker.owner} was abandoned (its last heartbeat at ${marker.heartbeatAt.toISOString()})`;
  const resumed = marker.pausedIds.length === 0 ? 'it had paused nothing' : `the pause it set on ${marker.pausedIds.map((id) => id.key).join(', ')} is lifted`;
  if (marker.swappedAt !== undefined) return `${began} after it swapped the rebuilt table in; ${resumed}, nothing else is left to do`;
  return `${began} before its swap; ${resumed} and its shadow table ${marker.shadowTable} dropped: the read model runs on as it was, start the rebuild again (dataflow projections rebuild ${marker.name})`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
