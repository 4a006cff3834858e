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

/** Sums of `BatchProcessed` events per pipeline and hour (epoch ms), keyed `<pipeline id>\u0000<hour>`. */
type HourlySums = Map<string, { readonly pipelineId: string; readonly hour: number; records: number; batches: number; failures: number }>;

/** Adds a sum of `batches` batches of persistence id `persistenceId` in `hour` to `sums`. */
function addSum(sums: HourlySums, persistenceId: string, hour: number, records: number, batches: number, failures: number): void {
  // A parallel pipeline's tasks (`orders.1`, ...) count towards the pipeline (ADR 0013).
  addPipelineSum(sums, pipelineTaskOf(pipelineIdOf(persistenceId)).pipelineId, hour, records, batches, failures);
}

/** Adds a sum of `batches` batches of pipeline `pipelineId` in `hour` to `sums`. */
function addPipelineSum(sums: HourlySums, pipelineId: string, hour: number, records: number, batches: number, failures: number): void {
  const key = `${pipelineId}\u0000${hour}`;
  const sum = sums.get(key);
  if (sum === undefined) sums.set(key, { pipelineId, hour, records, batches, failures });
  else {
    sum.records += records;
    sum.batches += batches;
    sum.failures += failures;
  }
}

/** Adds `sums` to the table: one upsert per pipeline and hour. */
async function writeHourlySums(tx: SqlQueryable, table: string, sums: HourlySums): Promise<void> {
  if (sums.size === 0) return;
  const rows = [...sums.values()];
  await tx.query(
    addHourlySums(table, 'unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(p, h, r, b, f)'),
    [rows.map((r) => r.pipelineId), rows.map((r) => r.hour), rows.map((r) => r.records), rows.map((r) => r.batches), rows.map((r) => r.failures)],
  );
}

/** Adds the `BatchProcessed` events to `pipeline_metrics_hourly`, one upsert per pipeline and hour of the group. */
export async function applyPipelineMetricsHourly(tx: SqlQueryable, table: string, envelopes: readonly EventEnvelope[]): Promise<void> {
  const sums: HourlySums = new Map();
  for (const envelope of envelopes) {
    const event = envelope.payload as PipelineEventPayload;
    if (event.type !== 'BatchProcessed') continue;
    addSum(sums, envelope.persistenceId, Math.floor((num(event.at) || envelope.timestamp) / HOUR_MS) * HOUR_MS, num(event.successCount), 1, num(event.failureCount));
  }
  await writeHourlySums(tx, table, sums);
}

/** Bytes a JSON number can start with (`-`, `0`-`9`), as `get_byte` gives them. */
const NUMBER_START_BYTES = '45, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57';

/**
 * The number after the key found at `key` (1-based, 0: absent) in a flat
 * payload (see `bulkPipelineMetricsHourly`), else 0 (what `num` does on the
 * handler path): when the value's first byte starts a JSON number, its text
 * runs to the next `,` (or the object's closing `}`). A JSON number is at most
 * 25 characters as JSON.stringify writes it.
 */
const flatNumber = (key: string, field: string) =>
  `CASE WHEN ${key} > 0 AND get_byte(payload, ${key} + ${field.length + 2}) IN (${NUMBER_START_BYTES})
        THEN rtrim(split_part(encode(substring(payload FROM ${key} + ${field.length + 3} FOR 40), 'escape'), ',', 1), '}')::double precision ELSE 0 END`;

/** A field of a decoded (jsonb) payload as a number, else 0. */
const jsonNumber = (field: string) => `CASE WHEN jsonb_typeof(doc -> '${field}') = 'number' THEN (doc -> '${field}')::double precision ELSE 0 END`;

/** The decoded payload (non-flat batches): the serializer writes an object that has a '$df' key as {"$df":"object","v":{...}}; the handler reads the inner object. */
const RAW = `convert_from(payload, 'UTF8')::jsonb`;
const DOC = `(CASE WHEN ${RAW} ->> '$df' = 'object' THEN ${RAW} -> 'v' ELSE ${RAW} END)`;

/**
 * `applyPipelineMetricsHourly` over a range of the journal, in SQL: each part
 * of the range is summed per persistence id and hour by one statement (the
 * events never reach Node), and the parts' sums are upserted as the handler
 * does. Events of another serializer cannot be read here: the range is
 * refused and the projection reads it event by event instead.
 *
 * The payloads are the JSON serializer's UTF-8 bytes (JSON.stringify: no
 * whitespace, keys unique). Most are flat: a `{` only as their first byte
 * and no `\`. In those, every `"` delimits a string and strings hold no
 * `"`, so `"successCount":` can only be the key itself, at the top level,
 * and its value runs to the next `,` or `}`: the statement finds the three
 * fields by byte position and reads their numbers without parsing the JSON
 * (`"type":"BatchProcessed"` likewise). Any other payload (a nested object,
 * an escape, an object the serializer wrapped because it has a `$df` key)
 * is decoded as `jsonb`, unwrapped as the serializer does, and read by
 * field. Either way a field that is not a JSON number counts as 0, as `num`
 * does in the handler; the odd-payload test holds both ways to the handler.
 *
 * Each step is fenced (`OFFSET 0`) so that the planner does not inline it
 * into the next: its columns are computed once per row, not once per use. The sums per persistence id and hour, and the
 * part's totals, come from one pass.
 */
export function bulkPipelineMetricsHourly(table: string): BulkCatchUp<HourlySums> {
  return {
    read: async (tx, range) => {
      const slices = range.slices === undefined ? '' : `AND e.entity_type = 'pipeline' AND e.slice BETWEEN ${range.slices.min} AND ${range.slices.max}`;
      // Right after a large ingest the planner's row estimates are stale (it expects one row): it would sort the events to group them
      // (spilling to disk at the default 4 MB) where a hash of the few groups is faster.
      await tx.query(`SET LOCAL work_mem = '32MB'`);
      await tx.query(`SET LOCAL enable_sort = off`);
      const rows = await tx.query<{ id: string | null; h: string | null; r: number | null; f: number | null; events: string; last_at: string | null; others: string }>(
        `WITH range_events AS (
           SELECT e.persistence_id AS id, e.written_at, e.payload,
                  e.serializer_id = 'json' AND e.persistence_id LIKE '${PERSISTENCE_PREFIX}%' AND e.event_type = 'BatchProcessed' AS batch,
                  e.serializer_id <> 'json' AND e.persistence_id LIKE '${PERSISTENCE_PREFIX}%' AS other
             FROM ${range.journalTable} e
            WHERE e.ordering > $1 AND e.ordering <= $2 AND NOT e.deleted AND $3 = ANY (e.tags) ${slices}
         ), shaped AS (
           -- Flat: '{' only as the first byte, no '\\' (0x5c) anywhere.
           SELECT *, batch AND get_byte(payload, 0) = 123 AND payload NOT LIKE '_%{%'::bytea AND position('\\x5c'::bytea IN payload) = 0 AS flat
             FROM range_events OFFSET 0
         ), positioned AS (
           -- Where the keys are (flat payloads).
           SELECT id, written_at, payload, batch, other, flat,
                  CASE WHEN flat THEN position('"type":"BatchProcessed"'::bytea IN payload) > 0 END AS flat_batch,
                  CASE WHEN flat THEN position('"at":'::bytea IN payload) END AS at_key,
                  CASE WHEN flat THEN position('"successCount":'::bytea IN payload) END AS successes_key,
                  CASE WHEN flat THEN position('"failureCount":'::bytea IN payload) END AS failures_key
             FROM shaped OFFSET 0
         ), fields AS (
           -- The rare JSON batches that are not flat are decoded once per field; no other event is decoded.
           SELECT id, written_at, other,
                  CASE WHEN flat THEN flat_batch WHEN batch THEN ${DOC} ->> 'type' = 'BatchProcessed' ELSE false END AS counted,
                  CASE WHEN flat THEN ${flatNumber('at_key', 'at')} WHEN batch THEN ${jsonNumber('at').replaceAll('doc', DOC)} ELSE 0 END AS at,
                  CASE WHEN flat THEN ${flatNumber('successes_key', 'successCount')} WHEN batch THEN ${jsonNumber('successCount').replaceAll('doc', DOC)} ELSE 0 END AS successes,
                  CASE WHEN flat THEN ${flatNumber('failures_key', 'failureCount')} WHEN batch THEN ${jsonNumber('failureCount').replaceAll('doc', DOC)} ELSE 0 END AS failures
             FROM positioned OFFSET 0
         )
         -- Per persistence id and hour of the counted events; the events not counted form the group (NULL, NULL). Every group counts towards the part's totals.
         SELECT id, h, sum(successes) AS r, count(*) AS events, sum(failures) AS f, max(written_at) AS last_at, count(*) FILTER (WHERE other) AS others
           FROM (SELECT CASE WHEN counted THEN id END AS id,
                        CASE WHEN counted THEN (floor(coalesce(nullif(at, 0), written_at) / ${HOUR_MS}) * ${HOUR_MS})::bigint END AS h,
                        successes, failures, written_at, other
                   FROM fields) k
          GROUP BY id, h`,
        [range.after, range.upTo, range.tag],
      );
      const sums: HourlySums = new Map();
      let events = 0;
      let others = 0;
      let lastEventAt: number | undefined;
      for (const row of rows) {
        events += Number(row.events);
        others += Number(row.others);
        if (row.last_at !== null) lastEventAt = Math.max(lastEventAt ?? Number(row.last_at), Number(row.last_at));
        if (row.id !== null && row.h !== null) addSum(sums, row.id, Number(row.h), Number(row.r), Number(row.events), Number(row.f));
      }
      if (others > 0) throw new BulkNotApplicableError(`${others} pipeline events after ordering ${range.after} use another serializer than json`);
      return { events, lastEventAt, value: sums };
    },
    write: async (tx, parts) => {
      const sums: HourlySums = new Map();
      for (const part of parts) for (const s of part.values()) addPipelineSum(sums, s.pipelineId, s.hour, s.records, s.batches, s.failures);
      await writeHourlySums(tx, table, sums);
    },
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
