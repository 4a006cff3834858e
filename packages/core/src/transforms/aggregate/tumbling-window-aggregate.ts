/**
 * The tumbling-window aggregate: groups records by fields into fixed,
 * non-overlapping windows of `windowMs`, by event time (a timestamp field) or
 * by processing time (the pipeline's clock), and emits one record per group
 * when a window closes.
 *
 * Event time: the watermark is the highest timestamp seen minus
 * `allowedLatenessMs`; a window closes once its end is at or below the
 * watermark, and a record for a window that is already closed is rejected as
 * `late-record`. Records are judged in order against the running watermark, so
 * the windows emitted do not depend on how records were split into batches.
 * Processing time: a window closes when the clock reaches its end, also on an
 * `apply` with no records (the pipeline's tick).
 *
 * The state is plain JSON, so the pipeline snapshots it with its own state.
 */
import * as z from 'zod';
import type { DataRecord, JsonValue } from '../../connector/data-record.js';
import { parseFieldPath } from '../expression/expression-parser.js';
import { getPath, withPath, type FieldPath } from '../field-path/field-path.js';
import { fieldPathSchema } from '../field-path/field-path-schema.js';
import { stageErrorPolicySchema } from '../stage-error-policy.js';
import type { RecordRejectedError } from '../transform-errors.js';
import { rejectRecord, type RecordFailure, type StatefulTransform, type StatefulTransformResult } from '../transform.js';

/** The aggregation functions. */
export type AggregationOperation = 'count' | 'sum' | 'avg' | 'min' | 'max' | 'first' | 'last' | 'collect';

const aggregationSchema = z
  .strictObject({
    op: z.enum(['count', 'sum', 'avg', 'min', 'max', 'first', 'last', 'collect'], {
      error: "op must be one of 'count', 'sum', 'avg', 'min', 'max', 'first', 'last', 'collect'",
    }),
    field: fieldPathSchema.optional(),
    as: fieldPathSchema,
  })
  .superRefine((aggregation, ctx) => {
    if (aggregation.op !== 'count' && aggregation.field === undefined) {
      ctx.addIssue({ code: 'custom', path: ['field'], message: `The ${aggregation.op} aggregation needs a field` });
    }
  });

/**
 * Schema of an aggregate stage. Without `timestampField` windows use
 * processing time.
 *
 * @example
 * ```ts
 * aggregateDefinitionSchema.parse({
 *   type: 'aggregate',
 *   groupBy: ['host'],
 *   windowMs: 60_000,
 *   timestampField: 'ts',
 *   aggregations: [{ op: 'count', as: 'requests' }, { op: 'avg', field: 'latencyMs', as: 'avgLatencyMs' }],
 * });
 * ```
 */
export const aggregateDefinitionSchema = z.strictObject({
  type: z.literal('aggregate'),
  groupBy: z.array(fieldPathSchema).default([]),
  windowMs: z.int('windowMs must be an integer number of milliseconds').min(1, 'windowMs must be at least 1'),
  timestampField: fieldPathSchema.optional(),
  allowedLatenessMs: z.int().min(0).default(0),
  aggregations: z.array(aggregationSchema).min(1, 'Give at least one aggregation'),
  windowStartField: fieldPathSchema.default('windowStart'),
  windowEndField: fieldPathSchema.default('windowEnd'),
  onError: stageErrorPolicySchema,
});

/** A validated aggregate stage definition. */
export type AggregateDefinition = z.output<typeof aggregateDefinitionSchema>;

/**
 * The running value of one aggregation: a number (count, sum), `{ sum, count }`
 * (avg), the extreme so far or null (min, max), `{ value }` or null (first,
 * last), or the values so far (collect).
 */
export type AccumulatorState = number | null | { readonly sum: number; readonly count: number } | { readonly value: JsonValue } | readonly JsonValue[];

/** The serializable state of a tumbling-window aggregate: the watermark and the open windows. */
export interface TumblingWindowState {
  /** Event time only: highest timestamp seen minus the allowed lateness; null before the first record. */
  readonly watermark: number | null;
  /** Open windows, ordered by start; groups in first-seen order. */
  readonly windows: readonly {
    readonly start: number;
    readonly groups: readonly { readonly key: readonly JsonValue[]; readonly accumulators: readonly AccumulatorState[] }[];
  }[];
}

interface Aggregation {
  readonly op: AggregationOperation;
  readonly field: FieldPath | undefined;
  readonly as: FieldPath;
}

type MutableGroup = { key: JsonValue[]; accumulators: AccumulatorState[] };

/**
 * Creates a tumbling-window aggregate. Missing and null values are ignored by
 * every aggregation except a `count` without field (which counts records);
 * `sum`, `avg`, `min` and `max` reject a record whose value is not a number
 * (`not-a-number`), and a timestamp that is neither epoch milliseconds nor an
 * ISO date string rejects it as `invalid-timestamp`. A rejected record changes
 * no accumulator.
 *
 * @example
 * ```ts
 * const t = createTumblingWindowAggregate(
 *   aggregateDefinitionSchema.parse({ type: 'aggregate', windowMs: 1000, timestampField: 'ts', aggregations: [{ op: 'count', as: 'n' }] }),
 *   'transforms[0]',
 * );
 * const first = t.apply(t.initialState(), [{ ts: 100 }, { ts: 900 }], { now: 0 }); // nothing closed yet
 * const second = t.apply(first.state, [{ ts: 1200 }], { now: 0 });
 * // second.records: [{ windowStart: 0, windowEnd: 1000, n: 2 }]
 * ```
 */
export function createTumblingWindowAggregate(definition: AggregateDefinition, stage: string): StatefulTransform<TumblingWindowState> {
  const groupBy = definition.groupBy.map((path) => parseFieldPath(path));
  const timestampField = definition.timestampField === undefined ? undefined : parseFieldPath(definition.timestampField);
  const aggregations: Aggregation[] = definition.aggregations.map((a) => ({
    op: a.op,
    field: a.field === undefined ? undefined : parseFieldPath(a.field),
    as: parseFieldPath(a.as),
  }));
  const windowStartField = parseFieldPath(definition.windowStartField);
  const windowEndField = parseFieldPath(definition.windowEndField);
  const { windowMs, allowedLatenessMs } = definition;

  function emit(start: number, groups: readonly MutableGroup[]): DataRecord[] {
    return groups.map((group) => {
      let record: DataRecord = {};
      groupBy.forEach((path, i) => (record = withPath(record, path, group.key[i] ?? null)));
      record = withPath(record, windowStartField, start);
      record = withPath(record, windowEndField, start + windowMs);
      aggregations.forEach((aggregation, i) => {
        record = withPath(record, aggregation.as, result(aggregation.op, group.accumulators[i] ?? null));
      });
      return record;
    });
  }

  function close(windows: Map<number, Map<string, MutableGroup>>, isClosed: (end: number) => boolean): DataRecord[] {
    const emitted: DataRecord[] = [];
    for (const start of [...windows.keys()].sort((a, b) => a - b)) {
      if (!isClosed(start + windowMs)) continue;
      emitted.push(...emit(start, [...(windows.get(start) as Map<string, MutableGroup>).values()]));
      windows.delete(start);
    }
    return emitted;
  }

  return {
    kind: 'stateful',
    type: 'aggregate',
    stage,
    initialState: () => ({ watermark: null, windows: [] }),

    apply(state, records, { now }): StatefulTransformResult<TumblingWindowState> {
      const windows = thaw(state);
      let watermark = state.watermark;
      const failures: RecordFailure[] = [];
      for (const record of records) {
        const timestamp = timestampField === undefined ? now : readTimestamp(record, timestampField);
        if (typeof timestamp !== 'number') {
          failures.push({ record, stage, error: timestamp });
          continue;
        }
        const start = Math.floor(timestamp / windowMs) * windowMs;
        if (timestampField !== undefined && watermark !== null && start + windowMs <= watermark) {
          const error = rejectRecord(
            'late-record',
            `Record at ${timestamp} belongs to window [${start}, ${start + windowMs}) which closed at watermark ${watermark}`,
          );
          failures.push({ record, stage, error });
          continue;
        }
        const values = aggregations.map((aggregation) => (aggregation.field === undefined ? undefined : getPath(record, aggregation.field)));
        const invalid = aggregations.findIndex((aggregation, i) => isNumeric(aggregation.op) && !isNumberOrAbsent(values[i]));
        if (invalid >= 0) {
          const { field } = definition.aggregations[invalid] as { field?: string };
          failures.push({ record, stage, error: rejectRecord('not-a-number', `Field ${field ?? ''} is not a number`) });
          continue;
        }
        const key = groupBy.map((path) => getPath(record, path) ?? null);
        const groupId = JSON.stringify(key);
        let groups = windows.get(start);
        if (groups === undefined) windows.set(start, (groups = new Map<string, MutableGroup>()));
        let group = groups.get(groupId);
        if (group === undefined) {
          group = { key, accumulators: aggregations.map((a) => emptyAccumulator(a.op)) };
          groups.set(groupId, group);
        }
        const accumulators = group.accumulators;
        aggregations.forEach((aggregation, i) => {
          accumulators[i] = accumulate(aggregation, accumulators[i] ?? null, values[i]);
        });
        if (timestampField !== undefined) watermark = Math.max(watermark ?? -Infinity, timestamp - allowedLatenessMs);
      }
      const emitted =
        timestampField === undefined
          ? close(windows, (end) => end <= now)
          : close(windows, (end) => watermark !== null && end <= watermark);
      return { state: freeze(watermark, windows), records: emitted, failures };
    },

    flush(state) {
      const emitted = close(thaw(state), () => true);
      return { state: { watermark: state.watermark, windows: [] }, records: emitted, failures: [] };
    },
  };
}

function readTimestamp(record: DataRecord, path: FieldPath): number | RecordRejectedError {
  const value = getPath(record, path);
  const timestamp = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isFinite(timestamp)) return timestamp;
  return rejectRecord('invalid-timestamp', `Timestamp ${JSON.stringify(value) ?? 'missing'} is neither epoch milliseconds nor an ISO date`);
}

function isNumeric(op: AggregationOperation): boolean {
  return op === 'sum' || op === 'avg' || op === 'min' || op === 'max';
}

function isNumberOrAbsent(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'number' && Number.isFinite(value));
}

function emptyAccumulator(op: AggregationOperation): AccumulatorState {
  switch (op) {
    case 'count':
    case 'sum':
      return 0;
    case 'avg':
      return { sum: 0, count: 0 };
    case 'collect':
      return [];
    default:
      return null;
  }
}

function accumulate(aggregation: Aggregation, current: AccumulatorState, value: JsonValue | undefined): AccumulatorState {
  const { op, field } = aggregation;
  if (op === 'count') return field === undefined || (value !== undefined && value !== null) ? (current as number) + 1 : current;
  if (value === undefined || value === null) return current;
  switch (op) {
    case 'sum':
      return (current as number) + (value as number);
    case 'avg': {
      const avg = current as { sum: number; count: number };
      return { sum: avg.sum + (value as number), count: avg.count + 1 };
    }
    case 'min':
      return current === null || (value as number) < (current as number) ? (value as number) : current;
    case 'max':
      return current === null || (value as number) > (current as number) ? (value as number) : current;
    case 'first':
      return current ?? { value };
    case 'last':
      return { value };
    case 'collect':
      // `thaw` copied the array, so appending in place keeps collect linear without touching the caller's state.
      (current as JsonValue[]).push(value);
      return current;
  }
}

function result(op: AggregationOperation, accumulator: AccumulatorState): JsonValue {
  switch (op) {
    case 'avg': {
      const { sum, count } = accumulator as { sum: number; count: number };
      return count === 0 ? null : sum / count;
    }
    case 'first':
    case 'last':
      return accumulator === null ? null : (accumulator as { value: JsonValue }).value;
    default:
      return accumulator;
  }
}

/** A private, mutable copy of the state's windows; the given state is never changed. */
function thaw(state: TumblingWindowState): Map<number, Map<string, MutableGroup>> {
  const windows = new Map<number, Map<string, MutableGroup>>();
  for (const window of state.windows) {
    const groups = new Map<string, MutableGroup>();
    for (const group of window.groups) {
      groups.set(JSON.stringify(group.key), {
        key: [...group.key],
        accumulators: group.accumulators.map((accumulator) => (Array.isArray(accumulator) ? [...(accumulator as JsonValue[])] : accumulator)),
      });
    }
    windows.set(window.start, groups);
  }
  return windows;
}

function freeze(watermark: number | null, windows: Map<number, Map<string, MutableGroup>>): TumblingWindowState {
  return {
    watermark,
    windows: [...windows.entries()].sort(([a], [b]) => a - b).map(([start, groups]) => ({ start, groups: [...groups.values()] })),
  };
}
