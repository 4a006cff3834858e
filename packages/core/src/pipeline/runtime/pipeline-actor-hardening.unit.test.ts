/**
 * Regression tests of issue 9 on the pipeline actor (in-memory journal,
 * scripted connectors): enrich stages run (1), journal faults at a status
 * change and at a checkpoint are retried (2), `system.terminate()` ends with
 * a sink that only returns when aborted (3), ingest ids do not shadow source
 * batch ids (4), and tumbling windows close on ticks, at the end of a finite
 * source and at stop (6), and an ingested record nested 3 000 levels deep
 * is refused with a field-level error (14).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ask } from '../../actor/ask.js';
import type { ActorRef } from '../../actor/actor-ref.js';
import { createActorSystem, type ActorSystem } from '../../actor/actor-system.js';
import { ConnectorError } from '../../connector/connector-errors.js';
import type { DataRecord } from '../../connector/data-record.js';
import type { Sink, SinkBatch, SinkContext, SinkWriteResult } from '../../connector/sink.js';
import type { Source, SourceBatch, SourceContext, SourceOffset, SourceRecord } from '../../connector/source.js';
import { createInMemoryPersistence } from '../../persistence/in-memory/in-memory-persistence.js';
import { PersistenceTestKit } from '../../testing/persistence-test-kit.js';
import { InMemoryLookupSource } from '../../transforms/enrich/lookup-source.js';
import type { PipelineEvent } from '../model/pipeline-events.js';
import type { PipelineState } from '../model/pipeline-state.js';
import { pipelineActor, type PipelineActorOptions, type PipelineCommand, type PipelineReply } from './pipeline-actor.js';

/** Records from an array; `gate` holds them back (empty polls) until opened; `endless` never reports the end. */
class ArraySource implements Source {
  readonly type = 'array';
  private position = 0;
  gate = true;
  acks: number[] = [];
  constructor(
    readonly records: readonly DataRecord[],
    readonly options: { endless?: boolean; onAck?: (offset: number) => void } = {},
  ) {}
  open(ctx: SourceContext): Promise<void> {
    this.position = typeof ctx.checkpoint === 'number' ? ctx.checkpoint : 0;
    return Promise.resolve();
  }
  async poll(max: number, maxWaitMs: number): Promise<SourceBatch> {
    const available = this.gate ? this.records.slice(this.position, this.position + max) : [];
    if (available.length === 0) await new Promise((r) => setTimeout(r, Math.min(maxWaitMs, 5)));
    this.position += available.length;
    const records: SourceRecord[] = available.map((value) => ({ ok: true, value }));
    return { records, offset: this.position, done: this.options.endless !== true && this.gate && this.position >= this.records.length };
  }
  ack(offset: SourceOffset): Promise<void> {
    this.acks.push(offset as number);
    this.options.onAck?.(offset as number);
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Idempotent by batch id, like a keyed store; `beforeWrite` may throw to fail a write. */
class KeyedSink implements Sink {
  readonly type = 'keyed';
  readonly batches = new Map<string, readonly DataRecord[]>();
  constructor(readonly beforeWrite: (batch: SinkBatch) => void = () => undefined) {}
  open(_ctx: SinkContext): Promise<void> {
    return Promise.resolve();
  }
  write(batch: SinkBatch): Promise<SinkWriteResult> {
    this.beforeWrite(batch);
    this.batches.set(batch.batchId, batch.records);
    return Promise.resolve({ position: this.batches.size });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  records(): DataRecord[] {
    return [...this.batches.values()].flat();
  }
}

const systems: ActorSystem[] = [];
afterEach(async () => {
  for (const s of systems.splice(0)) await s.terminate({ timeoutMs: 2_000 }).catch(() => undefined);
});

function spawnPipeline(source: Source, sink: Sink, extra: Partial<PipelineActorOptions> = {}) {
  const system = createActorSystem({ name: `hardening-${systems.length}` });
  systems.push(system);
  const options: PipelineActorOptions = {
    pipelineId: 'p1',
    persistence: createInMemoryPersistence(),
    connectors: {
      createSource: () => source,
      createSink: () => sink,
      createDeadLetterTarget: () => {
        throw new Error('no dead letters here');
      },
    },
    random: () => 0.5,
    ...extra,
  };
  const pipeline = system.spawn(pipelineActor(options), 'pipeline-p1');
  const call = (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => ask<PipelineCommand, PipelineReply>(pipeline, build, { timeoutMs: 5_000 });
  const state = () => ask<PipelineCommand, PipelineState>(pipeline, (replyTo) => ({ type: 'get-state', replyTo }), { timeoutMs: 5_000 });
  return { system, pipeline, call, state };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function definition(overrides: Record<string, unknown> = {}) {
  return {
    name: 'hardening',
    source: { type: 'array' },
    sink: { type: 'keyed' },
    batch: { size: 10, maxWaitMs: 5 },
    retry: { maxRetries: 5, initialBackoffMs: 20, maxBackoffMs: 40, multiplier: 2, jitter: 0 },
    ...overrides,
  };
}

const numbered = (n: number) => Array.from({ length: n }, (_, i) => ({ id: i, customerId: `c${i % 3}`, ts: 1_000 + i }));

async function createAndStart(p: ReturnType<typeof spawnPipeline>, def: Record<string, unknown>) {
  const created = await p.call((replyTo) => ({ type: 'create', definition: def, replyTo }));
  expect(created).toMatchObject({ status: 'success' });
  const started = await p.call((replyTo) => ({ type: 'start', replyTo }));
  expect(started).toMatchObject({ status: 'success' });
}

const stoppedOrFailed = async (p: ReturnType<typeof spawnPipeline>) => ['stopped', 'failed'].includes((await p.state()).status);

describe('defect 1: enrich stages', () => {
  it('a pipeline with an enrich stage on an asynchronous lookup source runs end to end', async () => {
    const lookups = { customers: new InMemoryLookupSource({ c0: { name: 'Ada' }, c1: { name: 'Grace' } }) };
    const sink = new KeyedSink();
    const p = spawnPipeline(new ArraySource(numbered(12)), sink, { lookups });
    await createAndStart(p, definition({ transforms: [{ type: 'enrich', lookup: 'customers', key: 'customerId', target: 'customer', onMiss: 'drop' }] }));
    await until(() => stoppedOrFailed(p), 'the end of the source');
    expect((await p.state()).status).toBe('stopped');
    const records = sink.records();
    expect(records.map((r) => r['id'])).toEqual([0, 1, 3, 4, 6, 7, 9, 10]);
    expect(records[1]).toMatchObject({ id: 1, customer: { name: 'Grace' } });
  });
});

describe('defect 2: journal faults', () => {
  function withKit(source: ArraySource, sink: KeyedSink) {
    const kit = PersistenceTestKit.wrap(createInMemoryPersistence());
    return { kit, p: spawnPipeline(source, sink, { persistence: kit }) };
  }

  it('a failed checkpoint append is retried from the checkpoint long before the batch timeout; every record lands once', async () => {
    const source = new ArraySource(numbered(30));
    const sink = new KeyedSink();
    const { kit, p } = withKit(source, sink);
    source.gate = false;
    await createAndStart(p, definition());
    kit.failNextWrites(1);
    source.gate = true;
    const startedAt = Date.now();
    await until(() => stoppedOrFailed(p), 'the end after the fault');
    expect(Date.now() - startedAt).toBeLessThan(5_000);
    expect((await p.state()).status).toBe('stopped');
    expect(sink.records().map((r) => r['id'])).toEqual(numbered(30).map((r) => r.id));
    const events = kit.writtenEvents('pipeline-p1') as PipelineEvent[];
    expect(events.some((e) => e.type === 'RetryScheduled')).toBe(true);
  });

  it('a failed append of a status change (recording a retry, then the end of the source) does not strand the pipeline', async () => {
    const kit = PersistenceTestKit.wrap(createInMemoryPersistence());
    let failedOnce = false;
    const sink = new KeyedSink((batch) => {
      if (batch.batchId === 'p1:2' && !failedOnce) {
        failedOnce = true;
        // The sink fails transiently, and the journal refuses to record that failure.
        kit.failNextWrites(1);
        throw new ConnectorError('keyed', 'connection reset', { retriable: true });
      }
    });
    const source = new ArraySource(numbered(30), {
      onAck: (offset) => {
        // The last checkpoint is in; the next append is the stop at the end of the source.
        if (offset === 30) kit.failNextWrites(1);
      },
    });
    const p = spawnPipeline(source, sink, { persistence: kit });
    await createAndStart(p, definition());
    await until(() => stoppedOrFailed(p), 'the end after both faults');
    const state = await p.state();
    expect(state.status).toBe('stopped');
    expect(sink.records().map((r) => r['id'])).toEqual(numbered(30).map((r) => r.id));
    expect(failedOnce).toBe(true);
  });

  it('a status change the journal refuses is answered with the error, and can be sent again', async () => {
    const source = new ArraySource(numbered(5));
    const sink = new KeyedSink();
    const { kit, p } = withKit(source, sink);
    await p.call((replyTo) => ({ type: 'create', definition: definition(), replyTo }));
    kit.failNextWrites(1);
    const refused = await p.call((replyTo) => ({ type: 'start', replyTo }));
    expect(refused).toMatchObject({ status: 'error', error: { retriable: true } });
    await until(async () => (await p.call((replyTo) => ({ type: 'start', replyTo }))).status === 'success', 'a start that is recorded');
    await until(() => stoppedOrFailed(p), 'the end');
    expect(sink.records()).toHaveLength(5);
  });
});

describe('defect 3: terminate with a sink that waits on the abort signal', () => {
  it('system.terminate() completes: the pipeline aborts in-flight I/O before its children stop', async () => {
    let aborted = false;
    let writing = false;
    const sink: Sink = {
      type: 'hanging',
      signal: undefined as AbortSignal | undefined,
      open(ctx: SinkContext) {
        (this as { signal?: AbortSignal }).signal = ctx.signal;
        return Promise.resolve();
      },
      write(): Promise<SinkWriteResult> {
        writing = true;
        const signal = (this as { signal?: AbortSignal }).signal;
        return new Promise((_resolve, reject) => {
          signal?.addEventListener('abort', () => {
            aborted = true;
            reject(new ConnectorError('hanging', 'aborted', { retriable: true }));
          });
        });
      },
      close: () => Promise.resolve(),
    } as Sink;
    const p = spawnPipeline(new ArraySource(numbered(3)), sink);
    await createAndStart(p, definition());
    await until(() => writing, 'the write to start');
    systems.splice(systems.indexOf(p.system), 1);
    await expect(p.system.terminate({ timeoutMs: 3_000 })).resolves.toBeUndefined();
    expect(aborted).toBe(true);
  });
});

describe('stop, then start while the stop drains', () => {
  it('the write in flight completes, and a new generation resumes from the checkpoint', async () => {
    let release: () => void = () => undefined;
    let held = 0;
    const sink = new KeyedSink();
    const write = sink.write.bind(sink);
    sink.write = async (batch) => {
      if (batch.batchId === 'p1:2' && held++ === 0) await new Promise<void>((resolve) => (release = resolve));
      return write(batch);
    };
    const p = spawnPipeline(new ArraySource(numbered(40)), sink);
    await createAndStart(p, definition());
    await until(() => held > 0, 'the second write to hang');
    expect(await p.call((replyTo) => ({ type: 'stop', reason: 'operator', replyTo }))).toMatchObject({ status: 'success' });
    expect(await p.call((replyTo) => ({ type: 'start', replyTo }))).toMatchObject({ status: 'success' });
    release();
    await until(() => stoppedOrFailed(p), 'the end of the source');
    expect((await p.state()).status).toBe('stopped');
    expect(sink.records().map((r) => r['id'])).toEqual(numbered(40).map((r) => r.id));
  });
});

describe('defect 4: ingest ids and source batch ids', () => {
  it('after ingesting a batch named p1:2, the source batches p1:1, p1:2, ... are all applied (25 records)', async () => {
    const source = new ArraySource(numbered(25));
    source.gate = false;
    const sink = new KeyedSink();
    const p = spawnPipeline(source, sink);
    await createAndStart(p, definition());
    const ingested = await p.call((replyTo) => ({ type: 'ingest', batchId: 'p1:2', records: [{ id: 100 }, { id: 101 }, { id: 102 }, { id: 103 }, { id: 104 }], replyTo }));
    expect(ingested).toMatchObject({ status: 'success' });
    source.gate = true;
    await until(() => stoppedOrFailed(p), 'the end of the source');
    const ids = sink.records().map((r) => r['id'] as number);
    expect(ids.filter((id) => id < 100)).toEqual(numbered(25).map((r) => r.id));
    expect(ids.filter((id) => id >= 100)).toEqual([100, 101, 102, 103, 104]);
    const again = await p.call((replyTo) => ({ type: 'ingest', batchId: 'p1:2', records: [{ id: 100 }], replyTo }));
    expect(again).toMatchObject({ status: 'success', value: { duplicate: true } });
  });
});

describe('defect 14: ingested records out of bounds', () => {
  it('a record nested 3 000 levels deep is refused with a field-level error; the pipeline keeps running and takes the next batch', async () => {
    const source = new ArraySource([], { endless: true });
    const sink = new KeyedSink();
    const p = spawnPipeline(source, sink);
    await createAndStart(p, definition());
    let deep: DataRecord = { leaf: true };
    for (let i = 0; i < 3_000; i++) deep = { child: deep };
    const refused = await p.call((replyTo) => ({ type: 'ingest', batchId: 'deep', records: [{ id: 1 }, deep], replyTo }));
    expect(refused.status).toBe('error');
    if (refused.status !== 'error') return;
    expect(refused.error).toMatchObject({ tag: 'pipeline/invalid-record', retriable: false, batchId: 'deep' });
    const [issue] = (refused.error as unknown as { issues: { path: string; message: string }[] }).issues;
    expect(issue?.path).toMatch(/^records\[1\]\.child\.child\./);
    expect(issue?.message).toMatch(/nested/i);
    expect(sink.records()).toEqual([]);
    const ok = await p.call((replyTo) => ({ type: 'ingest', batchId: 'fine', records: [{ id: 2 }], replyTo }));
    expect(ok).toMatchObject({ status: 'success' });
    await until(() => sink.records().length === 1, 'the valid batch in the sink');
    expect(sink.records()).toEqual([{ id: 2 }]);
    expect((await p.state()).status).toBe('running');
  });
});

describe('defect 6: tumbling windows', () => {
  const countPerWindow = (extra: Record<string, unknown> = {}) => ({
    type: 'aggregate',
    groupBy: ['customerId'],
    windowMs: 60_000,
    aggregations: [{ op: 'count', as: 'n' }],
    ...extra,
  });

  it('a pipeline that runs to the end of its source ends with its open windows in the sink, checkpointed', async () => {
    const sink = new KeyedSink();
    const p = spawnPipeline(new ArraySource(numbered(25)), sink);
    await createAndStart(p, definition({ transforms: [countPerWindow({ timestampField: 'ts' })] }));
    await until(() => stoppedOrFailed(p), 'the end of the source');
    expect((await p.state()).status).toBe('stopped');
    expect(sink.records().map((r) => [r['customerId'], r['n']])).toEqual([
      ['c0', 9],
      ['c1', 8],
      ['c2', 8],
    ]);
    const state = await p.state();
    if (state.status === 'empty') throw new Error('empty');
    expect(state.checkpoint?.transformStates).toEqual([{ watermark: 1_024, windows: [] }]);
  });

  it('a stop flushes the open windows of a source that has not ended', async () => {
    const sink = new KeyedSink();
    const p = spawnPipeline(new ArraySource(numbered(7), { endless: true }), sink);
    await createAndStart(p, definition({ transforms: [countPerWindow({ timestampField: 'ts' })] }));
    await until(async () => {
      const s = await p.state();
      return s.status !== 'empty' && s.checkpoint?.sourceOffset === 7;
    }, 'the records to be read');
    expect(sink.records()).toEqual([]);
    await p.call((replyTo) => ({ type: 'stop', reason: 'maintenance', replyTo }));
    await until(() => sink.records().length === 3, 'the flushed windows');
    expect(sink.records().reduce((n, r) => n + (r['n'] as number), 0)).toBe(7);
  });

  it('empty polls are ticks: a processing-time window closes while the source is idle', async () => {
    const sink = new KeyedSink();
    const p = spawnPipeline(new ArraySource(numbered(4), { endless: true }), sink);
    await createAndStart(p, definition({ transforms: [countPerWindow({ windowMs: 50 })] }));
    await until(() => sink.records().length > 0, 'the window to close on a tick');
    expect(sink.records().reduce((n, r) => n + (r['n'] as number), 0)).toBe(4);
    expect((await p.state()).status).toBe('running');
  });
});
