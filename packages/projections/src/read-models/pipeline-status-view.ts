/**
 * Reads the `pipeline_status` read model: its rows (one per pipeline, a
 * parallel pipeline's tasks counted towards it), all or by status, one row
 * by id, and how far the view is behind the journal, from the projection's
 * stored offsets over every key it runs under (`default`, or the slice
 * ranges `slices-<min>-<max>` of a cluster), whichever node runs them.
 *
 * Rows without a status (a task's batches that arrived before its
 * pipeline's `PipelineCreated`, over slice ranges) and rows named by a task
 * id (`orders.1`, written before tasks counted towards their pipeline) are
 * not pipelines and are never returned.
 */
import { quoteSchema, type SqlExecutor } from '@dataflow/persistence';
import { ProjectionManagement, type ProjectionLag } from '../offset-store/projection-management.js';
import { ProjectionOffsetStore } from '../offset-store/projection-offset-store.js';
import { rangeOfKey, UNSPLIT_KEY } from '../offset-store/projection-split.js';
import { PIPELINE_EVENTS_TAG } from './pipeline-read-models.js';

/** One pipeline as `pipeline_status` has it. */
export interface PipelineStatusRow {
  readonly id: string;
  readonly name: string | null;
  /** `configured`, `running`, `paused`, `stopped` or `failed` (task 0's, for a parallel pipeline). */
  readonly status: string;
  readonly sourceType: string | null;
  readonly sinkType: string | null;
  /** Records processed, summed over a parallel pipeline's tasks. */
  readonly totalRecords: number;
  readonly totalBatches: number;
  readonly totalFailures: number;
  readonly createdAt: Date | null;
  readonly updatedAt: Date | null;
}

/** How far the view is behind the journal. */
export interface PipelineStatusViewLag {
  /** The events not applied yet, summed over the keys (their slices are disjoint), and the oldest one's age; unknown when a key's offset is time-based. */
  readonly lag: ProjectionLag;
  /** Epoch ms of the latest event applied under any key; undefined before the first. */
  readonly lastEventAt: number | undefined;
  readonly eventsApplied: number;
  /** The keys read (`default`, or `slices-<min>-<max>` per range). */
  readonly keys: readonly string[];
}

export interface PipelineStatusViewOptions {
  /** The schema of the read model and the offsets (migrated with `migrateProjections`). */
  readonly schema: string;
  /** Default `pipeline_status`. */
  readonly table?: string;
  /** The schema of the journal's tables for the lag; default `schema`. */
  readonly journalSchema?: string;
  /** Epoch ms, for the lag in seconds; default `Date.now`. */
  readonly now?: () => number;
  /**
   * The keys the view is kept under (`splitKeys(ranges)`'s: `default`, or one
   * per slice range), so that a range that never ran counts as behind by all
   * its events; default the keys stored (`default` when none is).
   */
  readonly keys?: readonly string[];
}

interface Row {
  pipeline_id: string;
  pipeline_name: string | null;
  status: string;
  source_type: string | null;
  sink_type: string | null;
  total_records: string | number;
  total_batches: string | number;
  total_failures: string | number;
  created_at: Date | string | null;
  updated_at: Date | string | null;
}

const PROJECTION_NAME = 'pipeline_status';

/**
 * @example
 * ```ts
 * const view = new PipelineStatusView(executor, { schema: 'dataflow' });
 * const running = await view.list({ status: 'running' });
 * const orders = await view.get('orders'); // undefined when the view has no such pipeline (yet)
 * const { lag } = await view.lag();
 * if (lag.kind === 'known') report(lag.events, lag.seconds);
 * ```
 */
export class PipelineStatusView {
  readonly #executor: SqlExecutor;
  readonly #table: string;
  readonly #offsets: ProjectionOffsetStore;
  readonly #management: ProjectionManagement;
  readonly #keys: readonly string[] | undefined;

  constructor(executor: SqlExecutor, options: PipelineStatusViewOptions) {
    const table = options.table ?? PROJECTION_NAME;
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(table)) throw new RangeError(`Invalid table name ${JSON.stringify(table)}`);
    this.#executor = executor;
    this.#table = `${quoteSchema(options.schema)}.${table}`;
    this.#offsets = new ProjectionOffsetStore(executor, options.schema);
    this.#keys = options.keys;
    this.#management = new ProjectionManagement(this.#offsets, {
      ...(options.journalSchema === undefined ? {} : { journalSchema: options.journalSchema }),
      ...(options.now === undefined ? {} : { now: options.now }),
    });
  }

  /** Every pipeline of the view by id, or only those in `status`. */
  async list(filter: { readonly status?: string } = {}): Promise<PipelineStatusRow[]> {
    const rows = await this.#executor.query<Row>(
      `${this.#select()}${filter.status === undefined ? '' : ' AND status = $1'} ORDER BY pipeline_id`,
      filter.status === undefined ? [] : [filter.status],
    );
    return rows.map(rowOf);
  }

  /** The pipeline's row; undefined when the view has none (not created, deleted, or not applied yet). */
  async get(pipelineId: string): Promise<PipelineStatusRow | undefined> {
    const [row] = await this.#executor.query<Row>(`${this.#select()} AND pipeline_id = $1`, [pipelineId]);
    return row === undefined ? undefined : rowOf(row);
  }

  /** How far the view is behind: over the keys of its split (given, else every stored key of a split: a rebuild's shadow key is not the view). */
  async lag(): Promise<PipelineStatusViewLag> {
    const keys = this.#keys ?? (await this.#storedKeys());
    const statuses = await Promise.all(
      keys.map((key) => {
        // A key of no split (given by the caller) is read over every slice.
        const range = key === UNSPLIT_KEY ? undefined : rangeOfKey(key);
        return this.#management.status({ name: PROJECTION_NAME, key }, PIPELINE_EVENTS_TAG, range);
      }),
    );
    const unknown = statuses.find((s) => s.lag.kind === 'unknown');
    const lag: ProjectionLag =
      unknown !== undefined
        ? unknown.lag
        : {
            kind: 'known',
            events: statuses.reduce((sum, s) => sum + (s.lag.kind === 'known' ? s.lag.events : 0), 0),
            seconds: Math.max(0, ...statuses.map((s) => (s.lag.kind === 'known' ? s.lag.seconds : 0))),
          };
    const lastEvents = statuses.flatMap((s) => (s.lastEventAt === undefined ? [] : [s.lastEventAt]));
    return {
      lag,
      lastEventAt: lastEvents.length === 0 ? undefined : Math.max(...lastEvents),
      eventsApplied: statuses.reduce((sum, s) => sum + s.eventsApplied, 0),
      keys,
    };
  }

  async #storedKeys(): Promise<readonly string[]> {
    const stored = (await this.#offsets.list()).filter((row) => row.name === PROJECTION_NAME && rangeOfKey(row.key) !== undefined).map((row) => row.key);
    return stored.length === 0 ? [UNSPLIT_KEY] : stored;
  }

  #select(): string {
    return `SELECT pipeline_id, pipeline_name, status, source_type, sink_type, total_records, total_batches, total_failures, created_at, updated_at
              FROM ${this.#table} WHERE status IS NOT NULL AND pipeline_id !~ '^.+[.][1-9][0-9]{0,2}$'`;
  }
}

const dateOf = (value: Date | string | null): Date | null => (value === null ? null : new Date(value));

function rowOf(row: Row): PipelineStatusRow {
  return {
    id: row.pipeline_id,
    name: row.pipeline_name,
    status: row.status,
    sourceType: row.source_type,
    sinkType: row.sink_type,
    totalRecords: Number(row.total_records),
    totalBatches: Number(row.total_batches),
    totalFailures: Number(row.total_failures),
    createdAt: dateOf(row.created_at),
    updatedAt: dateOf(row.updated_at),
  };
}
