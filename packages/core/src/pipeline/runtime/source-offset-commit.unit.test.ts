/**
 * Contract C1 (ADR 0009): every sink write carries the source offset its
 * checkpoint will store, and a sink that commits source offsets itself turns
 * off pipelined writes and opens the source with `offsetsCommittedBySink`.
 */
import { describe, expect, it } from 'vitest';
import type { Sink, SinkBatch, SinkContext, SinkWriteResult } from '../../connector/sink.js';
import type { Source, SourceBatch, SourceContext } from '../../connector/source.js';
import { validatePipelineDefinition } from '../definition/pipeline-definition.js';
import { openCycle, stepCycle } from './batch-cycle.js';
import { ConnectorRun } from './connector-run.js';

function definition() {
  const validation = validatePipelineDefinition({
    name: 'c1-offsets', source: { type: 'array' }, sink: { type: 'map' }, batch: { size: 10, maxWaitMs: 5 },
    batchTimeoutMs: 1000,
    retry: { maxRetries: 2, initialBackoffMs: 10, maxBackoffMs: 10, multiplier: 1, jitter: 0 },
  });
  if (!validation.ok) throw new Error(JSON.stringify(validation.issues));
  return validation.definition;
}

class RecordingSource implements Source {
  readonly type = 'array';
  contexts: SourceContext[] = [];
  open(ctx: SourceContext): Promise<void> {
    this.contexts.push(ctx);
    return Promise.resolve();
  }
  poll(): Promise<SourceBatch> {
    return Promise.resolve({ records: [], offset: null, done: true });
  }
  ack(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

class RecordingSink implements Sink {
  readonly type = 'map';
  batches: SinkBatch[] = [];
  constructor(
    readonly pipelinedWrites: boolean,
    readonly commitsSourceOffsets: boolean,
  ) {}
  open(_ctx: SinkContext): Promise<void> {
    return Promise.resolve();
  }
  write(batch: SinkBatch): Promise<SinkWriteResult> {
    this.batches.push(batch);
    return Promise.resolve({});
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function runWith(sink: Sink, source = new RecordingSource()): { run: ConnectorRun; source: RecordingSource } {
  const run = ConnectorRun.create(1, 'p1', definition(), { createSource: () => source, createSink: () => sink, createDeadLetterTarget: () => { throw new Error('none'); } }, undefined);
  return { run, source };
}

describe('C1: source offsets in the sink port', () => {
  it('the write effect of a batch carries the source offset its checkpoint stores', () => {
    const config = { pipelineId: 'p1', definition: definition(), stateful: false, pipelinedWrites: false, hasDeadLetterTarget: false, maxBatchesPerCheckpoint: 1 };
    let cycle = openCycle(config, { recorded: 0, committedStates: [], offset: null, position: null, retry: null });
    cycle = stepCycle(cycle, { type: 'opened' }, 0).cycle;
    const offset = { groupId: 'g', positions: [['t', 0, '3']] };
    cycle = stepCycle(cycle, { type: 'polled', batch: { records: [{ ok: true, value: { id: 1 } }], offset, done: false } }, 0).cycle;
    const { effects } = stepCycle(cycle, { type: 'prepared', batchId: 'p1:1', result: { output: [{ id: 1 }], letters: [], failed: 0, transformStates: [] } }, 0);
    const write = effects.find((e) => e.type === 'write');
    expect(write).toEqual({ type: 'write', batchId: 'p1:1', records: [{ id: 1 }], sourceOffset: offset });
  });

  it('ConnectorRun.write hands the source offset to the sink', async () => {
    const sink = new RecordingSink(false, false);
    const { run } = runWith(sink);
    await run.write({ batchId: 'p1:1', records: [{ id: 1 }], sourceOffset: 7 });
    expect(sink.batches[0]?.sourceOffset).toBe(7);
  });

  it('a sink committing source offsets gets no pipelined writes and the source is opened with offsetsCommittedBySink', async () => {
    const { run, source } = runWith(new RecordingSink(true, true));
    expect(run.pipelinedWrites).toBe(false);
    await run.open(5, undefined);
    expect(source.contexts[0]?.offsetsCommittedBySink).toBe(true);
    expect(source.contexts[0]?.checkpoint).toBe(5);
  });

  it('other sinks keep pipelined writes and the source commits its own offsets', async () => {
    const { run, source } = runWith(new RecordingSink(true, false));
    expect(run.pipelinedWrites).toBe(true);
    await run.open(undefined, undefined);
    expect(source.contexts[0]?.offsetsCommittedBySink).toBeUndefined();
  });
});
