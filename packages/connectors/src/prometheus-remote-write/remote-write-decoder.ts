/**
 * Decoding of Prometheus remote-write 1.0 bodies: a snappy (block format)
 * compressed protobuf `prometheus.WriteRequest` (prompb types.proto +
 * remote.proto), turned into C4 sample records
 * `{ metric_name, labels, value, timestamp, job, instance }`.
 *
 * Stale markers (Prometheus' NaN with bit pattern 0x7ff0000000000002, written
 * when a series disappears) are kept distinguishable: their value is the string
 * `"StaleNaN"` instead of `"NaN"`.
 */
import protobuf from 'protobufjs';
import { uncompressSync } from 'snappy';
import { ConnectorError } from '@dataflow/core';

/** The subset of prompb needed by remote-write 1.0 (field numbers as in prometheus/prompb). */
export const REMOTE_WRITE_PROTO = `
syntax = "proto3";
package prometheus;
message Label { string name = 1; string value = 2; }
message Sample { double value = 1; int64 timestamp = 2; }
message TimeSeries { repeated Label labels = 1; repeated Sample samples = 2; }
message WriteRequest { repeated TimeSeries timeseries = 1; }
`;

const root = protobuf.parse(REMOTE_WRITE_PROTO, { keepCase: true }).root;
/** The protobufjs type of `prometheus.WriteRequest`. */
export const WriteRequestType = root.lookupType('prometheus.WriteRequest');

/** The value of a remote-write sample in a JSON record. */
export type RemoteWriteValue = number | 'NaN' | '+Inf' | '-Inf' | 'StaleNaN';

/** One C4 sample record. */
export interface RemoteWriteSample {
  readonly [key: string]: string | number | { readonly [name: string]: string };
  readonly metric_name: string;
  readonly labels: { readonly [name: string]: string };
  readonly value: RemoteWriteValue;
  readonly timestamp: number;
  readonly job: string;
  readonly instance: string;
}

const scratch = new DataView(new ArrayBuffer(8));

/** True for Prometheus' stale marker NaN (0x7ff0000000000002). */
export function isStaleMarker(value: number): boolean {
  if (!Number.isNaN(value)) return false;
  scratch.setFloat64(0, value);
  return scratch.getUint32(0) === 0x7ff00000 && scratch.getUint32(4) === 0x00000002;
}

function jsonValue(value: number): RemoteWriteValue {
  if (Number.isFinite(value)) return value;
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return isStaleMarker(value) ? 'StaleNaN' : 'NaN';
}

/** A request body that is not a valid remote-write 1.0 payload (answered 400). */
export class MalformedRemoteWriteError extends ConnectorError {
  constructor(message: string, cause?: unknown) {
    super('prometheus-remote-write', message, { retriable: false, cause });
  }
}

interface DecodedLabel { name?: string; value?: string }
interface DecodedSample { value?: number; timestamp?: number | { toNumber(): number } }
interface DecodedSeries { labels?: DecodedLabel[]; samples?: DecodedSample[] }

/**
 * Decodes a snappy-compressed protobuf `WriteRequest` into sample records.
 * Throws {@link MalformedRemoteWriteError} naming what is wrong.
 *
 * Stale-marker NaN bits are read from the raw protobuf bytes because protobufjs
 * reads doubles through Float64Array, which keeps NaN payloads on V8.
 *
 * @example
 * ```ts
 * const samples = decodeRemoteWrite(body); // body: Buffer from the HTTP request
 * ```
 */
export function decodeRemoteWrite(body: Uint8Array): RemoteWriteSample[] {
  let raw: Buffer;
  try {
    raw = uncompressSync(Buffer.from(body.buffer, body.byteOffset, body.byteLength), { asBuffer: true }) as Buffer;
  } catch (error) {
    throw new MalformedRemoteWriteError('body is not snappy (block format) compressed', error);
  }
  let message: { timeseries?: DecodedSeries[] };
  try {
    message = WriteRequestType.decode(raw) as unknown as { timeseries?: DecodedSeries[] };
  } catch (error) {
    throw new MalformedRemoteWriteError(`body is not a protobuf WriteRequest: ${(error as Error).message}`, error);
  }
  const out: RemoteWriteSample[] = [];
  (message.timeseries ?? []).forEach((series, index) => {
    const labels: Record<string, string> = Object.create(null) as Record<string, string>;
    let metricName: string | undefined;
    for (const label of series.labels ?? []) {
      const name = label.name ?? '';
      if (name === '') throw new MalformedRemoteWriteError(`timeseries[${index}] has a label with an empty name`);
      if (name === '__name__') metricName = label.value ?? '';
      else labels[name] = label.value ?? '';
    }
    if (metricName === undefined || metricName === '') {
      throw new MalformedRemoteWriteError(`timeseries[${index}] has no __name__ label`);
    }
    const plainLabels = { ...labels };
    for (const sample of series.samples ?? []) {
      const ts = sample.timestamp;
      const timestamp = typeof ts === 'number' ? ts : ts === undefined ? 0 : ts.toNumber();
      out.push({
        metric_name: metricName,
        labels: plainLabels,
        value: jsonValue(sample.value ?? 0),
        timestamp,
        job: labels['job'] ?? '',
        instance: labels['instance'] ?? '',
      });
    }
  });
  return out;
}
