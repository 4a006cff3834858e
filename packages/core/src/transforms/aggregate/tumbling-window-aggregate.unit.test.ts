import { describe, expect, it } from 'vitest';
import type { DataRecord } from '../../connector/data-record.js';
import { aggregateDefinitionSchema, createTumblingWindowAggregate, type TumblingWindowState } from './tumbling-window-aggregate.js';

function aggregator(options: Record<string, unknown>) {
  return createTumblingWindowAggregate(aggregateDefinitionSchema.parse({ type: 'aggregate', ...options }), 'transforms[2]');
}

const eventTime = {
  groupBy: ['host'],
  windowMs: 1000,
  timestampField: 'ts',
  aggregations: [
    { op: 'count', as: 'count' },
    { op: 'sum', field: 'ms', as: 'sum' },
    { op: 'avg', field: 'ms', as: 'avg' },
    { op: 'min', field: 'ms', as: 'min' },
    { op: 'max', field: 'ms', as: 'max' },
    { op: 'first', field: 'ms', as: 'first' },
    { op: 'last', field: 'ms', as: 'last' },
    { op: 'collect', field: 'ms', as: 'all' },
    { op: 'count', field: 'ms', as: 'withMs' },
  ],
};

const events: DataRecord[] = [
  { host: 'a', ts: 100, ms: 10 },
  { host: 'b', ts: 200, ms: 1 },
  { host: 'a', ts: 900, ms: 30 },
  { host: 'a', ts: 950 },
  { host: 'a', ts: 1100, ms: 5 },
  { host: 'b', ts: 2500, ms: 7 },
];

/** Feeds `records` in batches of the given sizes, then flushes; returns everything emitted and the last state. */
function feed(sizes: readonly number[], records: readonly DataRecord[]) {
  const t = aggregator(eventTime);
  let state: TumblingWindowState = t.initialState();
  const emitted: DataRecord[] = [];
  let offset = 0;
  for (const size of sizes) {
    const step = t.apply(state, records.slice(offset, offset + size), { now: 0 });
    offset += size;
    state = JSON.parse(JSON.stringify(step.state)) as TumblingWindowState; // as a snapshot would restore it
    emitted.push(...step.records);
  }
  const flushed = t.flush(state, { now: 0 });
  return { emitted, flushed: flushed.records, state: flushed.state };
}

describe('tumbling-window aggregate (event time)', () => {
  it('emits one record per group when a later timestamp closes the window', () => {
    const t = aggregator(eventTime);
    const first = t.apply(t.initialState(), events.slice(0, 4), { now: 0 });
    expect(first.records).toEqual([]);
    const second = t.apply(first.state, events.slice(4, 5), { now: 0 });
    expect(second.records).toEqual([
      { host: 'a', windowStart: 0, windowEnd: 1000, count: 3, sum: 40, avg: 20, min: 10, max: 30, first: 10, last: 30, all: [10, 30], withMs: 2 },
      { host: 'b', windowStart: 0, windowEnd: 1000, count: 1, sum: 1, avg: 1, min: 1, max: 1, first: 1, last: 1, all: [1], withMs: 1 },
    ]);
    expect(second.state.windows.map((w) => w.start)).toEqual([1000]);
  });

  it('emits the same windows however the records are split into batches', () => {
    const all = (run: ReturnType<typeof feed>) => [...run.emitted, ...run.flushed];
    const oneBatch = feed([6], events);
    expect(all(oneBatch)).toHaveLength(4);
    expect(all(feed([1, 1, 1, 1, 1, 1], events))).toEqual(all(oneBatch));
    expect(all(feed([2, 3, 1], events))).toEqual(all(oneBatch));
    expect(all(feed([0, 4, 0, 2], events))).toEqual(all(oneBatch));
  });

  it('never changes the state it was given', () => {
    const t = aggregator(eventTime);
    const first = t.apply(t.initialState(), events.slice(0, 3), { now: 0 });
    const before = JSON.stringify(first.state);
    t.apply(first.state, events.slice(3), { now: 0 });
    t.flush(first.state, { now: 0 });
    expect(JSON.stringify(first.state)).toBe(before);
  });

  it('rejects records for windows that already closed, and honours allowed lateness', () => {
    const strict = aggregator(eventTime);
    const step = strict.apply(strict.initialState(), [{ host: 'a', ts: 1500, ms: 1 }, { host: 'a', ts: 400, ms: 1 }], { now: 0 });
    expect(step.failures.map((f) => [f.stage, f.error.reason, f.error.message])).toEqual([
      ['transforms[2]', 'late-record', 'Record at 400 belongs to window [0, 1000) which closed at watermark 1500'],
    ]);

    const lenient = aggregator({ ...eventTime, allowedLatenessMs: 600 });
    const late = lenient.apply(lenient.initialState(), [{ host: 'a', ts: 1500, ms: 1 }, { host: 'a', ts: 400, ms: 2 }], { now: 0 });
    expect(late.failures).toEqual([]);
    expect(late.records).toEqual([]);
    const closing = lenient.apply(late.state, [{ host: 'a', ts: 1600, ms: 3 }], { now: 0 });
    expect(closing.records).toMatchObject([{ host: 'a', windowStart: 0, count: 1, sum: 2 }]);
  });

  it('rejects bad timestamps and non-numeric values without touching any accumulator', () => {
    const t = aggregator(eventTime);
    const step = t.apply(
      t.initialState(),
      [{ host: 'a', ts: 'yesterday', ms: 1 }, { host: 'a', ms: 1 }, { host: 'a', ts: 10, ms: '12' }, { host: 'a', ts: '1970-01-01T00:00:00.020Z', ms: 4 }],
      { now: 0 },
    );
    expect(step.failures.map((f) => f.error.reason)).toEqual(['invalid-timestamp', 'invalid-timestamp', 'not-a-number']);
    expect(step.failures[2]?.error.message).toBe('Field ms is not a number');
    expect(t.flush(step.state, { now: 0 }).records).toMatchObject([{ host: 'a', count: 1, sum: 4, all: [4] }]);
  });

  it('reports empty aggregations as null and groups by several fields, missing ones as null', () => {
    const t = aggregator({
      groupBy: ['region', 'meta.env'],
      windowMs: 10,
      timestampField: 'ts',
      windowStartField: 'window.start',
      windowEndField: 'window.end',
      aggregations: [{ op: 'avg', field: 'v', as: 'avg' }, { op: 'min', field: 'v', as: 'min' }, { op: 'first', field: 'v', as: 'first' }, { op: 'sum', field: 'v', as: 'stats.sum' }],
    });
    const step = t.apply(t.initialState(), [{ region: 'eu', meta: { env: 'prod' }, ts: 1 }, { ts: 2 }], { now: 0 });
    expect(t.flush(step.state, { now: 0 }).records).toEqual([
      { region: 'eu', meta: { env: 'prod' }, window: { start: 0, end: 10 }, avg: null, min: null, first: null, stats: { sum: 0 } },
      { region: null, meta: { env: null }, window: { start: 0, end: 10 }, avg: null, min: null, first: null, stats: { sum: 0 } },
    ]);
  });
});

describe('tumbling-window aggregate (processing time)', () => {
  const t = aggregator({ windowMs: 60_000, aggregations: [{ op: 'count', as: 'n' }, { op: 'collect', field: 'id', as: 'ids' }] });

  it('windows by the injected clock and closes a window on an empty tick', () => {
    const first = t.apply(t.initialState(), [{ id: 1 }, { id: 2 }], { now: 59_000 });
    const second = t.apply(first.state, [{ id: 3 }], { now: 61_000 });
    expect(second.records).toEqual([{ windowStart: 0, windowEnd: 60_000, n: 2, ids: [1, 2] }]);
    expect(t.apply(second.state, [], { now: 119_999 }).records).toEqual([]);
    expect(t.apply(second.state, [], { now: 120_000 }).records).toEqual([{ windowStart: 60_000, windowEnd: 120_000, n: 1, ids: [3] }]);
  });

  it('flush emits every open window and leaves an empty state', () => {
    const open = t.apply(t.initialState(), [{ id: 1 }], { now: 5 });
    const flushed = t.flush(open.state, { now: 5 });
    expect(flushed.records).toEqual([{ windowStart: 0, windowEnd: 60_000, n: 1, ids: [1] }]);
    expect(flushed.state.windows).toEqual([]);
  });
});
