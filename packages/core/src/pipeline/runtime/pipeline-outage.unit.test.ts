/**
 * A long connector outage (issue 9 defect 12, the pipeline's side): a sink
 * that fails retriably for ten simulated minutes, on a `TestClock`, with the
 * default retry policy (`maxRetries: 'unlimited'`). The pipeline keeps
 * retrying with a backoff capped at `maxBackoffMs`, shows the attempt and the
 * cause in its state while it does, never becomes `failed`, and once the sink
 * is back it delivers every record exactly once. A finite `maxRetries` still
 * fails it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ask } from '../../actor/ask.js';
import type { ActorRef } from '../../actor/actor-ref.js';
import { createActorSystem, type ActorSystem } from '../../actor/actor-system.js';
import { ConnectorError } from '../../connector/connector-errors.js';
import type { DataRecord } from '../../connector/data-record.js';
import type { Sink, SinkBatch, SinkContext, SinkWriteResult } from '../../connector/sink.js';
import type { Source, SourceBatch, SourceContext, SourceOffset } from '../../connector/source.js';
import { createInMemoryPersistence } from '../../persistence/in-memory/in-memory-persistence.js';
import { TestClock } from '../../testing/test-clock.js';
import type { PipelineState } from '../model/pipeline-state.js';
import { pipelineActor, type PipelineCommand, type PipelineReply } from './pipeline-actor.js';

/** A finite source that answers at once (no wall-clock waits), resuming at its checkpoint. */
class ListSource implements Source {
  readonly type = 'list';
  private position = 0;
  constructor(readonly records: readonly DataRecord[]) {}
  open(ctx: SourceContext): Promise<void> {
    this.position = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0;
    return Promise.resolve();
  }
  poll(max: number): Promise<SourceBatch> {
    const taken = this.records.slice(this.position, this.position + max);
    this.position += taken.length;
    return Promise.resolve({ records: taken.map((value) => ({ ok: true, value })), offset: this.position, done: this.position >= this.records.length });
  }
  ack(_offset: SourceOffset): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Appends what it is given (not idempotent: a record written twice shows twice); fails retriably while `down`. */
class FlakySink implements Sink {
  readonly type = 'flaky';
  down = false;
  readonly written: DataRecord[] = [];
  /** `clock.now()` of every write attempt made while down. */
  readonly failedAt: number[] = [];
  constructor(private readonly clock: TestClock) {}
  open(_ctx: SinkContext): Promise<void> {
    return Promise.resolve();
  }
  write(batch: SinkBatch): Promise<SinkWriteResult> {
    if (this.down) {
      this.failedAt.push(this.clock.now());
      return Promise.reject(new ConnectorError('flaky', 'the sink service is unavailable', { retriable: true }));
    }
    this.written.push(...batch.records);
    return Promise.resolve({ position: this.written.length });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const systems: ActorSystem[] = [];
afterEach(async () => {
  for (const s of systems.splice(0)) await s.terminate({ timeoutMs: 2_000 }).catch(() => undefined);
});

const MINUTE = 60_000;
const records = Array.from({ length: 40 }, (_, i) => ({ id: i }));

async function outage(retry: Record<string, unknown>) {
  const clock = new TestClock({ startAt: 1_000_000 });
  const system = createActorSystem({ name: `outage-${systems.length}`, clock, scheduler: clock, random: () => 0.5 });
  systems.push(system);
  // Connector calls and journal writes answer through promises the system does not count as pending work: let them land too.
  clock.settleWith(async () => {
    for (let i = 0; i < 20; i++) {
      await system.settled();
      await new Promise((resolve) => setImmediate(resolve));
    }
  });
  const sink = new FlakySink(clock);
  /** The stage of every `pipeline.batch.failed` event. */
  const failedStages: string[] = [];
  system.events.on('pipeline.batch.failed', (e) => failedStages.push(e.stage));
  const pipeline = system.spawn(
    pipelineActor({
      pipelineId: 'p1',
      persistence: createInMemoryPersistence(),
      connectors: {
        createSource: () => new ListSource(records),
        createSink: () => sink,
        createDeadLetterTarget: () => {
          throw new Error('no dead letters here');
        },
      },
      random: () => 0.5,
    }),
    'pipeline-p1',
  );
  const call = async (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => {
    const reply = ask<PipelineCommand, PipelineReply>(pipeline, build, { timeoutMs: 5_000 });
    await clock.advanceAsync(0);
    return reply;
  };
  const state = async () => {
    const reply = ask<PipelineCommand, PipelineState>(pipeline, (replyTo) => ({ type: 'get-state', replyTo }), { timeoutMs: 5_000 });
    await clock.advanceAsync(0);
    return reply;
  };
  const definition = { name: 'outage', source: { type: 'list' }, sink: { type: 'flaky' }, batch: { size: 10, maxWaitMs: 5 }, retry };
  expect(await call((replyTo) => ({ type: 'create', definition, replyTo }))).toMatchObject({ status: 'success' });
  sink.down = true;
  expect(await call((replyTo) => ({ type: 'start', replyTo }))).toMatchObject({ status: 'success' });
  return { clock, sink, state, failedStages };
}

describe('a pipeline through a long retriable outage', () => {
  it('retries for 10 simulated minutes with capped backoff, reports it, then delivers every record exactly once', async () => {
    // The defaults but for jitter: maxRetries 'unlimited', 1 s doubling to at most 30 s.
    const { clock, sink, state } = await outage({ jitter: 0 });
    for (let elapsed = 0; elapsed < 10 * MINUTE; elapsed += 1_000) {
      await clock.advanceAsync(1_000);
      if (elapsed === 5 * MINUTE) {
        const during = await state();
        expect(during.status).toBe('running');
        const retry = during.status === 'empty' ? null : during.retry;
        expect(retry?.lastError).toMatchObject({ message: 'flaky: the sink service is unavailable', retriable: true });
        expect(retry?.attempt).toBeGreaterThan(5);
      }
    }
    const during = await state();
    expect(during.status).toBe('running');
    // The old default gave up after 5 retries (about 31 s); this one kept going, each wait capped at maxBackoffMs.
    const gaps = sink.failedAt.slice(1).map((t, i) => t - (sink.failedAt[i] as number));
    expect(sink.failedAt.length).toBeGreaterThan(20);
    expect(gaps.slice(0, 5)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000]);
    expect(gaps.slice(5).every((gap) => gap === 30_000)).toBe(true);
    expect(sink.written).toEqual([]);

    sink.down = false;
    for (let i = 0; i < 40 && (await state()).status === 'running'; i++) await clock.advanceAsync(1_000);
    const after = await state();
    expect(after.status).toBe('stopped');
    expect(after.status !== 'empty' && after.retry).toBeNull();
    expect(sink.written).toEqual(records);
  });

  it('a user-set finite maxRetries still fails the pipeline when the outage outlasts it', async () => {
    const { clock, sink, state, failedStages } = await outage({ maxRetries: 3, jitter: 0 });
    for (let i = 0; i < 60 && (await state()).status === 'running'; i++) await clock.advanceAsync(1_000);
    const failed = await state();
    expect(failed.status).toBe('failed');
    expect(failed.status === 'failed' && failed.error.message).toContain('gave up after 3 retries');
    expect(sink.failedAt).toHaveLength(4);
    // Each failed write is reported with the stage it failed in.
    expect(failedStages).toEqual(['sink', 'sink', 'sink', 'sink']);
  });
});
