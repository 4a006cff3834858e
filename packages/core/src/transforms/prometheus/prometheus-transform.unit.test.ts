import { describe, expect, it } from 'vitest';
import { validatePipelineDefinition } from '../../pipeline/definition/pipeline-definition.js';
import { createTransform } from '../create-transform.js';
import { transformDefinitionSchema } from '../transform-definition.js';
import type { StatelessTransform } from '../transform.js';
import { generateNodeExporterText } from './node-exporter-fixture.js';
import { parseExposition } from './exposition-parser.js';
import { jobFromTopic, prometheusDefinitionSchema } from './prometheus-transform.js';

function stage(input: Record<string, unknown>): StatelessTransform {
  const t = createTransform(transformDefinitionSchema.parse({ type: 'prometheus', ...input }), { stage: 'transforms[0]' });
  if (t.kind !== 'stateless') throw new Error('expected a stateless transform');
  return t;
}

const PAGE = `# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",code="200"} 1027 1700000000123
http_requests_total{method="POST",code="200"} 3
# TYPE temperature gauge
temperature{__proto__="x",room="a"} NaN
temperature{room="b"} +Inf
temperature{room="c"} -Inf
# TYPE latency histogram
latency_bucket{le="0.1"} 1
latency_bucket{le="+Inf"} 2
latency_sum 0.3
latency_count 2
`;

describe('prometheus transform', () => {
  it('turns one page from a topic into one record per sample, job from the topic, NaN and infinities as strings', async () => {
    const { records, failures } = await stage({ jobFromTopic: 'prometheus_metrics_{job}', instanceField: 'key' }).apply(
      [{ topic: 'prometheus_metrics_node', key: 'host-1:9100', value: PAGE, timestamp: 1_700_000_005_000 }],
      { now: 0 },
    );
    expect(failures).toEqual([]);
    expect(records).toHaveLength(9);
    expect(records[0]).toEqual({
      metric_name: 'http_requests_total',
      labels: { method: 'GET', code: '200' },
      value: 1027,
      timestamp: 1_700_000_000_123,
      job: 'node',
      instance: 'host-1:9100',
    });
    expect(records[1]).toMatchObject({ timestamp: 1_700_000_005_000 });
    expect(records.slice(2, 5).map((r) => r['value'])).toEqual(['NaN', '+Inf', '-Inf']);
    const labels = records[2]?.['labels'] as Record<string, string>;
    expect(Object.getPrototypeOf(labels)).toBe(Object.prototype);
    expect(Object.hasOwn(labels, '__proto__')).toBe(true);
    expect(JSON.parse(JSON.stringify(records[2]))).toMatchObject({ labels: { room: 'a' } });
    expect(records.map((r) => r['metric_name'])).toContain('latency_bucket');
  });

  it('keeps every sample of a node_exporter-sized page', async () => {
    const page = generateNodeExporterText(7);
    const expected = parseExposition(page.text, { job: 'node', instance: '', scrapeTimestampMs: 1 }).samples.length;
    const { records, failures } = await stage({ job: 'node' }).apply([{ value: page.text, timestamp: 1 }], { now: 0 });
    expect(failures).toEqual([]);
    expect(records).toHaveLength(expected);
    expect(expected).toBeGreaterThan(500);
  });

  it('emits the good samples and reports the page with the line numbers of the bad lines', async () => {
    const { records, failures } = await stage({ job: 'api' }).apply([{ value: 'ok 1\nbroken{ 2\nalso_ok 3\n', timestamp: 5 }], { now: 0 });
    expect(records.map((r) => r['metric_name'])).toEqual(['ok', 'also_ok']);
    expect(failures).toHaveLength(1);
    expect(failures[0]?.error.reason).toBe('malformed-exposition');
    expect(failures[0]?.error.message).toMatch(/line 2: /);
    expect(failures[0]?.record).toEqual({ value: 'ok 1\nbroken{ 2\nalso_ok 3\n', timestamp: 5 });
  });

  it('rejects a record whose topic does not match, whose text is missing or too large', async () => {
    const t = stage({ jobFromTopic: 'prometheus_metrics_{job}', maxBytes: 10 });
    const { records, failures } = await t.apply(
      [
        { topic: 'other_topic', value: 'up 1', timestamp: 1 },
        { topic: 'prometheus_metrics_node', timestamp: 1 },
        { topic: 'prometheus_metrics_node', value: 'x'.repeat(11), timestamp: 1 },
        { topic: 'prometheus_metrics_node', value: 'up 1' },
        { topic: 'prometheus_metrics_node', value: 'up 1', timestamp: 'yesterday' },
      ],
      { now: 0 },
    );
    expect(records).toEqual([]);
    expect(failures.map((f) => [f.error.reason, f.error.message])).toEqual([
      ['topic-mismatch', expect.stringContaining('"other_topic"')],
      ['malformed-exposition', expect.stringContaining('missing')],
      ['too-large', expect.stringContaining('maxBytes (10)')],
      ['invalid-timestamp', expect.stringContaining('Field timestamp is missing')],
      ['invalid-timestamp', expect.stringContaining('not epoch milliseconds')],
    ]);
  });

  it('validates its options with field paths and is accepted in a pipeline definition', () => {
    const bad = prometheusDefinitionSchema.safeParse({ type: 'prometheus', job: 'a', jobFromTopic: 'x_{job}', maxBytes: 0 });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['job', 'maxBytes']);
    const both = prometheusDefinitionSchema.safeParse({ type: 'prometheus', job: 'a', jobFromTopic: 'x_{job}' });
    expect(both.error?.issues.map((i) => i.path.join('.'))).toEqual(['job']);
    expect(prometheusDefinitionSchema.safeParse({ type: 'prometheus', jobFromTopic: 'no_placeholder' }).error?.issues[0]?.path).toEqual(['jobFromTopic']);
    const neither = prometheusDefinitionSchema.safeParse({ type: 'prometheus' });
    expect(neither.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['jobFromTopic', expect.stringContaining('or job (fixed)')]]);
    expect(
      validatePipelineDefinition({
        name: 'metrics',
        source: { type: 'generator', count: 1 },
        transforms: [{ type: 'prometheus', jobFromTopic: 'prometheus_metrics_{job}', onError: 'skip' }],
        sink: { type: 'console' },
      }),
    ).toMatchObject({ ok: true });
  });

  it('reads the job out of a topic pattern', () => {
    expect(jobFromTopic('prometheus_metrics_{job}', 'prometheus_metrics_node_exporter')).toBe('node_exporter');
    expect(jobFromTopic('metrics.{job}.raw', 'metrics.api.raw')).toBe('api');
    expect(jobFromTopic('prometheus_metrics_{job}', 'prometheus_metrics_')).toBeUndefined();
    expect(jobFromTopic('prometheus_metrics_{job}', 'other')).toBeUndefined();
  });
});
