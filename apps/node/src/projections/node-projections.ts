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
 */
import { createActorSystem, type ActorRef, type ActorSystem, type Instrumentation, type PersistencePlugin, type ReadJournal } from '@dataflow/core';
import type { SqlExecutor } from '@dataflow/persistence';
import {
  checkProjectionsSchema,
  createProjectionStatusObserver,
  migrateProjections,
  pipelineMetricsHourlyProjection,
  pipelineStatusProjection,
  ProjectionManagement,
  ProjectionOffsetStore,
  rebuildReadModel,
  spawnProjection,
  sqlJournalOf,
  type Projection,
  type ProjectionLag,
  type ProjectionMessage,
  type ProjectionStatusEvent,
  type RebuildProgress,
} from '@dataflow/projections';
import { ProjectionNotFoundError } from '../node/node-errors.js';
import type { NodeLogger } from '../node/node-logger.js';

/** What the node reports about one projection. */
export interface ProjectionInfo {
  readonly name: string;
  readonly key: string;
  /** The table it keeps. */
  readonly table: string;
  readonly state: 'running' | 'paused' | 'failing' | 'rebuilding';
  readonly eventsApplied: number;
  readonly lastEventAt: string | null;
  readonly lag: ProjectionLag;
  readonly lastError: string | null;
  readonly rebuild: (RebuildProgress & { readonly state: 'running' | 'done' | 'failed'; readonly error?: string }) | null;
}

/** The projections of a node. */
export interface NodeProjections {
  readonly events: Instrumentation<ProjectionStatusEvent>;
  list(): Promise<readonly ProjectionInfo[]>;
  /** Undefined when no projection has this name. */
  get(name: string): Promise<ProjectionInfo | undefined>;
  pause(name: string): Promise<ProjectionInfo>;
  resume(name: string): Promise<ProjectionInfo>;
  /** Starts a rebuild and returns at once; progress shows in `get(name).rebuild`. A rebuild already running is returned as it is. */
  rebuild(name: string): Promise<ProjectionInfo>;
  close(): Promise<void>;
}

export interface NodeProjectionsOptions {
  readonly persistence: PersistencePlugin;
  readonly logger: NodeLogger;
  /** `auto`: create or migrate the projections' tables at start; `check`: refuse a schema missing a migration. */
  readonly migrate: 'auto' | 'check';
}

interface Entry {
  readonly projection: Projection;
  readonly table: string;
  readonly shadow: (table: string, key: string) => Projection;
  actor: ActorRef<ProjectionMessage>;
  rebuild: { progress: RebuildProgress; state: 'running' | 'done' | 'failed'; error?: string; run: Promise<void> } | undefined;
}

/** The journal's database, when the store has one. */
function sqlOf(persistence: PersistencePlugin): { readonly executor: SqlExecutor; readonly schema: string } | undefined {
  const candidate = persistence as Partial<{ executor: SqlExecutor; schema: string }>;
  return candidate.executor !== undefined && typeof candidate.schema === 'string' ? { executor: candidate.executor, schema: candidate.schema } : undefined;
}

/**
 * Starts the read-model projections on the node's store.
 *
 * @example
 * ```ts
 * const projections = await startNodeProjections({ persistence: node.persistence, logger, migrate: 'auto' });
 * for (const p of (await projections?.list()) ?? []) logger.info(`${p.name}: ${p.eventsApplied} events`);
 * ```
 */
export async function startNodeProjections(options: NodeProjectionsOptions): Promise<NodeProjections | undefined> {
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
    if (event.type === 'error') options.logger.warn(`projection ${event.id.name}: ${messageOf(event.error)} (${event.outcome}, attempt ${event.attempt})`, { projection: event.id.name });
  });
  const entries = new Map<string, Entry>();
  const add = (projection: Projection, table: string, shadow: Entry['shadow']): void => {
    entries.set(projection.id.name, { projection, table, shadow, actor: spawnProjection(system, projection, deps), rebuild: undefined });
  };
  add(pipelineStatusProjection({ schema: sql.schema }), 'pipeline_status', (table, key) => pipelineStatusProjection({ schema: sql.schema, table, key }));
  add(pipelineMetricsHourlyProjection({ schema: sql.schema }), 'pipeline_metrics_hourly', (table, key) =>
    pipelineMetricsHourlyProjection({ schema: sql.schema, table, key }),
  );

  const entryOf = (name: string): Entry => {
    const entry = entries.get(name);
    if (entry === undefined) throw new ProjectionNotFoundError(name, [...entries.keys()]);
    return entry;
  };
  const info = async (entry: Entry): Promise<ProjectionInfo> => {
    const status = await management.status(entry.projection.id, entry.projection.tag);
    const last = observer.last(entry.projection.id);
    const failing = last?.type === 'error' || (last?.type === 'stopped' && last.reason === 'failed');
    const rebuild = entry.rebuild;
    return {
      name: entry.projection.id.name,
      key: entry.projection.id.key,
      table: entry.table,
      state: rebuild?.state === 'running' ? 'rebuilding' : status.paused ? 'paused' : failing ? 'failing' : 'running',
      eventsApplied: status.eventsApplied,
      lastEventAt: status.lastEventAt === undefined ? null : new Date(status.lastEventAt).toISOString(),
      lag: status.lag,
      lastError: status.lastError ?? null,
      rebuild: rebuild === undefined ? null : { ...rebuild.progress, state: rebuild.state, ...(rebuild.error === undefined ? {} : { error: rebuild.error }) },
    };
  };
  let closed = false;
  return {
    events: observer,
    list: () => Promise.all([...entries.values()].map(info)),
    get: async (name) => (entries.has(name) ? info(entryOf(name)) : undefined),
    pause: async (name) => {
      const entry = entryOf(name);
      await management.pause(entry.projection.id);
      return info(entry);
    },
    resume: async (name) => {
      const entry = entryOf(name);
      await management.resume(entry.projection.id);
      entry.actor.tell({ type: 'start' });
      return info(entry);
    },
    rebuild: async (name) => {
      const entry = entryOf(name);
      if (entry.rebuild?.state === 'running') return info(entry);
      const progress: { progress: RebuildProgress } = { progress: { done: 0, total: 0 } };
      const run = rebuildReadModel({
        ...(journal === undefined ? {} : { journal }),
        queries,
        store,
        executor: sql.executor,
        schema: sql.schema,
        table: entry.table,
        live: entry.projection,
        shadow: entry.shadow,
        onProgress: (p) => {
          progress.progress = p;
          if (entry.rebuild !== undefined) entry.rebuild.progress = p;
        },
      }).then(
        (applied) => {
          if (entry.rebuild !== undefined) entry.rebuild.state = 'done';
          // The live projection was paused for the swap: start its actor again from the swapped offset.
          if (!closed) entry.actor.tell({ type: 'start' });
          options.logger.info(`projection ${name} rebuilt from the journal (${applied} events) and swapped in`, { projection: name });
        },
        (error: unknown) => {
          if (entry.rebuild !== undefined) Object.assign(entry.rebuild, { state: 'failed', error: messageOf(error) });
          if (!closed) entry.actor.tell({ type: 'start' });
          options.logger.error(`the rebuild of projection ${name} failed: ${messageOf(error)}`, { projection: name });
        },
      );
      entry.rebuild = { progress: progress.progress, state: 'running', run };
      return info(entry);
    },
    close: async () => {
      closed = true;
      await Promise.all([...entries.values()].flatMap((e) => (e.rebuild === undefined ? [] : [e.rebuild.run])));
      await terminate(system);
    },
  };
}

async function terminate(system: ActorSystem): Promise<void> {
  await system.terminate();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
