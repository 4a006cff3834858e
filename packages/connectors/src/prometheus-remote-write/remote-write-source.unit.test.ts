import { request } from 'node:http';
import { compressSync } from 'snappy';
import { afterEach, describe, expect, it } from 'vitest';
import { WriteRequestType } from './remote-write-decoder.js';
import { parseRemoteWriteSourceDefinition, RemoteWriteSource } from './remote-write-source.js';

function body(n: number): Buffer {
  const samples = Array.from({ length: n }, (_, i) => ({ value: i, timestamp: 1000 + i }));
  const message = WriteRequestType.fromObject({ timeseries: [{ labels: [{ name: '__name__', value: 'm' }, { name: 'job', value: 'j' }], samples }] });
  return compressSync(Buffer.from(WriteRequestType.encode(message).finish()));
}

function post(source: RemoteWriteSource, payload: Buffer, contentType = 'application/x-protobuf'): Promise<{ status: number; text: string }> {
  const { port } = source.address();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/v1/write', method: 'POST', headers: { 'content-type': contentType, 'content-encoding': 'snappy' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

let source: RemoteWriteSource | undefined;
afterEach(async () => {
  await source?.close();
  source = undefined;
});

async function openSource(extra: Record<string, unknown> = {}): Promise<RemoteWriteSource> {
  source = new RemoteWriteSource(parseRemoteWriteSourceDefinition({ type: 'prometheus-remote-write', port: 0, ...extra }));
  await source.open({ pipelineId: 'p', checkpoint: undefined, signal: new AbortController().signal });
  return source;
}

describe('RemoteWriteSource', () => {
  it('answers 204 only after the batch holding the last record is acked', async () => {
    const s = await openSource();
    let answered = false;
    const response = post(s, body(3)).then((r) => ((answered = true), r));
    const first = await s.poll(2, 2000);
    expect(first.records).toHaveLength(2);
    await s.ack(first.offset);
    const second = await s.poll(10, 100);
    expect(second.records).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(answered).toBe(false);
    await s.ack(second.offset);
    expect((await response).status).toBe(204);
  });

  it('drops stale markers by default and keeps them as "StaleNaN" with staleMarkers: keep', async () => {
    const stale = Buffer.alloc(8);
    stale.writeBigUInt64LE(0x7ff0000000000002n);
    const staleValue = stale.readDoubleLE(0);
    const message = WriteRequestType.fromObject({
      timeseries: [{ labels: [{ name: '__name__', value: 'm' }, { name: 'job', value: 'j' }], samples: [{ value: 1, timestamp: 1 }, { value: staleValue, timestamp: 2 }] }],
    });
    const payload = compressSync(Buffer.from(WriteRequestType.encode(message).finish()));
    const dropping = await openSource();
    const dropped = post(dropping, payload);
    const kept = await dropping.poll(10, 2000);
    expect(kept.records.map((r) => (r.ok ? r.value['value'] : null))).toEqual([1]);
    expect(dropping.droppedStaleMarkers).toBe(1);
    await dropping.ack(kept.offset);
    expect((await dropped).status).toBe(204);
    await dropping.close();
    const keeping = await openSource({ staleMarkers: 'keep' });
    const answered = post(keeping, payload);
    const both = await keeping.poll(10, 2000);
    expect(both.records.map((r) => (r.ok ? r.value['value'] : null))).toEqual([1, 'StaleNaN']);
    await keeping.ack(both.offset);
    expect((await answered).status).toBe(204);
  });

  it('answers 400 with the reason for a malformed body or content type', async () => {
    const s = await openSource();
    const garbage = await post(s, Buffer.from('garbage'));
    expect(garbage.status).toBe(400);
    expect(garbage.text).toMatch(/snappy/);
    const wrongType = await post(s, body(1), 'text/plain');
    expect(wrongType.status).toBe(400);
    expect(wrongType.text).toMatch(/content-type/);
  });

  it('answers 413 beyond maxBodyBytes and 503 with Retry-After when the buffer is full', async () => {
    const s = await openSource({ maxBodyBytes: 64, maxBufferedSamples: 5 });
    expect((await post(s, Buffer.alloc(1000, 1))).status).toBe(413);
    await s.close();
    const t = await openSource({ maxBufferedSamples: 5 });
    const pending = post(t, body(4));
    await t.poll(10, 2000);
    expect((await post(t, body(4))).status).toBe(503);
    await t.close();
    expect((await pending).status).toBe(503);
  });

  it('rejects bad options with field-level errors', () => {
    expect(() => parseRemoteWriteSourceDefinition({ type: 'prometheus-remote-write', port: 70000, path: 'x' })).toThrow(/port: .*path: /);
  });
});
