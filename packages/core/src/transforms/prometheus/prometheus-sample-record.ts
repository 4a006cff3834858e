/**
 * A parsed Prometheus sample as a pipeline record (contract C4):
 * `{ metric_name, labels, value, timestamp, job, instance }` where `value` is
 * a number, or `"NaN"`, `"+Inf"`, `"-Inf"` (JSON has no such numbers; sinks
 * such as Cassandra's map these strings back to doubles), and `labels` is a
 * plain object with own properties only (`__proto__` is an ordinary label).
 */
import type { DataRecord, JsonValue } from '../../connector/data-record.js';
import type { PrometheusSample } from './exposition-parser.js';

/** The JSON form of a sample value: the number, or `"NaN"`, `"+Inf"`, `"-Inf"`. */
export function sampleValueToJson(value: number): JsonValue {
  if (Number.isFinite(value)) return value;
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? '+Inf' : '-Inf';
}

/**
 * Converts a parsed sample to a record.
 *
 * @example
 * ```ts
 * sampleToRecord({ metric_name: 'up', labels: {}, value: NaN, timestamp: 1, job: 'node', instance: 'h:9100' }).value; // 'NaN'
 * ```
 */
export function sampleToRecord(sample: PrometheusSample): DataRecord {
  return {
    metric_name: sample.metric_name,
    // Object.fromEntries defines own data properties, so a label named __proto__ stays a label.
    labels: Object.fromEntries(Object.entries(sample.labels)),
    value: sampleValueToJson(sample.value),
    timestamp: sample.timestamp,
    job: sample.job,
    instance: sample.instance,
  };
}
