import { InvalidConnectorOptionsError, isDataflowError, type SourceRecord } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { GeneratorSource, type GeneratorSourceDefinition } from './generator-source.js';
import type { PacingClock } from './pacing-clock.js';

/** Simulated time: sleeping advances the clock at once and is recorded. */
function simulatedClock(startMs = 1_000_000): PacingClock & { sleeps: number[] } {
  let nowMs = startMs;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => nowMs,
    sleep: (ms) => {
      sleeps.push(ms);
      nowMs += ms;
      return Promise.resolve();
    },
  };
}

const signal = new AbortController().signal;

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const shape: GeneratorSourceDefinition = {
  type: 'generator',
  seed: 42,
  fields: {
    id: { kind: 'sequence' },
    region: { kind: 'pick', values: ['eu', 'us', 'ap'] },
    level: { kind: 'int', min: -3, max: 3 },
    temp: { kind: 'float', min: 10, max: 20, decimals: 2 },
    source: { kind: 'constant', value: { name: 'demo' } },
    at: { kind: 'timestamp', startMs: Date.UTC(2024, 0, 1), stepMs: 500 },
    key: { kind: 'uuid' },
  },
};

async function readAll(source: GeneratorSource, checkpoint: number | undefined, batchSize: number, limit = 10_000): Promise<SourceRecord[]> {
  await source.open({ pipelineId: 'p', checkpoint, signal });
  const records: SourceRecord[] = [];
  for (;;) {
    const batch = await source.poll(batchSize, 0);
    records.push(...batch.records);
    if (batch.done || records.length >= limit) return records;
  }
}

describe('GeneratorSource', () => {
  it('produces the same records for the same seed and different ones for another seed', async () => {
    const a = await readAll(new GeneratorSource({ ...shape, count: 50 }), undefined, 7);
    const b = await readAll(new GeneratorSource({ ...shape, count: 50 }), undefined, 50);
    const c = await readAll(new GeneratorSource({ ...shape, count: 50, seed: 43 }), undefined, 50);
    expect(a).toEqual(b);
    expect(c.map((r) => r.ok && r.value['key'])).not.toEqual(a.map((r) => r.ok && r.value['key']));
  });

  it('resuming from offset N reproduces record N + 1 and the rest exactly', async () => {
    const all = await readAll(new GeneratorSource({ ...shape, count: 30 }), undefined, 30);
    const first = new GeneratorSource({ ...shape, count: 30 });
    await first.open({ pipelineId: 'p', checkpoint: undefined, signal });
    const head = await first.poll(12, 0);
    expect(head.offset).toBe(12);
    const tail = await readAll(new GeneratorSource({ ...shape, count: 30 }), head.offset as number, 5);
    expect([...head.records, ...tail]).toEqual(all);
    expect(tail[0]).toEqual({ ok: true, value: expect.objectContaining({ id: 13 }) as unknown });
  });

  it('stops after count records with done and an offset equal to the count', async () => {
    const source = new GeneratorSource({ type: 'generator', count: 5 });
    await source.open({ pipelineId: 'p', checkpoint: undefined, signal });
    const first = await source.poll(3, 0);
    const second = await source.poll(3, 0);
    const third = await source.poll(3, 0);
    expect([first.offset, first.done, second.offset, second.done]).toEqual([3, false, 5, true]);
    expect(second.records.map((r) => r.ok && r.value)).toEqual([{ id: 4 }, { id: 5 }]);
    expect(third).toEqual({ records: [], offset: 5, done: true });
  });

  it('keeps every value inside its declared range and format', async () => {
    const records = await readAll(new GeneratorSource({ ...shape, count: 2000 }), undefined, 500);
    const values = records.map((r) => (r.ok ? r.value : {}));
    expect(new Set(values.map((v) => v['region']))).toEqual(new Set(['eu', 'us', 'ap']));
    expect(new Set(values.map((v) => v['level']))).toEqual(new Set([-3, -2, -1, 0, 1, 2, 3]));
    for (const v of values) {
      expect(v['temp']).toBeGreaterThanOrEqual(10);
      expect(v['temp']).toBeLessThanOrEqual(20);
      expect(Math.round((v['temp'] as number) * 100) / 100).toBe(v['temp']);
      expect(v['key']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(v['source']).toEqual({ name: 'demo' });
    }
    expect(new Set(values.map((v) => v['key'])).size).toBe(2000);
    expect(values[3]?.['at']).toBe('2024-01-01T00:00:01.500Z');
  });

  it('paces emission at the rate through the injected clock', async () => {
    const clock = simulatedClock();
    const source = new GeneratorSource({ type: 'generator', rate: 10 }, { clock });
    await source.open({ pipelineId: 'p', checkpoint: undefined, signal });
    // Record k is due k * 100 ms after open: 5 records need 400 ms.
    const first = await source.poll(5, 10_000);
    expect([first.records.length, clock.sleeps]).toEqual([5, [400]]);
    // 100 records would need 10 s; after waiting 1 s, the ten due by then are returned.
    const second = await source.poll(100, 1000);
    expect([second.records.length, second.offset, clock.sleeps]).toEqual([10, 15, [400, 1000]]);
  });

  it('does not burst more than one second of backlog after a stall', async () => {
    const clock = simulatedClock();
    const source = new GeneratorSource({ type: 'generator', rate: 10 }, { clock });
    await source.open({ pipelineId: 'p', checkpoint: undefined, signal });
    await clock.sleep(60_000, signal);
    const batch = await source.poll(1000, 0);
    expect(batch.records).toHaveLength(11);
  });

  it('stamps timestamps without startMs with the clock time of emission', async () => {
    const clock = simulatedClock(Date.UTC(2030, 5, 1));
    const source = new GeneratorSource({ type: 'generator', fields: { at: { kind: 'timestamp', format: 'epoch-ms' } } }, { clock });
    await source.open({ pipelineId: 'p', checkpoint: undefined, signal });
    expect((await source.poll(1, 0)).records).toEqual([{ ok: true, value: { at: Date.UTC(2030, 5, 1) } }]);
  });

  it('reports every invalid option with its field path', () => {
    const build = (): GeneratorSource =>
      new GeneratorSource({
        type: 'generator',
        rate: -1,
        fields: { a: { kind: 'int', min: 5, max: 1 }, b: { kind: 'pick', values: [] } },
      });
    const error = thrownBy(build);
    expect(error).toBeInstanceOf(InvalidConnectorOptionsError);
    expect(isDataflowError(error, 'connector/invalid-options')).toBe(true);
    expect((error as InvalidConnectorOptionsError).issues.map((i) => i.path)).toEqual(['rate', 'fields.b.values', 'fields.a.min']);
  });

  it('refuses a checkpoint that is not a record count within the count', async () => {
    const source = new GeneratorSource({ type: 'generator', count: 10 });
    await expect(source.open({ pipelineId: 'p', checkpoint: 11, signal })).rejects.toMatchObject({ tag: 'connector/failed', retriable: false });
    await expect(source.open({ pipelineId: 'p', checkpoint: 'x', signal })).rejects.toMatchObject({ tag: 'connector/failed' });
  });
});
