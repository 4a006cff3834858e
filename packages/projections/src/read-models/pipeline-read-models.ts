/**
 * The pipeline read models of docs/domain.md, kept from the pipeline events
 * (tag `pipeline-events`) by two exactly-once projections (`groupedWithin`:
 * a group of events and the offset commit in one transaction):
 *
 * - `pipeline_status`: one row per pipeline, created at `PipelineCreated`
 *   (status `configured`, name, source and sink types); every lifecycle event
 *   sets `status` and `updated_at`; every `BatchProcessed` adds a batch, its
 *   successes to `total_records` and its failures to `total_failures`. A
 *   parallel pipeline's tasks k > 0 (`orders.1`, ADR 0013) add their
 *   batches to the pipeline's row (`orders`); their other events change
 *   nothing (task 0 stands for the pipeline's status). Read it with
 *   `PipelineStatusView` (`pipeline-status-view.ts`).
 * - `pipeline_metrics_hourly`: per pipeline and UTC hour of the event,
 *   `records_processed` (successes), `avg_batch_size` (records handled,
 *   successes and failures, per batch) and `error_rate` (failures over
 *   records handled); `batches` and `failures` hold the sums they come from.
 *
 * The tables are created by `migrateProjections`.
 */
import { pipelineTaskOf, type EventEnvelope } from '@dataflow/core';
import { quoteSchema, type SqlQueryable } from '@dataflow/persistence';
import { BulkNotApplicableError, groupedWithin, type BulkCatchUp, type HandlerRecoveryStrategy, type Projection } from '../runner/projection.js';
import type { SliceRange } from '../slices/slices.js';

/** The tag the pipeline read models read. */
export const PIPELINE_EVENTS_TAG = 'pipeline-events';

const PERSISTENCE_PREFIX = 'pipeline-';
const HOUR_MS = 3_600_000;

/** The pipeline id of a pipeline entity's persistence id (`pipeline-<id>`). */
export function pipelineIdOf(persistenceId: string): string {
  return persistenceId.startsWith(PERSISTENCE_PREFIX) ? persistenceId.slice(PERSISTENCE_PREFIX.length) : persistenceId;
}

interface PipelineEventPayload {
  readonly type?: unknown;
  readonly at?: unknown;
  readonly definition?: { readonly name?: unknown; readonly source?: { readonly type?: unknown }; readonly sink?: { readonly type?: unknown } };
  readonly successCount?: unknown;
  readonly failureCount?: unknown;
}

const STATUS_OF: Readonly<Record<string, string>> = {
  PipelineStarted: 'running',
  PipelineResumed: 'running',
  PipelineStopped: 'stopped',
  PipelinePaused: 'paused',
  PipelineFailed: 'failed',
  PipelineReset: 'configured',
};

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** Options shared by the read-model projections. */
export interface ReadModelOptions {
  /** The schema holding the tables (migrated with `migrateProjections`). */
  readonly schema: string;
  /** Default `default`; give each instance its own key when several run over slices. */
  readonly key?: string;
  /** Events per transaction (default 500) and the longest wait to fill a group (default 200 ms). */
  readonly groupSize?: number;
  readonly groupWithinMs?: number;
  readonly recovery?: HandlerRecoveryStrategy;
  /** The table name, default `pipeline_status` / `pipeline_metrics_hourly` (a rebuild writes a shadow table). */
  readonly table?: string;
  /** Run as one instance over these slices (pipelines are partitioned by their persistence id's slice). */
  readonly slices?: SliceRange;
}

/** Applies pipeline events to `pipeline_status` in order. */
export async function applyPipelineStatus(tx: SqlQueryable, table: string, envelopes: readonly EventEnvelope[]): Promise<void> {
  for (const envelope of envelopes) {
    const event = envelope.payload as PipelineEventPayload;
    // A parallel pipeline's task k > 0 (`orders.1`, ADR 0013) only adds its batches to the pipeline's row; task 0 (the pipeline's own id) stands for its status.
    const { pipelineId, index } = pipelineTaskOf(pipelineIdOf(envelope.persistenceId));
    const at = new Date(num(event.at) || envelope.timestamp);
    if (index > 0) {
      if (event.type === 'BatchProcessed') await addTaskBatch(tx, table, pipelineId, num(event.successCount), num(event.failureCount), at);
      continue;
    }
    switch (event.type) {
      case 'PipelineCreated':
      case 'ConfigUpdated': {
        const d = event.definition;
        await tx.query(
          `INSERT INTO ${table} AS s (pipeline_id, pipeline_name, status, source_type, sink_type, created_at, updated_at)
           VALUES ($1, $2, 'configured', $3, $4, $5, $5)
           ON CONFLICT (pipeline_id) DO UPDATE SET pipeline_name = EXCLUDED.pipeline_name, source_type = EXCLUDED.source_type, sink_type = EXCLUDED.sink_type,
             status = CASE WHEN $6 OR s.status IS NULL THEN 'configured' ELSE s.status END, created_at = COALESCE(s.created_at, EXCLUDED.created_at), updated_at = EXCLUDED.updated_at`,
          [pipelineId, text(d?.name), text(d?.source?.type), text(d?.sink?.type), at, event.type === 'PipelineCreated'],
        );
        break;
      }
      case 'PipelineDeleted':
        // The hourly metrics keep the deleted pipeline's history; its status row goes.
        await tx.query(`DELETE FROM ${table} WHERE pipeline_id = $1`, [pipelineId]);
        break;
      case 'BatchProcessed':
        await tx.query(
          `UPDATE ${table} SET total_batches = total_batches + 1, total_records = total_records + $2, total_failures = total_failures + $3, updated_at = $4 WHERE pipeline_id = $1`,
          [pipelineId, num(event.successCount), num(event.failureCount), at],
        );
        break;
      default: {
        const status = typeof event.type === 'string' ? STATUS_OF[event.type] : undefined;
        if (status !== undefined) await tx.query(`UPDATE ${table} SET status = $2, updated_at = $3 WHERE pipeline_id = $1`, [pipelineId, status, at]);
      }
    }
  }
}

/**
 * A batch of task k > 0 of a parallel pipeline, added to the pipeline's row.
 * An upsert: over slice ranges the task and task 0 may be in different
 * ranges, and the task's range may run ahead of task 0's, before the row
 * exists. Such a row has no status until task 0's `PipelineCreated` fills it
 * in (keeping the counts); readers skip rows without a status.
 */
async function addTaskBatch(tx: SqlQueryable, table: string, pipelineId: string, successes: number, failures: number, at: Date): Promise<void> {
  await tx.query(
    `INSERT INTO ${table} AS s (pipeline_id, total_batches, total_records, total_failures, updated_at) VALUES ($1, 1, $2, $3, $4)
     ON CONFLICT (pipeline_id) DO UPDATE SET total_batches = s.total_batches + 1, total_records = s.total_records + EXCLUDED.total_records,
       total_failures = s.total_failures + EXCLUDED.total_failures, updated_at = EXCLUDED.updated_at`,
    [pipelineId, successes, failures, at],
  );
}

/**
 * The upsert both paths share: rows `(p, h, r, b, f)` (pipeline, hour in epoch
 * ms, records, batches, failures) from `source` added to the table's sums,
 * with the average batch size and error rate recomputed from them.
 */
function addHourlySums(table: string, source: string): string {
  return `INSERT INTO ${table} AS m (pipeline_id, hour, records_processed, batches, failures, avg_batch_size, error_rate)
     SELECT p, to_timestamp(h / 1000.0), r, b, f, (r + f)::double precision / b, CASE WHEN r + f = 0 THEN 0 ELSE f::double precision / (r + f) END
       FROM ${source}
     ON CONFLICT (pipeline_id, hour) DO UPDATE SET
       records_processed = m.records_processed + EXCLUDED.records_processed,
       batches = m.batches + EXCLUDED.batches,
       failures = m.failures + EXCLUDED.failures,
       avg_batch_size = (m.records_processed + EXCLUDED.records_processed + m.failures + EXCLUDED.failures)::double precision / (m.batches + EXCLUDED.batches),
       error_rate = CASE WHEN m.records_processed + EXCLUDED.records_processed + m.failures + EXCLUDED.failures = 0 THEN 0
         ELSE (m.failures + EXCLUDED.failures)::double precision / (m.records_processed + EXCLUDED.records_processed + m.failures + EXCLUDED.failures) END`;
}

/** Adds the `BatchProcessed` events to `pipeline_metrics_hourly`, one upsert per pipeline and hour of the group. */
export async function applyPipelineMetricsHourly(tx: SqlQueryable, table: string, envelopes: readonly EventEnvelope[]): Promise<void> {
  const sums = new Map<string, { pipelineId: string; hour: number; records: number; batches: number; failures: number }>();
  for (const envelope of envelopes) {
    const event = envelope.payload as PipelineEventPayload;
    if (event.type !== 'BatchProcessed') continue;
    // A parallel pipeline's tasks (`orders.1`, ...) count towards the pipeline (ADR 0013).
    const pipelineId = pipelineTaskOf(pipelineIdOf(envelope.persistenceId)).pipelineId;
    const hour = Math.floor((num(event.at) || envelope.timestamp) / HOUR_MS) * HOUR_MS;
    const key = `${pipelineId}\u0000${hour}`;
    const sum = sums.get(key) ?? { pipelineId, hour, records: 0, batches: 0, failures: 0 };
    sum.records += num(event.successCount);
    sum.failures += num(event.failureCount);
    sum.batches += 1;
    sums.set(key, sum);
  }
  if (sums.size === 0) return;
  const rows = [...sums.values()];
  await tx.query(
    addHourlySums(table, 'unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(p, h, r, b, f)'),
    [rows.map((r) => r.pipelineId), rows.map((r) => r.hour), rows.map((r) => r.records), rows.map((r) => r.batches), rows.map((r) => r.failures)],
  );
}

/**
 * A JSON number field of the payload, else 0 (what `num` does on the handler
 * path). The fields stay `json` (their text as written): converting them to
 * `jsonb` costs a third of the statement and changes no value.
 */
const jsonNumber = (field: string) => `CASE WHEN json_typeof(d."${field}") = 'number' THEN (d."${field}" #>> '{}')::double precision ELSE 0 END`;

/**
 * `applyPipelineMetricsHourly` over a range of the journal in one statement:
 * the same upsert, fed by a server-side aggregation of the range's
 * `BatchProcessed` events (payloads decoded from the JSON serializer's
 * UTF-8) instead of events shipped to Node and back. Events of another
 * serializer cannot be read here: the range is refused (rolled back) and the
 * projection reads it event by event instead.
 */
export function bulkPipelineMetricsHourly(table: string): BulkCatchUp {
  return async (tx, range) => {
    const slices = range.slices === undefined ? '' : `AND e.entity_type = 'pipeline' AND e.slice BETWEEN ${range.slices.min} AND ${range.slices.max}`;
    const inRange = `e.ordering > $1 AND e.ordering <= $2 AND NOT e.deleted AND $3 = ANY (e.tags) ${slices}`;
    // Right after a large ingest the planner's row estimates are stale and its sort of the groups spills to disk at the default 4 MB.
    await tx.query(`SET LOCAL work_mem = '32MB'`);
    const [row] = await tx.query<{ events: string; last_at: string | null; foreign: string }>(
      `WITH batches AS (
         -- One parse per event (json_to_record), only the four fields used taken out as values.
         -- A task's id (<id>.<k>, k 1..999) counts towards its pipeline, as pipelineTaskOf reads it.
         SELECT regexp_replace(substring(e.persistence_id FROM ${PERSISTENCE_PREFIX.length + 1}), '^(.+)[.][1-9][0-9]{0,2}$', '\\1') AS p, e.written_at,
                ${jsonNumber('at')} AS at, ${jsonNumber('successCount')} AS successes, ${jsonNumber('failureCount')} AS failures
           FROM ${range.journalTable} e CROSS JOIN LATERAL json_to_record(convert_from(e.payload, 'UTF8')::json) AS d(type text, at json, "successCount" json, "failureCount" json)
          WHERE ${inRange} AND e.serializer_id = 'json' AND e.persistence_id LIKE '${PERSISTENCE_PREFIX}%' AND e.event_type = 'BatchProcessed' AND d.type = 'BatchProcessed'
       ), sums AS (
         SELECT p, (floor((CASE WHEN at <> 0 THEN at ELSE written_at END) / ${HOUR_MS}) * ${HOUR_MS})::bigint AS h,
                sum(successes)::bigint AS r, count(*)::bigint AS b, sum(failures)::bigint AS f
           FROM batches GROUP BY 1, 2
       ), upserted AS (
         ${addHourlySums(table, 'sums')}
         RETURNING 1
       )
       SELECT count(*) AS events, max(e.written_at) AS last_at,
              count(*) FILTER (WHERE e.serializer_id <> 'json' AND e.persistence_id LIKE '${PERSISTENCE_PREFIX}%') AS foreign,
              (SELECT count(*) FROM upserted) AS rows
         FROM ${range.journalTable} e WHERE ${inRange}`,
      [range.after, range.upTo, range.tag],
    );
    if (Number(row?.foreign ?? 0) > 0) {
      throw new BulkNotApplicableError(`${row?.foreign} pipeline events after ordering ${range.after} use another serializer than json`);
    }
    return { events: Number(row?.events ?? 0), lastEventAt: row?.last_at === null || row?.last_at === undefined ? undefined : Number(row.last_at) };
  };
}

/**
 * The `pipeline_status` projection.
 *
 * @example
 * ```ts
 * spawnProjection(system, pipelineStatusProjection({ schema: 'dataflow' }), { queries, store, executor });
 * ```
 */
export function pipelineStatusProjection(options: ReadModelOptions): Projection {
  const table = `${quoteSchema(options.schema)}.${tableName(options.table ?? 'pipeline_status')}`;
  return groupedWithin({
    name: 'pipeline_status',
    tag: PIPELINE_EVENTS_TAG,
    size: options.groupSize ?? 500,
    withinMs: options.groupWithinMs ?? 200,
    handler: (envelopes, tx) => applyPipelineStatus(tx, table, envelopes),
    ...(options.key === undefined ? {} : { key: options.key }),
    ...(options.recovery === undefined ? {} : { recovery: options.recovery }),
    // Pipeline entities are `pipeline-<id>`: over a slice range the store can read by eventsBySlices.
    ...(options.slices === undefined ? {} : { slices: options.slices, entityType: 'pipeline' }),
  });
}

/** The `pipeline_metrics_hourly` projection. */
export function pipelineMetricsHourlyProjection(options: ReadModelOptions): Projection {
  const table = `${quoteSchema(options.schema)}.${tableName(options.table ?? 'pipeline_metrics_hourly')}`;
  return groupedWithin({
    name: 'pipeline_metrics_hourly',
    tag: PIPELINE_EVENTS_TAG,
    size: options.groupSize ?? 500,
    withinMs: options.groupWithinMs ?? 200,
    handler: (envelopes, tx) => applyPipelineMetricsHourly(tx, table, envelopes),
    bulk: bulkPipelineMetricsHourly(table),
    ...(options.key === undefined ? {} : { key: options.key }),
    ...(options.recovery === undefined ? {} : { recovery: options.recovery }),
    // Pipeline entities are `pipeline-<id>`: over a slice range the store can read by eventsBySlices.
    ...(options.slices === undefined ? {} : { slices: options.slices, entityType: 'pipeline' }),
  });
}

function tableName(name: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new RangeError(`Invalid table name ${JSON.stringify(name)}`);
  return name;
}
