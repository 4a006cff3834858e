/**
 * The pipeline actor against the in-memory journal and scripted connectors:
 * batch flow and ordering (checkpoint before ack), crashes at every step,
 * retries re-driven after backoff, batch timeouts, dead letters, idempotent
 * ingest and backpressure.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ask } from '../../actor/ask.js';
import type { ActorRef } from '../../actor/actor-ref.js';
import { createActorSystem, type ActorSystem } from '../../actor/actor-system.js';
import type { DataRecord } from '../../connector/data-record.js';
import type { DeadLetter, DeadLetterTarget } from '../../connector/dead-letter.js';
import { ConnectorError } from '../../connector/connector-errors.js';
import { isDataflowError } from '../../errors/dataflow-error.js';
import type { Sink, SinkBatch, SinkContext, SinkWriteResult } from '../../connector/sink.js';
import type { Source, SourceBatch, SourceContext, SourceOffset, SourceRecord } from '../../connector/source.js';
import type { AppendOptions, AppendResult, Journal, NewEvent } from '../../persistence/journal.js';
import { createInMemoryPersistence, type InMemoryPersistence } from '../../persistence/in-memory/in-memory-persistence.js';
import type { SnapshotStore } from '../../persistence/snapshot-store.js';
import { createActorTestKit, type ActorTestKit } from '../../testing/actor-test-kit.js';
import type { PipelineEvent } from '../model/pipeline-events.js';
import type { PipelineState } from '../model/pipeline-state.js';
import { pipelineActor, type ConnectorFactory, type PipelineCommand, type PipelineReply } from './pipeline-actor.js';

/** A crash: from now on nothing the old incarnation does has an effect (its calls never return). */
class World {
  frozen = false;
  readonly never = new Promise<never>(() => undefined);
}

/** Journal that stops answering when the world freezes (the process died). */
class FreezableJournal implements Journal {
  constructor(
    readonly inner: Journal,
    readonly world: World,
  ) {}
  append(id: string, events: readonly NewEvent[], options: AppendOptions): Promise<AppendResult> {
    return this.world.frozen ? this.world.never : this.inner.append(id, events, options);
  }
  replay(id: string, from: number, to?: number) {
    return this.inner.replay(id, from, to);
  }
  highestSequenceNr(id: string): Promise<number> {
    return this.inner.highestSequenceNr(id);
  }
  deleteTo(id: string, to: number): Promise<void> {
    return this.inner.deleteTo(id, to);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The outside world of a source: records and acknowledged offsets survive crashes. */
class ArrayData {
  acks: number[] = [];
  polls = 0;
  constructor(readonly records: SourceRecord[]) {}
}

class ArraySource implements Source {
  readonly type = 'array';
  private position = 0;
  failPolls = 0;
  constructor(
    readonly data: ArrayData,
    readonly world: World,
    readonly hooks: { onAck?: (offset: number) => void } = {},
  ) {}
  open(ctx: SourceContext): Promise<void> {
    this.position = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0;
    return Promise.resolve();
  }
  poll(max: number): Promise<SourceBatch> {
    if (this.world.frozen) return this.world.never;
    this.data.polls++;
    if (this.failPolls > 0) {
      this.failPolls--;
      return Promise.reject(new ConnectorError('array', 'connection refused', { retriable: true }));
    }
    const records = this.data.records.slice(this.position, this.position + max);
    this.position += records.length;
    return Promise.resolve({ records, offset: this.position, done: this.position >= this.data.records.length });
  }
  ack(offset: SourceOffset): Promise<void> {
    this.hooks.onAck?.(offset as number);
    if (this.world.frozen) return this.world.never;
    this.data.acks.push(offset as number);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Idempotent by batch id: writing a batch id again replaces it. */
class SinkData {
  batches = new Map<string, readonly DataRecord[]>();
  writes = 0;
  records(): DataRecord[] {
    return [...this.batches.values()].flat();
  }
}

class MapSink implements Sink {
  readonly type = 'map';
  failures: { error: Error }[] = [];
  hang = 0;
  constructor(
    readonly data: SinkData,
    readonly world: World,
    readonly hooks: { beforeWrite?: (batch: SinkBatch) => void; afterWrite?: (batch: SinkBatch) => void } = {},
  ) {}
  open(_ctx: SinkContext): Promise<void> {
    return Promise.resolve();
  }
  write(batch: SinkBatch): Promise<SinkWriteResult> {
    this.hooks.beforeWrite?.(batch);
    if (this.world.frozen) return this.world.never;
    const failure = this.failures.shift();
    if (failure !== undefined) return Promise.reject(failure.error);
    if (this.hang > 0) {
      this.hang--;
      return this.world.never;
    }
    this.data.writes++;
    this.data.batches.set(batch.batchId, batch.records);
    this.hooks.afterWrite?.(batch);
    return Promise.resolve({ position: this.data.batches.size });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class ListDeadLetters implements DeadLetterTarget {
  readonly type = 'list';
  letters: DeadLetter[] = [];
  open(): Promise<void> {
    return Promise.resolve();
  }
  send(letters: readonly DeadLetter[]): Promise<void> {
    this.letters.push(...letters);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const rec = (i: number): SourceRecord => ({ ok: true, value: { id: i, status: i % 2 === 0 ? 'even' : 'odd' } });

function definition(overrides: Record<string, unknown> = {}) {
  return {
    name: 'test-pipeline',
    source: { type: 'array' },
    transforms: [{ type: 'map', set: [{ to: 'seen', value: true }] }],
    sink: { type: 'map' },
    batch: { size: 10, maxWaitMs: 10 },
    retry: { maxRetries: 3, initialBackoffMs: 1000, maxBackoffMs: 8000, multiplier: 2, jitter: 0 },
    ...overrides,
  };
}

interface Harness {
  system: ActorSystem;
  kit?: ActorTestKit;
  pipeline: ActorRef<PipelineCommand>;
  source: ArraySource;
  sink: MapSink;
  deadLetters: ListDeadLetters;
}

const store = (): InMemoryPersistence => createInMemoryPersistence();
const systems: ActorSystem[] = [];

afterEach(async () => {
  // A crashed incarnation has calls that never return: give termination a bound.
  for (const s of systems.splice(0)) await Promise.race([s.terminate(), new Promise((r) => setTimeout(r, 200))]);
});

function spawn(
  system: ActorSystem,
  persistence: { journal: Journal; snapshots: SnapshotStore },
  source: ArraySource,
  sink: MapSink,
  deadLetters = new ListDeadLetters(),
): Harness {
  const connectors: ConnectorFactory = {
    createSource: () => source,
    createSink: () => sink,
    createDeadLetterTarget: () => deadLetters,
  };
  const pipeline = system.spawn(pipelineActor({ pipelineId: 'p1', persistence, connectors, random: () => 0.5 }), 'pipeline-p1');
  return { system, pipeline, source, sink, deadLetters };
}

const call = (pipeline: ActorRef<PipelineCommand>, build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) =>
  ask<PipelineCommand, PipelineReply>(pipeline, build, { timeoutMs: 5_000 });

const stateOf = (pipeline: ActorRef<PipelineCommand>) =>
  ask<PipelineCommand, PipelineState>(pipeline, (replyTo) => ({ type: 'get-state', replyTo }), { timeoutMs: 5_000 });

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function journalEvents(j: Journal): Promise<PipelineEvent[]> {
  const events: PipelineEvent[] = [];
  for await (const e of j.replay('pipeline-p1', 1)) events.push(e.payload as PipelineEvent);
  return events;
}

function newSystem(): ActorSystem {
  const system = createActorSystem({ name: `pipelines-${systems.length}` });
  systems.push(system);
  return system;
}

describe('pipeline actor', () => {
  it('moves every record source → transforms → sink and acknowledges only checkpointed offsets', async () => {
    const world = new World();
    const st = store();
    const inner = st.journal;
    const j = new FreezableJournal(inner, world);
    const data = new ArrayData(Array.from({ length: 25 }, (_, i) => rec(i)));
    const ackedAfter: { offset: number; checkpointed: boolean }[] = [];
    const source = new ArraySource(data, world, {
      onAck: (offset) => {
        void journalEvents(inner).then((events) =>
          ackedAfter.push({
            offset,
            checkpointed: events.some((e) => e.type === 'CheckpointUpdated' && e.checkpoint.sourceOffset === offset),
          }),
        );
      },
    });
    const sinkData = new SinkData();
    const h = spawn(newSystem(), { journal: j, snapshots: st.snapshots }, source, new MapSink(sinkData, world));

    const created = await call(h.pipeline, (replyTo) => ({ type: 'create', definition: definition(), replyTo }));
    expect(created.status).toBe('success');
    await call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    await until(async () => (await stateOf(h.pipeline)).status === 'stopped', 'the pipeline to stop at the end of the source');

    expect(sinkData.records().map((r) => r['id'])).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(sinkData.records().every((r) => r['seen'] === true)).toBe(true);
    await until(() => ackedAfter.length === 3, 'three acks');
    expect(ackedAfter).toEqual([
      { offset: 10, checkpointed: true },
      { offset: 20, checkpointed: true },
      { offset: 25, checkpointed: true },
    ]);
    const state = await stateOf(h.pipeline);
    if (state.status !== 'stopped') throw new Error(state.status);
    expect(state.reason).toBe('the source is exhausted');
    expect(state.metrics).toMatchObject({ recordsProcessed: 25, batches: 3, recordsFailed: 0 });
    expect(state.checkpoint).toMatchObject({ sourceOffset: 25, recordsProcessed: 25 });
    const types = (await journalEvents(inner)).map((e) => e.type);
    expect(types.slice(0, 5)).toEqual(['PipelineCreated', 'PipelineStarted', 'BatchIngested', 'BatchProcessed', 'CheckpointUpdated']);
  });

  it('refuses an invalid definition with every field-level problem', async () => {
    const h = spawn(newSystem(), store(), new ArraySource(new ArrayData([]), new World()), new MapSink(new SinkData(), new World()));
    const reply = await call(h.pipeline, (replyTo) => ({ type: 'create', definition: { name: 'x', batch: { size: 0 } }, replyTo }));
    expect(reply.status).toBe('error');
    if (reply.status !== 'error' || !isDataflowError(reply.error)) throw new Error('expected a typed error reply');
    expect(reply.error.tag).toBe('pipeline/invalid-definition');
    expect(reply.error.message).toMatch(/name/);
    expect(reply.error.message).toMatch(/batch\.size/);
    expect(reply.error.message).toMatch(/source/);
  });

  describe.each([
    ['before the sink writes', 'before-sink'],
    ['after the sink wrote, before the checkpoint', 'after-sink'],
    ['after the checkpoint, before the source acknowledged', 'after-checkpoint'],
  ] as const)('a crash %s', (_label, step) => {
    it('resumes from the checkpoint and delivers every record exactly once to an idempotent sink', async () => {
      const st = store();
      const inner = st.journal;
      const snapshots = st.snapshots;
      const data = new ArrayData(Array.from({ length: 35 }, (_, i) => rec(i)));
      const sinkData = new SinkData();

      // First incarnation: crashes during its second batch at `step`.
      const world1 = new World();
      let batches = 0;
      const crashOnSecond = () => {
        if (++batches === 2) world1.frozen = true;
      };
      const source1 = new ArraySource(data, world1, step === 'after-checkpoint' ? { onAck: (o) => o === 20 && (world1.frozen = true) } : {});
      const sink1 = new MapSink(sinkData, world1, {
        ...(step === 'before-sink' ? { beforeWrite: crashOnSecond } : {}),
        ...(step === 'after-sink' ? { afterWrite: crashOnSecond } : {}),
      });
      const h1 = spawn(newSystem(), { journal: new FreezableJournal(inner, world1), snapshots }, source1, sink1);
      await call(h1.pipeline, (replyTo) => ({ type: 'create', definition: definition(), replyTo }));
      await call(h1.pipeline, (replyTo) => ({ type: 'start', replyTo }));
      await until(() => world1.frozen, 'the crash');
      await new Promise((r) => setTimeout(r, 20));
      const checkpointsBefore = (await journalEvents(inner)).filter((e) => e.type === 'CheckpointUpdated').length;
      expect(checkpointsBefore).toBe(step === 'after-checkpoint' ? 2 : 1);

      // Second incarnation on the same journal and the same outside world: a new node.
      const world2 = new World();
      const h2 = spawn(newSystem(), { journal: new FreezableJournal(inner, world2), snapshots }, new ArraySource(data, world2), new MapSink(sinkData, world2));
      await until(async () => (await stateOf(h2.pipeline)).status === 'stopped', 'the recovered pipeline to finish');

      const ids = sinkData.records().map((r) => r['id']);
      expect(ids).toEqual(Array.from({ length: 35 }, (_, i) => i));
      const state = await stateOf(h2.pipeline);
      if (state.status === 'empty') throw new Error('empty');
      expect(state.metrics.recordsProcessed).toBe(35);
      const ingested = (await journalEvents(inner)).filter((e) => e.type === 'BatchIngested').map((e) => (e.type === 'BatchIngested' ? e.batchId : ''));
      expect(new Set(ingested).size).toBe(ingested.length);
    });
  });

  it('re-drives a batch after a transient sink failure, with backoff measured on the test clock', async () => {
    const kit = createActorTestKit();
    systems.push(kit.system);
    const world = new World();
    const st = store();
    const inner = st.journal;
    const data = new ArrayData(Array.from({ length: 5 }, (_, i) => rec(i)));
    const sinkData = new SinkData();
    const sink = new MapSink(sinkData, world);
    const transient = new ConnectorError('map', 'service unavailable', { retriable: true });
    sink.failures.push({ error: transient }, { error: transient });
    const h = spawn(kit.system, st, new ArraySource(data, world), sink);
    const created = call(h.pipeline, (replyTo) => ({ type: 'create', definition: definition(), replyTo }));
    await kit.advance(0);
    await created;
    const started = call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    await kit.advance(0);
    await started;
    await until(async () => (await journalEvents(inner)).filter((e) => e.type === 'RetryScheduled').length === 1, 'the first retry');
    expect(sinkData.writes).toBe(0);
    await kit.advance(999);
    expect((await journalEvents(inner)).filter((e) => e.type === 'RetryScheduled')).toHaveLength(1);
    await kit.advance(1);
    await until(async () => (await journalEvents(inner)).filter((e) => e.type === 'RetryScheduled').length === 2, 'the second retry');
    const retries = (await journalEvents(inner)).filter((e) => e.type === 'RetryScheduled');
    expect(retries.map((e) => (e.type === 'RetryScheduled' ? [e.attempt, e.backoffMs] : []))).toEqual([
      [1, 1000],
      [2, 2000],
    ]);
    await kit.advance(2000);
    await until(() => sinkData.writes === 1, 'the re-driven write');
    expect(sinkData.records().map((r) => r['id'])).toEqual([0, 1, 2, 3, 4]);
  });

  it('fails the pipeline on a permanent sink error; reset keeps the configuration and start resumes', async () => {
    const world = new World();
    const st = store();
    const data = new ArrayData(Array.from({ length: 20 }, (_, i) => rec(i)));
    const sinkData = new SinkData();
    const sink = new MapSink(sinkData, world, {});
    let writes = 0;
    const failing = new MapSink(sinkData, world, {
      beforeWrite: () => {
        if (++writes === 2) failing.failures.push({ error: new ConnectorError('map', 'schema mismatch', { retriable: false }) });
      },
    });
    const h = spawn(newSystem(), st, new ArraySource(data, world), failing);
    await call(h.pipeline, (replyTo) => ({ type: 'create', definition: definition(), replyTo }));
    await call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    await until(async () => (await stateOf(h.pipeline)).status === 'failed', 'the failure');
    const failed = await stateOf(h.pipeline);
    if (failed.status !== 'failed') throw new Error(failed.status);
    expect(failed.error.message).toMatch(/schema mismatch/);
    expect(failed.checkpoint?.sourceOffset).toBe(10);

    const reset = await call(h.pipeline, (replyTo) => ({ type: 'reset', replyTo }));
    expect(reset.status === 'success' && reset.value.state.status).toBe('configured');
    if (reset.status === 'success' && reset.value.state.status === 'configured') expect(reset.value.state.definition.name).toBe('test-pipeline');
    expect(sink.type).toBe('map');
    await call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    await until(async () => (await stateOf(h.pipeline)).status === 'stopped', 'the end');
    expect(sinkData.records().map((r) => r['id'])).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  it('replays the source from the beginning after an offsets reset, and a deleted pipeline recovers empty and can be created again', async () => {
    const world = new World();
    const st = store();
    const data = new ArrayData(Array.from({ length: 12 }, (_, i) => rec(i)));
    const sinkData = new SinkData();
    const written: DataRecord[] = [];
    const system = newSystem();
    // A re-created pipeline numbers its batches from 1 again: keep every write, not the last per batch id.
    const h = spawn(system, st, new ArraySource(data, world), new MapSink(sinkData, world, { afterWrite: (batch) => written.push(...batch.records) }));
    await call(h.pipeline, (replyTo) => ({ type: 'create', definition: definition(), replyTo }));
    await call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    await until(async () => (await stateOf(h.pipeline)).status === 'stopped', 'the end of the source');
    expect(written).toHaveLength(12);

    const deleted = await call(h.pipeline, (replyTo) => ({ type: 'delete', replyTo }));
    expect(deleted.status === 'success' && deleted.value.state).toEqual({ status: 'empty' });
    const recreated = await call(h.pipeline, (replyTo) => ({ type: 'create', definition: definition({ name: 'second' }), replyTo }));
    expect(recreated.status === 'success' && recreated.value.state.status).toBe('configured');
    await call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    const running = await call(h.pipeline, (replyTo) => ({ type: 'reset-offsets', sourceOffset: null, replyTo }));
    expect(running.status === 'error' && running.error.message).toMatch(/stop the pipeline first/);
    await until(async () => (await stateOf(h.pipeline)).status === 'stopped', 'the second run to end');
    // A fresh pipeline starts from the beginning: 12 more records.
    expect(written).toHaveLength(24);

    const reset = await call(h.pipeline, (replyTo) => ({ type: 'reset-offsets', sourceOffset: 6, replyTo }));
    expect(reset.status === 'success' && reset.value.state.status !== 'empty' && reset.value.state.checkpoint?.sourceOffset).toBe(6);
    await call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    await until(async () => (await stateOf(h.pipeline)).status === 'stopped', 'the third run to end');
    expect(written.slice(24).map((r) => r['id'])).toEqual([6, 7, 8, 9, 10, 11]);

    await call(h.pipeline, (replyTo) => ({ type: 'delete', replyTo }));
    await system.stop(h.pipeline);
    const again = spawn(newSystem(), st, new ArraySource(data, world), new MapSink(sinkData, world));
    expect(await stateOf(again.pipeline)).toEqual({ status: 'empty' });
    const types = (await journalEvents(st.journal)).map((e) => e.type);
    expect(types.filter((t) => t === 'PipelineDeleted' || t === 'OffsetsReset' || t === 'PipelineCreated')).toEqual([
      'PipelineCreated',
      'PipelineDeleted',
      'PipelineCreated',
      'OffsetsReset',
      'PipelineDeleted',
    ]);
  });

  it('keeps the events its snapshots cover unless told to delete them', async () => {
    for (const deleteEventsCoveredBySnapshots of [undefined, true]) {
      const world = new World();
      const st = store();
      const data = new ArrayData(Array.from({ length: 60 }, (_, i) => rec(i)));
      const connectors: ConnectorFactory = { createSource: () => new ArraySource(data, world), createSink: () => new MapSink(new SinkData(), world), createDeadLetterTarget: () => new ListDeadLetters() };
      const system = newSystem();
      const pipeline = system.spawn(
        pipelineActor({ pipelineId: 'p1', persistence: st, connectors, random: () => 0.5, snapshotEvery: 5, ...(deleteEventsCoveredBySnapshots === undefined ? {} : { deleteEventsCoveredBySnapshots }) }),
        'pipeline-p1',
      );
      await call(pipeline, (replyTo) => ({ type: 'create', definition: definition(), replyTo }));
      await call(pipeline, (replyTo) => ({ type: 'start', replyTo }));
      await until(async () => (await stateOf(pipeline)).status === 'stopped', 'the end of the source');
      const events = await journalEvents(st.journal);
      if (deleteEventsCoveredBySnapshots === true) expect(events[0]?.type).not.toBe('PipelineCreated');
      else expect(events.filter((e) => e.type === 'BatchProcessed')).toHaveLength(6);
    }
  });

  it('arms a batch timeout that fires and re-drives the batch', async () => {
    // A hung write never settles, so this runs on the real clock (the test
    // clock's advance waits for every handler to settle) with short timings.
    const world = new World();
    const st = store();
    const inner = st.journal;
    const sinkData = new SinkData();
    const sink = new MapSink(sinkData, world);
    sink.hang = 1;
    const h = spawn(newSystem(), st, new ArraySource(new ArrayData([rec(1), rec(2)]), world), sink);
    const retry = { maxRetries: 3, initialBackoffMs: 20, maxBackoffMs: 40, multiplier: 2, jitter: 0 };
    await call(h.pipeline, (replyTo) => ({ type: 'create', definition: definition({ batchTimeoutMs: 150, retry }), replyTo }));
    await call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    await until(async () => (await journalEvents(inner)).some((e) => e.type === 'BatchTimedOut'), 'the timeout');
    const types = (await journalEvents(inner)).map((e) => e.type);
    expect(types.slice(2, 4)).toEqual(['BatchTimedOut', 'RetryScheduled']);
    const timedOut = (await journalEvents(inner)).find((e) => e.type === 'BatchTimedOut');
    expect(timedOut).toMatchObject({ batchId: 'p1:1', timeoutMs: 150 });
    await until(() => sinkData.writes === 1, 'the re-driven batch');
    await until(async () => (await stateOf(h.pipeline)).status === 'stopped', 'the end');
    expect(sinkData.records().map((r) => r['id'])).toEqual([1, 2]);
  });

  it('dead-letters unreadable records and transform failures with stage, reason, attempt and payload', async () => {
    const world = new World();
    const records: SourceRecord[] = [
      { ok: true, value: { id: 1, body: '{"a":1}' } },
      { ok: false, raw: '{broken', reason: 'Unexpected token b in JSON at position 1' },
      { ok: true, value: { id: 3, body: 'not json' } },
    ];
    const sinkData = new SinkData();
    const dlq = new ListDeadLetters();
    const h = spawn(newSystem(), store(), new ArraySource(new ArrayData(records), world), new MapSink(sinkData, world), dlq);
    await call(h.pipeline, (replyTo) => ({
      type: 'create',
      definition: definition({
        source: { type: 'array', onError: 'dead-letter' },
        transforms: [{ type: 'json-parse', field: 'body', target: 'parsed', onError: 'dead-letter' }],
        deadLetter: { type: 'file', path: '/unused' },
      }),
      replyTo,
    }));
    await call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    await until(async () => (await stateOf(h.pipeline)).status === 'stopped', 'the end');

    expect(sinkData.records()).toEqual([{ id: 1, parsed: { a: 1 } }]);
    expect(dlq.letters).toHaveLength(2);
    expect(dlq.letters[0]).toMatchObject({ pipelineId: 'p1', stage: 'source', stageName: 'array', payload: '{broken', attempt: 1, batchId: 'p1:1' });
    expect(dlq.letters[0]?.error.message).toMatch(/Unexpected token/);
    expect(dlq.letters[1]).toMatchObject({ stage: 'transform', stageName: 'transforms[0]:json-parse', payload: { id: 3, body: 'not json' } });
    const state = await stateOf(h.pipeline);
    if (state.status === 'empty') throw new Error('empty');
    expect(state.metrics).toMatchObject({ recordsProcessed: 1, recordsFailed: 2, recordsDeadLettered: 2 });
  });

  it('applies an ingested batch once, acknowledges it again, and refuses ingest while paused', async () => {
    const world = new World();
    const sinkData = new SinkData();
    const data = new ArrayData([]);
    const source = new ArraySource(data, world);
    // An empty but never exhausted source: only ingests bring records.
    source.poll = () => (world.frozen ? world.never : new Promise((r) => setTimeout(() => r({ records: [], offset: 0, done: false }), 5)));
    const h = spawn(newSystem(), store(), source, new MapSink(sinkData, world));
    await call(h.pipeline, (replyTo) => ({ type: 'create', definition: definition(), replyTo }));
    await call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    const first = await call(h.pipeline, (replyTo) => ({ type: 'ingest', batchId: 'ext-1', records: [{ n: 1 }, { n: 2 }], replyTo }));
    expect(first).toMatchObject({ status: 'success' });
    const again = await call(h.pipeline, (replyTo) => ({ type: 'ingest', batchId: 'ext-1', records: [{ n: 1 }, { n: 2 }], replyTo }));
    expect(again).toMatchObject({ status: 'success', value: { duplicate: true } });
    expect(sinkData.writes).toBe(1);
    const state = await stateOf(h.pipeline);
    if (state.status === 'empty') throw new Error('empty');
    expect(state.metrics.recordsProcessed).toBe(2);

    await call(h.pipeline, (replyTo) => ({ type: 'pause', reason: 'maintenance', replyTo }));
    const refused = await call(h.pipeline, (replyTo) => ({ type: 'ingest', batchId: 'ext-2', records: [{ n: 3 }], replyTo }));
    expect(refused.status).toBe('error');
    if (refused.status === 'error') expect(refused.error.message).toMatch(/paused \(maintenance\)/);
    world.frozen = true;
  });

  it('bounds batches in flight: the source is polled at most one batch ahead of the sink', async () => {
    const world = new World();
    const data = new ArrayData(Array.from({ length: 100 }, (_, i) => rec(i)));
    const sinkData = new SinkData();
    const pollsAtWrite: number[] = [];
    const sink = new MapSink(sinkData, world, { beforeWrite: () => pollsAtWrite.push(data.polls) });
    const h = spawn(newSystem(), store(), new ArraySource(data, world), sink);
    await call(h.pipeline, (replyTo) => ({ type: 'create', definition: definition(), replyTo }));
    await call(h.pipeline, (replyTo) => ({ type: 'start', replyTo }));
    await until(async () => (await stateOf(h.pipeline)).status === 'stopped', 'the end');
    expect(pollsAtWrite).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
  });
});
