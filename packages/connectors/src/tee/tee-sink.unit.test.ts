/**
 * The tee sink: composed positions that keep a file inside it exactly-once
 * across a crash, failures and refusals of inner sinks, and validation of
 * inner sink options through the connector registry.
 */
import { isRetriable, validatePipelineDefinition, type DataRecord, type Sink, type SinkBatch, type SinkPosition, type SinkWriteResult } from '@dataflow/core';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSink } from '../factory/create-connector.js';
import { localConnectorRegistry } from '../factory/local-connector-schemas.js';
import { InMemorySink } from '../memory/in-memory-sink.js';
import { TeeSink, type TeeSinkDefinition } from './tee-sink.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-tee-sink-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const signal = new AbortController().signal;
const batch = (n: number): SinkBatch => ({ batchId: `demo:${n}`, records: [{ id: n * 10 + 1 }, { id: n * 10 + 2 }] });

class Lines extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
    done();
  }
}

function consoleAndFile(path: string, out: Lines): TeeSink {
  const definition: TeeSinkDefinition = { type: 'tee', sinks: [{ type: 'console' }, { type: 'file', path, format: 'jsonl' }] };
  return new TeeSink(definition, { createSink: (d) => createSink(d, { stream: out }) });
}

const ids = async (path: string): Promise<number[]> =>
  (await readFile(path, 'utf8'))
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { id: number }).id);

/** A sink scripted per test. */
class ScriptedSink implements Sink {
  readonly type = 'scripted';
  closeError: Error | undefined;
  constructor(readonly onWrite: (batch: SinkBatch) => SinkWriteResult) {}
  open(): Promise<void> {
    return Promise.resolve();
  }
  write(batch: SinkBatch): Promise<SinkWriteResult> {
    return Promise.resolve(this.onWrite(batch));
  }
  close(): Promise<void> {
    return this.closeError === undefined ? Promise.resolve() : Promise.reject(this.closeError);
  }
}

const twoConsoles: TeeSinkDefinition = { type: 'tee', sinks: [{ type: 'console' }, { type: 'console' }] };

describe('TeeSink', () => {
  it('reports the position of every sink and keeps a file inside it exactly-once across a crash', async () => {
    const path = join(dir, 'once', 'out.jsonl');
    const out = new Lines();
    const tee = consoleAndFile(path, out);
    await tee.open({ pipelineId: 'demo', checkpoint: undefined, signal });
    await tee.write(batch(1));
    const { position: checkpoint } = await tee.write(batch(2));
    expect(checkpoint).toEqual({ sinks: [null, { file: 'out.jsonl', bytes: 40, index: 0 }] });
    await tee.write(batch(3)); // written, never checkpointed: the process dies here
    await tee.close();
    expect(await ids(path)).toEqual([11, 12, 21, 22, 31, 32]);

    const again = consoleAndFile(path, out);
    await again.open({ pipelineId: 'demo', checkpoint, signal });
    expect(await ids(path)).toEqual([11, 12, 21, 22]);
    await again.write(batch(3));
    await again.close();
    expect(await ids(path)).toEqual([11, 12, 21, 22, 31, 32]);
    // The console is at-least-once: it showed batch 3 twice.
    expect(out.lines.filter((l) => l.includes('batch demo:3'))).toHaveLength(2);
    expect(out.lines[0]).toBe('[demo] batch demo:1: 2 records (first: {"id":11})');
  });

  it('fails the batch with the inner error (retriable kept) when one sink fails, after the sinks before it wrote', async () => {
    const first = new InMemorySink();
    const second = new InMemorySink();
    const inner = [first, second];
    const tee = new TeeSink(twoConsoles, { createSink: () => inner.shift() as Sink });
    await tee.open({ pipelineId: 'p', checkpoint: undefined, signal });
    second.failNextWrites(1, { retriable: true, message: 'broker away' });
    const failure: unknown = await tee.write(batch(1)).catch((e: unknown) => e);
    expect(failure).toMatchObject({ message: expect.stringContaining('broker away') as unknown });
    expect(isRetriable(failure)).toBe(true);
    expect(first.records()).toHaveLength(2);
    // Re-driven with the same batch id: an idempotent sink keeps one copy.
    await tee.write(batch(1));
    expect(first.records()).toHaveLength(2);
    expect(second.records()).toHaveLength(2);
  });

  it('refuses a record once when any sink refuses it, joining the reasons', async () => {
    const refuse = (indexes: number[], why: string) => (): SinkWriteResult => ({ position: 1, rejected: indexes.map((index) => ({ index, reason: why })) });
    const inner: Sink[] = [new ScriptedSink(refuse([1], 'too long')), new ScriptedSink(refuse([1, 0], 'no key'))];
    const tee = new TeeSink(twoConsoles, { createSink: () => inner.shift() as Sink });
    await tee.open({ pipelineId: 'p', checkpoint: undefined, signal });
    expect(await tee.write(batch(1))).toEqual({
      position: { sinks: [1, 1] },
      rejected: [
        { index: 0, reason: 'sinks[1] (scripted): no key' },
        { index: 1, reason: 'sinks[0] (scripted): too long; sinks[1] (scripted): no key' },
      ],
    });
  });

  it('refuses a checkpoint that is not a position of a tee of its size, permanently', async () => {
    const tee = new TeeSink(twoConsoles, { createSink: (d) => createSink(d, { stream: new Lines() }) });
    for (const checkpoint of [{ sinks: [null] }, 7, [null, null]] as SinkPosition[]) {
      const error: unknown = await tee.open({ pipelineId: 'p', checkpoint, signal }).catch((e: unknown) => e);
      expect(error).toMatchObject({ tag: 'connector/failed', retriable: false });
    }
    await expect(tee.write(batch(1))).rejects.toThrow('write before open');
  });

  it('closes every sink even when one fails to close, and reports the failure', async () => {
    const broken = new ScriptedSink(() => ({}));
    broken.closeError = new Error('disk gone');
    const records: DataRecord[][] = [];
    const inner: Sink[] = [broken, new ScriptedSink((b) => (records.push([...b.records]), {}))];
    const tee = new TeeSink(twoConsoles, { createSink: () => inner.shift() as Sink });
    await tee.open({ pipelineId: 'p', checkpoint: undefined, signal });
    await tee.write(batch(1));
    await expect(tee.close()).rejects.toMatchObject({ message: expect.stringContaining('1 of 2 sinks failed to close') as unknown });
    expect(records).toHaveLength(1);
  });

  it('validates inner sinks through the registry, with field paths', () => {
    const result = validatePipelineDefinition(
      {
        name: 'tee-demo',
        source: { type: 'generator' },
        sink: { type: 'tee', sinks: [{ type: 'console', format: 'loud' }, { type: 'file', format: 'jsonl' }, { type: 'kafka' }] },
      },
      { connectors: localConnectorRegistry },
    );
    expect(result.ok).toBe(false);
    const paths = result.ok ? [] : result.issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['sink.sinks[0].format', 'sink.sinks[1].path', 'sink.sinks[2].type']));
    expect(() => createSink({ type: 'tee', sinks: [{ type: 'console' }] })).toThrow(/A tee needs at least 2 sinks/);
  });
});

describe('TeeSink pipelinedWrites', () => {
  it('may be written ahead of a checkpoint only when every inner sink may', () => {
    const twoFiles = new TeeSink(
      {
        type: 'tee',
        sinks: [
          { type: 'file', path: join(dir, 'ahead-1.jsonl'), format: 'jsonl' },
          { type: 'file', path: join(dir, 'ahead-2.jsonl'), format: 'jsonl' },
        ],
      },
      { createSink: (d) => createSink(d) },
    );
    expect(twoFiles.pipelinedWrites).toBe(true);
    // The console prints what it gets: a write before the previous checkpoint could print a batch twice.
    expect(consoleAndFile(join(dir, 'ahead-3.jsonl'), new Lines()).pipelinedWrites).toBe(false);
  });
});
