import { describe, expect, it } from 'vitest';
import { InMemorySink } from './in-memory-sink.js';

const signal = new AbortController().signal;

describe('InMemorySink', () => {
  it('replaces a batch written again under the same id instead of duplicating it', async () => {
    const sink = new InMemorySink();
    await sink.open({ pipelineId: 'p', checkpoint: undefined, signal });
    await sink.write({ batchId: 'b1', records: [{ n: 1 }] });
    await sink.write({ batchId: 'b2', records: [{ n: 2 }, { n: 3 }] });
    await sink.write({ batchId: 'b1', records: [{ n: 1, again: true }] });
    expect(sink.records()).toEqual([{ n: 1, again: true }, { n: 2 }, { n: 3 }]);
    expect(sink.batches().map((b) => b.batchId)).toEqual(['b1', 'b2']);
    expect(sink.writeAttempts).toBe(3);
  });

  it('fails the next writes as injected, then stores again', async () => {
    const sink = new InMemorySink();
    await sink.open({ pipelineId: 'p', checkpoint: undefined, signal });
    sink.failNextWrites(2);
    await expect(sink.write({ batchId: 'b1', records: [{ n: 1 }] })).rejects.toMatchObject({ tag: 'connector/failed', retriable: true });
    await expect(sink.write({ batchId: 'b1', records: [{ n: 1 }] })).rejects.toThrow(/transient/);
    await sink.write({ batchId: 'b1', records: [{ n: 1 }] });
    sink.failNextWrites(1, { retriable: false, message: 'disk on fire' });
    await expect(sink.write({ batchId: 'b2', records: [] })).rejects.toMatchObject({ retriable: false, message: 'memory: disk on fire' });
    expect(sink.records()).toEqual([{ n: 1 }]);
  });

  it('tracks its lifecycle and refuses writes when not open', async () => {
    const sink = new InMemorySink();
    await expect(sink.write({ batchId: 'b', records: [] })).rejects.toMatchObject({ retriable: false });
    await sink.open({ pipelineId: 'orders', checkpoint: undefined, signal });
    expect(sink.status).toEqual({ status: 'open', pipelineId: 'orders' });
    await sink.close();
    expect(sink.status).toEqual({ status: 'closed' });
  });
});
