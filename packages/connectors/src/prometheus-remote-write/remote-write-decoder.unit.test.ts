import { compressSync } from 'snappy';
import { describe, expect, it } from 'vitest';
import { decodeRemoteWrite, isStaleMarker, MalformedRemoteWriteError, WriteRequestType } from './remote-write-decoder.js';

function encode(request: unknown, compress = true): Buffer {
  const bytes = Buffer.from(WriteRequestType.encode(WriteRequestType.fromObject(request as Record<string, unknown>)).finish());
  return compress ? compressSync(bytes) : bytes;
}

const staleNaN = new DataView(new ArrayBuffer(8));
staleNaN.setUint32(0, 0x7ff00000);
staleNaN.setUint32(4, 0x00000002);

describe('decodeRemoteWrite', () => {
  it('turns each sample into a C4 record with labels, job and instance', () => {
    const body = encode({
      timeseries: [
        {
          labels: [
            { name: '__name__', value: 'http_requests_total' },
            { name: 'job', value: 'api' },
            { name: 'instance', value: 'h:9100' },
            { name: 'code', value: '200' },
          ],
          samples: [
            { value: 1.5, timestamp: 1_700_000_000_123 },
            { value: 2, timestamp: 1_700_000_001_123 },
          ],
        },
      ],
    });
    expect(decodeRemoteWrite(body)).toEqual([
      { metric_name: 'http_requests_total', labels: { job: 'api', instance: 'h:9100', code: '200' }, value: 1.5, timestamp: 1_700_000_000_123, job: 'api', instance: 'h:9100' },
      { metric_name: 'http_requests_total', labels: { job: 'api', instance: 'h:9100', code: '200' }, value: 2, timestamp: 1_700_000_001_123, job: 'api', instance: 'h:9100' },
    ]);
  });

  it('writes non-finite values as strings and keeps stale markers distinguishable', () => {
    const stale = staleNaN.getFloat64(0);
    expect(isStaleMarker(stale)).toBe(true);
    expect(isStaleMarker(NaN)).toBe(false);
    const body = encode({
      timeseries: [
        {
          labels: [{ name: '__name__', value: 'g' }],
          samples: [
            { value: NaN, timestamp: 1 },
            { value: Infinity, timestamp: 2 },
            { value: -Infinity, timestamp: 3 },
            { value: stale, timestamp: 4 },
          ],
        },
      ],
    });
    expect(decodeRemoteWrite(body).map((s) => s.value)).toEqual(['NaN', '+Inf', '-Inf', 'StaleNaN']);
  });

  it('keeps a __proto__ label as data', () => {
    const body = encode({ timeseries: [{ labels: [{ name: '__name__', value: 'm' }, { name: '__proto__', value: 'x' }], samples: [{ value: 1, timestamp: 5 }] }] });
    const [sample] = decodeRemoteWrite(body);
    expect(Object.getOwnPropertyDescriptor(sample!.labels, '__proto__')?.value).toBe('x');
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });

  it('rejects a body that is not snappy compressed', () => {
    expect(() => decodeRemoteWrite(Buffer.from('not snappy at all, just text'))).toThrow(MalformedRemoteWriteError);
  });

  it('rejects snappy data that is not a protobuf WriteRequest', () => {
    expect(() => decodeRemoteWrite(compressSync(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f])))).toThrow(/not a protobuf WriteRequest/);
  });

  it('rejects a series without __name__', () => {
    const body = encode({ timeseries: [{ labels: [{ name: 'job', value: 'a' }], samples: [{ value: 1, timestamp: 1 }] }] });
    expect(() => decodeRemoteWrite(body)).toThrow(/timeseries\[0\] has no __name__ label/);
  });
});
