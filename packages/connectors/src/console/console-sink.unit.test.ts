import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConsoleSink } from './console-sink.js';

function collector(): Writable & { text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return Object.assign(stream, { text: () => chunks.join('') });
}

const signal = new AbortController().signal;

describe('ConsoleSink', () => {
  it('prints one compact summary line per batch', async () => {
    const stream = collector();
    const sink = new ConsoleSink({ type: 'console', maxPreviewChars: 20 }, { stream });
    await sink.open({ pipelineId: 'orders', checkpoint: undefined, signal });
    await sink.write({ batchId: '12', records: [{ id: 1, name: 'a rather long name here' }, { id: 2 }] });
    await sink.write({ batchId: '13', records: [{ id: 3 }] });
    await sink.write({ batchId: '14', records: [] });
    expect(stream.text()).toBe(
      '[orders] batch 12: 2 records (first: {"id":1,"name":"a r…)\n[orders] batch 13: 1 record (first: {"id":3})\n[orders] batch 14: 0 records\n',
    );
  });

  it('prints one JSON line per record in records format', async () => {
    const stream = collector();
    const sink = new ConsoleSink({ type: 'console', format: 'records' }, { stream });
    await sink.open({ pipelineId: 'p', checkpoint: undefined, signal });
    expect(await sink.write({ batchId: '1', records: [{ a: 1 }, { b: 'x' }] })).toEqual({});
    expect(stream.text()).toBe('[p] {"a":1}\n[p] {"b":"x"}\n');
  });

  it('reports a failing stream as a ConnectorError', async () => {
    const stream = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error('EPIPE'));
      },
    });
    stream.on('error', () => undefined); // the write callback carries the error to the sink
    const sink = new ConsoleSink({ type: 'console' }, { stream });
    await sink.open({ pipelineId: 'p', checkpoint: undefined, signal });
    await expect(sink.write({ batchId: '1', records: [{ a: 1 }] })).rejects.toMatchObject({ tag: 'connector/failed', message: /EPIPE/ });
  });
});
