/**
 * The batch cycle without actors: every phase of both lanes, what each event
 * does there, and which effects it asks for.
 */
import { describe, expect, it } from 'vitest';
import type { SourceBatch, SourceRecord } from '../../connector/source.js';
import { validatePipelineDefinition } from '../definition/pipeline-definition.js';
import type { PreparedRecords } from './batch-preparation.js';
import { batchesInFlight, openCycle, stepCycle, type BatchCycle, type CycleConfig, type CycleEffect, type CycleEvent } from './batch-cycle.js';

function definitionWith(overrides: Record<string, unknown> = {}) {
  const validation = validatePipelineDefinition({
    name: 'cycle',
    source: { type: 'array' },
    sink: { type: 'map' },
    batch: { size: 10, maxWaitMs: 5 },
    batchTimeoutMs: 1000,
    retry: { maxRetries: 2, initialBackoffMs: 10, maxBackoffMs: 10, multiplier: 1, jitter: 0 },
    ...overrides,
  });
  if (!validation.ok) throw new Error(JSON.stringify(validation.issues));
  return validation.definition;
}

function config(overrides: Partial<CycleConfig> = {}, definition: Record<string, unknown> = {}): CycleConfig {
  return {
    pipelineId: 'p1',
    definition: definitionWith(definition),
    stateful: false,
    pipelinedWrites: false,
    hasDeadLetterTarget: false,
    maxBatchesPerCheckpoint: 4,
    ...overrides,
  };
}

const start = { recorded: 0, committedStates: [], offset: null, position: null, retry: null };
const recs = (...ids: number[]): SourceRecord[] => ids.map((id) => ({ ok: true, value: { id } }));
const polled = (records: SourceRecord[], offset: number, done = false): CycleEvent => ({ type: 'polled', batch: { records, offset, done } satisfies SourceBatch });
const output = (n: number, extra: Partial<PreparedRecords> = {}): PreparedRecords => ({
  output: Array.from({ length: n }, (_, i) => ({ i })),
  letters: [],
  failed: 0,
  transformStates: [],
  ...extra,
});

/** Applies events in order; returns the last cycle and every effect, by type. */
function run(cycle: BatchCycle, ...events: CycleEvent[]): { cycle: BatchCycle; effects: CycleEffect[] } {
  let current = cycle;
  const effects: CycleEffect[] = [];
  for (const event of events) {
    const step = stepCycle(current, event, 100);
    current = step.cycle;
    effects.push(...step.effects);
  }
  return { cycle: current, effects };
}

const types = (effects: readonly CycleEffect[]) => effects.map((e) => e.type);

/** An open cycle whose first batch (p1:1, records 1–3, offset 3) was written and is being checkpointed. */
function checkpointingFirst(c: CycleConfig = config()) {
  return run(openCycle(c, start), { type: 'opened' }, polled(recs(1, 2, 3), 3), { type: 'prepared', batchId: 'p1:1', result: output(3) }, {
    type: 'written',
    batchId: 'p1:1',
    result: { position: 1 },
  });
}

describe('batch cycle: opening', () => {
  it('waits for every connector, then polls', () => {
    const opening = openCycle(config(), start);
    expect(stepCycle(opening, polled(recs(1), 1), 0).effects).toEqual([]);
    const { cycle, effects } = stepCycle(opening, { type: 'opened' }, 0);
    expect(cycle.mode).toBe('open');
    expect(cycle.front).toEqual({ stage: 'polling' });
    expect(effects).toEqual([{ type: 'poll', maxRecords: 10, maxWaitMs: 5 }]);
  });

  it('a failed open ends the generation with the error', () => {
    const error = new Error('connection refused');
    const { cycle, effects } = stepCycle(openCycle(config(), start), { type: 'failed', batchId: undefined, error }, 0);
    expect(cycle.mode).toBe('closed');
    expect(effects).toEqual([{ type: 'fail', batchId: undefined, error }]);
  });

  it('opens paused when the pipeline is paused, and polls on resume', () => {
    const { cycle, effects } = run(openCycle(config(), { ...start, paused: true }), { type: 'opened' });
    expect(effects).toEqual([]);
    expect(types(stepCycle(cycle, { type: 'resume' }, 0).effects)).toEqual(['poll']);
  });
});

describe('batch cycle: polling', () => {
  const polling = () => run(openCycle(config(), start), { type: 'opened' }).cycle;

  it('takes a polled batch: numbered from the journal, timed, prepared from the committed states', () => {
    const c = openCycle(config(), { ...start, recorded: 7, committedStates: [null] });
    const { cycle, effects } = run(c, { type: 'opened' }, polled(recs(1, 2), 2));
    expect(effects.slice(1)).toEqual([
      { type: 'arm-timeout', batchId: 'p1:8', delayMs: 1000 },
      { type: 'prepare', batch: { batchId: 'p1:8', kind: 'source', input: 2, offset: 2, startedAt: 100, attempt: 1 }, records: recs(1, 2), states: [null] },
    ]);
    expect(cycle.front.stage).toBe('preparing');
  });

  it('counts the attempt of a batch being retried', () => {
    const c = openCycle(config(), { ...start, recorded: 2, retry: { batchId: 'p1:3', attempt: 2 } });
    const { effects } = run(c, { type: 'opened' }, polled(recs(1), 1));
    expect(effects.find((e) => e.type === 'prepare')).toMatchObject({ batch: { batchId: 'p1:3', attempt: 3 } });
  });

  it('polls again after an empty poll when no stage keeps state', () => {
    const { cycle, effects } = stepCycle(polling(), polled([], 0), 0);
    expect(effects).toEqual([{ type: 'poll', maxRecords: 10, maxWaitMs: 5 }]);
    expect(cycle.front.stage).toBe('polling');
  });

  it('turns an empty poll into a tick when a stage keeps state', () => {
    const c = run(openCycle(config({ stateful: true }), { ...start, offset: 40 }), { type: 'opened' }).cycle;
    const { effects } = stepCycle(c, polled([], 40), 0);
    expect(effects.find((e) => e.type === 'prepare')).toMatchObject({ batch: { kind: 'tick', input: 0, offset: 40 }, records: [] });
  });

  it('ends the generation when a finite source is exhausted and nothing is in flight', () => {
    const { cycle, effects } = stepCycle(polling(), polled([], 0, true), 0);
    expect(effects).toEqual([{ type: 'drained', reason: 'source-exhausted' }]);
    expect(cycle.mode).toBe('closed');
  });

  it('flushes stateful stages at the end of the source, as one more batch', () => {
    const c = run(openCycle(config({ stateful: true }), { ...start, committedStates: [{ open: 1 }] }), { type: 'opened' }).cycle;
    const { cycle, effects } = stepCycle(c, polled([], 0, true), 0);
    expect(effects.find((e) => e.type === 'prepare-flush')).toMatchObject({ batch: { kind: 'flush', batchId: 'p1:1' }, states: [{ open: 1 }] });
    // An empty flush records nothing.
    const done = stepCycle(cycle, { type: 'prepared', batchId: 'p1:1', result: output(0) }, 0);
    expect(types(done.effects)).toEqual(['cancel-timeout', 'drained']);
  });

  it('a failed poll ends the generation', () => {
    const error = new Error('boom');
    expect(stepCycle(polling(), { type: 'failed', batchId: undefined, error }, 0).effects).toEqual([{ type: 'fail', batchId: undefined, error }]);
  });
});

describe('batch cycle: preparing and delivering', () => {
  const preparing = (c = config()) => run(openCycle(c, start), { type: 'opened' }, polled(recs(1, 2, 3), 3)).cycle;

  it('writes the output of a prepared batch when nothing is before it', () => {
    const { cycle, effects } = stepCycle(preparing(), { type: 'prepared', batchId: 'p1:1', result: output(2) }, 0);
    expect(effects).toEqual([{ type: 'write', batchId: 'p1:1', records: [{ i: 0 }, { i: 1 }], sourceOffset: 3 }]);
    expect(cycle.front.stage).toBe('writing');
  });

  it('ignores the preparation of another batch', () => {
    const c = preparing();
    expect(stepCycle(c, { type: 'prepared', batchId: 'p1:9', result: output(2) }, 0).cycle).toBe(c);
  });

  it('sends dead letters before writing', () => {
    const letter = { pipelineId: 'p1', stage: 'transform' as const, stageName: 't', error: { message: 'x', retriable: false }, attempt: 1, payload: 1, failedAt: 0 };
    const c = preparing(config({ hasDeadLetterTarget: true }));
    const first = stepCycle(c, { type: 'prepared', batchId: 'p1:1', result: output(1, { letters: [letter], failed: 1 }) }, 0);
    expect(first.effects).toEqual([{ type: 'send-dead-letters', batchId: 'p1:1', letters: [letter] }]);
    const second = stepCycle(first.cycle, { type: 'dead-lettered', batchId: 'p1:1' }, 0);
    expect(types(second.effects)).toEqual(['write']);
  });

  it('fails a batch with dead letters when there is no target', () => {
    const letter = { pipelineId: 'p1', stage: 'source' as const, stageName: 's', error: { message: 'x', retriable: false }, attempt: 1, payload: 1, failedAt: 0 };
    const { effects } = stepCycle(preparing(), { type: 'prepared', batchId: 'p1:1', result: output(0, { letters: [letter], failed: 1 }) }, 0);
    expect(effects.at(-1)).toMatchObject({ type: 'fail', batchId: 'p1:1', error: { tag: 'pipeline/stage-failed' } });
  });

  it('checkpoints a batch with no output without writing it, at the last known position', () => {
    const c = openCycle(config(), { ...start, position: 9 });
    const { effects } = run(c, { type: 'opened' }, polled(recs(1), 1), { type: 'prepared', batchId: 'p1:1', result: output(0, { failed: 1 }) });
    expect(effects.find((e) => e.type === 'checkpoint')).toMatchObject({ batches: [{ batchId: 'p1:1', position: 9, failed: 1 }] });
  });

  it('drops an idle tick', () => {
    const c = run(openCycle(config({ stateful: true }), start), { type: 'opened' }, polled([], 0)).cycle;
    const { cycle, effects } = stepCycle(c, { type: 'prepared', batchId: 'p1:1', result: output(0) }, 0);
    expect(effects).toEqual([{ type: 'cancel-timeout', batchId: 'p1:1' }, { type: 'poll', maxRecords: 10, maxWaitMs: 5 }]);
    expect(cycle.delivered).toEqual([]);
  });

  it('records a tick that closed a window like any batch', () => {
    const c = run(openCycle(config({ stateful: true }), start), { type: 'opened' }, polled([], 0)).cycle;
    const { effects } = stepCycle(c, { type: 'prepared', batchId: 'p1:1', result: output(1) }, 0);
    expect(types(effects)).toEqual(['write']);
  });

  it('a preparation that fails (a lookup) ends the generation', () => {
    const error = new Error('lookup down');
    const { cycle, effects } = stepCycle(preparing(), { type: 'failed', batchId: 'p1:1', error }, 0);
    expect(effects).toEqual([
      { type: 'cancel-timeout', batchId: 'p1:1' },
      { type: 'abandoned', batch: expect.objectContaining({ batchId: 'p1:1' }) as unknown },
      { type: 'fail', batchId: 'p1:1', error },
    ]);
    expect(cycle.mode).toBe('closed');
  });
});

describe('batch cycle: the sink', () => {
  const writing = (definition: Record<string, unknown> = {}, c: Partial<CycleConfig> = {}) =>
    run(openCycle(config(c, definition), start), { type: 'opened' }, polled(recs(1, 2), 2), { type: 'prepared', batchId: 'p1:1', result: output(2) }).cycle;

  it('a write moves the batch to the checkpoint lane and the next poll starts at once', () => {
    const { cycle, effects } = stepCycle(writing(), { type: 'written', batchId: 'p1:1', result: { position: 4 } }, 0);
    expect(types(effects)).toEqual(['checkpoint', 'poll']);
    expect(effects[0]).toMatchObject({ batches: [{ batchId: 'p1:1', position: 4, output: [] }] });
    expect(cycle.back.stage).toBe('checkpointing');
    expect(cycle.position).toBe(4);
  });

  it('a transient write failure ends the generation (the batch is retried from the checkpoint)', () => {
    const error = Object.assign(new Error('service unavailable'), { code: 'ECONNRESET' });
    const { effects } = stepCycle(writing(), { type: 'write-failed', batchId: 'p1:1', error }, 0);
    expect(effects.at(-1)).toEqual({ type: 'fail', batchId: 'p1:1', error });
  });

  it('a transient write failure past a finite retry limit goes through the sink error policy (skip)', () => {
    const error = Object.assign(new Error('service unavailable'), { code: 'ECONNRESET' });
    const c = openCycle(config({}, { sink: { type: 'map', onError: 'skip' } }), { ...start, retry: { batchId: 'p1:1', attempt: 2 } });
    const { effects } = run(c, { type: 'opened' }, polled(recs(1, 2), 2), { type: 'prepared', batchId: 'p1:1', result: output(2) }, { type: 'write-failed', batchId: 'p1:1', error });
    expect(effects.find((e) => e.type === 'checkpoint')).toMatchObject({ batches: [{ batchId: 'p1:1', failed: 2 }] });
    expect(types(effects)).not.toContain('fail');
  });

  it("with maxRetries 'unlimited' a transient write failure is retried however many attempts it took (never skipped or dead-lettered)", () => {
    const error = Object.assign(new Error('service unavailable'), { code: 'ECONNRESET' });
    const unlimited = { sink: { type: 'map', onError: 'skip' }, retry: { maxRetries: 'unlimited', initialBackoffMs: 10, maxBackoffMs: 10, multiplier: 1, jitter: 0 } };
    const c = openCycle(config({}, unlimited), { ...start, retry: { batchId: 'p1:1', attempt: 10_000 } });
    const { effects } = run(c, { type: 'opened' }, polled(recs(1, 2), 2), { type: 'prepared', batchId: 'p1:1', result: output(2) }, { type: 'write-failed', batchId: 'p1:1', error });
    expect(effects.at(-1)).toEqual({ type: 'fail', batchId: 'p1:1', error });
  });

  it('a permanent write failure goes through the sink error policy', () => {
    const error = new Error('schema mismatch');
    const c = writing({ sink: { type: 'map', onError: 'dead-letter' }, deadLetter: { type: 'file', path: '/x' } }, { hasDeadLetterTarget: true });
    const { cycle, effects } = stepCycle(c, { type: 'write-failed', batchId: 'p1:1', error }, 0);
    expect(effects).toEqual([{ type: 'send-dead-letters', batchId: 'p1:1', letters: [expect.objectContaining({ stage: 'sink', payload: { i: 0 } }), expect.objectContaining({ payload: { i: 1 } })] }]);
    const after = stepCycle(cycle, { type: 'dead-lettered', batchId: 'p1:1' }, 0);
    expect(after.effects[0]).toMatchObject({ type: 'checkpoint', batches: [{ failed: 2, deadLettered: 2 }] });
  });

  it('records the sink rejected with skip as failed', () => {
    const c = writing({ sink: { type: 'map', onError: 'skip' } });
    const { effects } = stepCycle(c, { type: 'written', batchId: 'p1:1', result: { position: 1, rejected: [{ index: 1, reason: 'too big' }] } }, 0);
    expect(effects[0]).toMatchObject({ type: 'checkpoint', batches: [{ failed: 1, deadLettered: 0 }] });
  });

  it('fails on records the sink rejected when its policy is fail', () => {
    const { effects } = stepCycle(writing(), { type: 'written', batchId: 'p1:1', result: { rejected: [{ index: 0, reason: 'bad' }] } }, 0);
    expect(effects.at(-1)).toMatchObject({ type: 'fail', error: { tag: 'pipeline/stage-failed' } });
  });
});

describe('batch cycle: checkpoints', () => {
  it('acknowledges the source and reports the batch once it is checkpointed', () => {
    const { cycle } = checkpointingFirst();
    const { cycle: after, effects } = stepCycle(cycle, { type: 'checkpointed', batchId: 'p1:1', recorded: 1, duplicate: false }, 0);
    expect(types(effects)).toEqual(['cancel-timeout', 'completed', 'ack']);
    expect(effects[2]).toEqual({ type: 'ack', offset: 3 });
    expect(after.back.stage).toBe('free');
    expect(after.recorded).toBe(1);
  });

  it('ignores the answer for another checkpoint', () => {
    const { cycle } = checkpointingFirst();
    expect(stepCycle(cycle, { type: 'checkpointed', batchId: 'p1:7', recorded: 7, duplicate: false }, 0).cycle).toBe(cycle);
  });

  it('without pipelinedWrites, the next batch waits for the checkpoint before its write', () => {
    const { cycle } = checkpointingFirst();
    const prepared = run(cycle, polled(recs(4, 5), 5), { type: 'prepared', batchId: 'p1:2', result: output(2) });
    expect(prepared.cycle.front.stage).toBe('ready');
    expect(types(prepared.effects)).not.toContain('write');
    const { effects } = stepCycle(prepared.cycle, { type: 'checkpointed', batchId: 'p1:1', recorded: 1, duplicate: false }, 0);
    expect(types(effects)).toEqual(['cancel-timeout', 'completed', 'ack', 'write']);
  });

  it('with pipelinedWrites, batches written during a checkpoint are recorded together by the next one', () => {
    const { cycle } = checkpointingFirst(config({ pipelinedWrites: true }));
    const two = run(
      cycle,
      polled(recs(4), 4),
      { type: 'prepared', batchId: 'p1:2', result: output(1) },
      { type: 'written', batchId: 'p1:2', result: { position: 2 } },
      polled(recs(5), 5),
      { type: 'prepared', batchId: 'p1:3', result: output(1) },
      { type: 'written', batchId: 'p1:3', result: { position: 3 } },
    );
    expect(two.cycle.delivered.map((b) => b.batchId)).toEqual(['p1:2', 'p1:3']);
    expect(types(two.effects).filter((t) => t === 'checkpoint')).toEqual([]);
    const { effects } = stepCycle(two.cycle, { type: 'checkpointed', batchId: 'p1:1', recorded: 1, duplicate: false }, 0);
    expect(effects.find((e) => e.type === 'checkpoint')).toMatchObject({ batches: [{ batchId: 'p1:2' }, { batchId: 'p1:3', position: 3 }] });
    const done = stepCycle(stepCycle(two.cycle, { type: 'checkpointed', batchId: 'p1:1', recorded: 1, duplicate: false }, 0).cycle, { type: 'checkpointed', batchId: 'p1:3', recorded: 3, duplicate: false }, 0);
    expect(done.effects.filter((e) => e.type === 'completed')).toHaveLength(2);
    expect(done.effects.filter((e) => e.type === 'ack')).toEqual([{ type: 'ack', offset: 5 }]);
  });

  it('holds a batch in ready once a checkpoint has no more room', () => {
    let { cycle } = checkpointingFirst(config({ pipelinedWrites: true, maxBatchesPerCheckpoint: 1 }));
    cycle = run(cycle, polled(recs(4), 4), { type: 'prepared', batchId: 'p1:2', result: output(1) }, { type: 'written', batchId: 'p1:2', result: {} }).cycle;
    const held = run(cycle, polled(recs(5), 5), { type: 'prepared', batchId: 'p1:3', result: output(1) });
    expect(held.cycle.front.stage).toBe('ready');
    expect(types(held.effects)).not.toContain('write');
  });

  it('numbers a batch after the ones waiting for a checkpoint and continues from their states', () => {
    const { cycle } = checkpointingFirst(config({ pipelinedWrites: true }));
    const { effects } = run(cycle, polled(recs(4), 4));
    expect(effects.find((e) => e.type === 'prepare')).toMatchObject({ batch: { batchId: 'p1:2' }, states: [] });
  });

  it('a failed checkpoint abandons every batch in flight and ends the generation', () => {
    const { cycle } = checkpointingFirst(config({ pipelinedWrites: true }));
    const error = new Error('journal down');
    const { cycle: after, effects } = run(cycle, polled(recs(4), 4), { type: 'failed', batchId: 'p1:1', error });
    expect(effects.filter((e) => e.type === 'abandoned').map((e) => (e.type === 'abandoned' ? e.batch.batchId : ''))).toEqual(['p1:1', 'p1:2']);
    expect(effects.at(-1)).toEqual({ type: 'fail', batchId: 'p1:1', error });
    expect(after.mode).toBe('closed');
    expect(stepCycle(after, { type: 'checkpointed', batchId: 'p1:1', recorded: 1, duplicate: false }, 0).effects).toEqual([]);
  });

  it('a batch timeout fails the batch it names, and only a batch in flight', () => {
    const { cycle } = checkpointingFirst();
    expect(stepCycle(cycle, { type: 'timeout', batchId: 'p1:0' }, 0).effects).toEqual([]);
    const { effects } = stepCycle(cycle, { type: 'timeout', batchId: 'p1:1' }, 0);
    expect(effects.at(-1)).toMatchObject({ type: 'fail', batchId: 'p1:1', timedOutAfterMs: 1000 });
  });

  it('ends the generation once the last batch of an exhausted source is checkpointed', () => {
    const c = run(openCycle(config(), start), { type: 'opened' }, polled(recs(1), 1, true), { type: 'prepared', batchId: 'p1:1', result: output(1) }, {
      type: 'written',
      batchId: 'p1:1',
      result: {},
    });
    // Only the first poll: the source said it was done.
    expect(types(c.effects).filter((t) => t === 'poll')).toHaveLength(1);
    const { effects } = stepCycle(c.cycle, { type: 'checkpointed', batchId: 'p1:1', recorded: 1, duplicate: false }, 0);
    expect(types(effects)).toEqual(['cancel-timeout', 'completed', 'ack', 'drained']);
  });

  it('a failed acknowledgement ends the generation', () => {
    const { effects } = stepCycle(checkpointingFirst().cycle, { type: 'failed', batchId: undefined, error: new Error('commit failed') }, 0);
    expect(effects.at(-1)).toMatchObject({ type: 'fail' });
  });
});

describe('batch cycle: ingest, pause and stop', () => {
  it('takes a queued ingest before the next poll, under its own id, and does not acknowledge it', () => {
    const { cycle } = checkpointingFirst();
    const queued = stepCycle(cycle, { type: 'ingest', ingest: { batchId: 'p1:ingest:p1:2', records: [{ n: 1 }] } }, 0).cycle;
    // The front lane is polling: the ingest waits for it.
    expect(queued.queue).toHaveLength(1);
    const { cycle: taken, effects } = run(queued, polled([], 3));
    expect(effects.find((e) => e.type === 'prepare')).toMatchObject({ batch: { batchId: 'p1:ingest:p1:2', kind: 'ingest', input: 1, offset: 3 } });
    const done = run(
      taken,
      { type: 'checkpointed', batchId: 'p1:1', recorded: 1, duplicate: false },
      { type: 'prepared', batchId: 'p1:ingest:p1:2', result: output(1) },
      { type: 'written', batchId: 'p1:ingest:p1:2', result: {} },
      { type: 'checkpointed', batchId: 'p1:ingest:p1:2', recorded: 2, duplicate: false },
    );
    expect(done.effects.filter((e) => e.type === 'ack')).toEqual([{ type: 'ack', offset: 3 }]);
    // The next source batch is numbered after both.
    expect(run(done.cycle, polled(recs(4), 4)).effects.find((e) => e.type === 'prepare')).toMatchObject({ batch: { batchId: 'p1:3' } });
  });

  it('pause stops taking batches; what is in flight completes; resume polls again', () => {
    const { cycle } = checkpointingFirst();
    const paused = run(cycle, { type: 'pause' }, polled(recs(4), 4));
    expect(types(paused.effects)).toEqual(['arm-timeout', 'prepare']);
    const idle = run(paused.cycle, { type: 'prepared', batchId: 'p1:2', result: output(1) }, { type: 'checkpointed', batchId: 'p1:1', recorded: 1, duplicate: false }, { type: 'written', batchId: 'p1:2', result: {} });
    expect(types(idle.effects)).not.toContain('poll');
    const resumed = run(idle.cycle, { type: 'checkpointed', batchId: 'p1:2', recorded: 2, duplicate: false }, { type: 'resume' });
    expect(types(resumed.effects)).toContain('poll');
  });

  it('a stop drops what has no side effect yet, finishes the checkpoint in flight, then drains', () => {
    const { cycle } = checkpointingFirst();
    const stopping = run(cycle, polled(recs(4), 4), { type: 'prepared', batchId: 'p1:2', result: output(1) }, { type: 'drain' });
    expect(stopping.effects.slice(-2)).toEqual([
      { type: 'cancel-timeout', batchId: 'p1:2' },
      { type: 'abandoned', batch: expect.objectContaining({ batchId: 'p1:2' }) as unknown },
    ]);
    const { cycle: closed, effects } = stepCycle(stopping.cycle, { type: 'checkpointed', batchId: 'p1:1', recorded: 1, duplicate: false }, 0);
    expect(types(effects)).toEqual(['cancel-timeout', 'completed', 'ack', 'drained']);
    expect(effects.at(-1)).toEqual({ type: 'drained', reason: 'stopped' });
    expect(batchesInFlight(closed)).toEqual([]);
  });

  it('a stop ignores the answer of a poll in flight', () => {
    const c = run(openCycle(config(), start), { type: 'opened' }, { type: 'drain' }).cycle;
    expect(stepCycle(c, polled(recs(1), 1), 0).effects).toEqual([{ type: 'drained', reason: 'stopped' }]);
  });

  it('a stop flushes stateful stages from the last checkpoint before it drains', () => {
    const c = run(openCycle(config({ stateful: true }), { ...start, committedStates: [{ windows: 1 }] }), { type: 'opened' }, { type: 'drain' }, polled([], 0)).cycle;
    expect(c.front).toMatchObject({ stage: 'preparing', batch: { kind: 'flush' } });
    const flushed = run(c, { type: 'prepared', batchId: 'p1:1', result: output(2) }, { type: 'written', batchId: 'p1:1', result: {} });
    expect(flushed.effects.find((e) => e.type === 'checkpoint')).toMatchObject({ batches: [{ kind: 'flush', batchId: 'p1:1' }] });
    const { effects } = stepCycle(flushed.cycle, { type: 'checkpointed', batchId: 'p1:1', recorded: 1, duplicate: false }, 0);
    expect(types(effects)).toEqual(['cancel-timeout', 'completed', 'drained']);
  });
});
