import { describe, expect, it } from 'vitest';
import { parseExposition, unescapeLabelValue, type ExpositionParseOptions, type PrometheusSample } from './exposition-parser.js';
import { generateNodeExporterText } from './node-exporter-fixture.js';

const SCRAPE = 1_733_300_000_000;
const opts: ExpositionParseOptions = { job: 'node', instance: 'host-1:9100', scrapeTimestampMs: SCRAPE };

const NODE_EXPORTER = `# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 2.1e-05
go_gc_duration_seconds{quantile="0.5"} 4.4e-05
go_gc_duration_seconds{quantile="1"} 0.000213
go_gc_duration_seconds_sum 0.012
go_gc_duration_seconds_count 191
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 123456.78
node_cpu_seconds_total{cpu="0",mode="user"} 2345.6
# HELP node_filesystem_avail_bytes Filesystem space available to non-root users in bytes.
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 4.2e+10
# HELP http_request_duration_seconds Request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/",le="0.1"} 3
http_request_duration_seconds_bucket{handler="/",le="+Inf"} 5
http_request_duration_seconds_sum{handler="/"} 0.9
http_request_duration_seconds_count{handler="/"} 5
# a free comment
some_untyped_metric 42

node_scrape_collector_success{collector="cpu"} 1
`;

const byName = (samples: readonly PrometheusSample[], name: string): PrometheusSample[] => samples.filter((s) => s.metric_name === name);

describe('parseExposition (text format 0.0.4)', () => {
  it('reads a node_exporter page: HELP/TYPE, summaries, counters, gauges, histograms, untyped', () => {
    const { samples, errors, families, format } = parseExposition(NODE_EXPORTER, opts);
    expect(errors).toEqual([]);
    expect(format).toBe('text');
    expect(samples).toHaveLength(14);
    expect(samples[0]).toEqual({ metric_name: 'go_gc_duration_seconds', labels: { quantile: '0' }, value: 2.1e-5, timestamp: SCRAPE, job: 'node', instance: 'host-1:9100' });
    expect(byName(samples, 'go_gc_duration_seconds_count')[0]?.value).toBe(191);
    expect(byName(samples, 'node_cpu_seconds_total').map((s) => ({ ...s.labels }))).toEqual([{ cpu: '0', mode: 'idle' }, { cpu: '0', mode: 'user' }]);
    expect(byName(samples, 'node_filesystem_avail_bytes')[0]?.value).toBe(4.2e10);
    expect(byName(samples, 'http_request_duration_seconds_bucket').map((s) => s.labels.le)).toEqual(['0.1', '+Inf']);
    expect(byName(samples, 'some_untyped_metric')[0]?.value).toBe(42);
    expect(families.get('go_gc_duration_seconds')).toEqual({ type: 'summary', help: 'A summary of the pause duration of garbage collection cycles.' });
    expect(families.get('http_request_duration_seconds')?.type).toBe('histogram');
    expect(families.get('node_cpu_seconds_total')?.type).toBe('counter');
  });

  it('unescapes label values (\\\\, \\", \\n) and keeps other backslashes as Prometheus does', () => {
    const text = 'm{path="C:\\\\dir\\\\\\"q\\"",msg="a\\nb",other="x\\ty"} 1\n';
    const { samples, errors } = parseExposition(text, opts);
    expect(errors).toEqual([]);
    expect(samples[0]?.labels).toEqual({ path: 'C:\\dir\\"q"', msg: 'a\nb', other: 'x\\ty' });
    expect(unescapeLabelValue('end\\\\')).toBe('end\\');
  });

  it('reads NaN and ±Inf in any letter case, and rejects other words', () => {
    const text = 'a NaN\nb +Inf\nc -Inf\nd inf\ne nan\nf Infinity\ng banana\n';
    const { samples, errors } = parseExposition(text, opts);
    expect(samples.map((s) => s.value)).toEqual([Number.NaN, Infinity, -Infinity, Infinity, Number.NaN, Infinity]);
    expect(errors).toEqual([{ line: 7, reason: 'invalid value "banana"', text: 'g banana' }]);
  });

  it('uses exposition timestamps (milliseconds) when present, the scrape time otherwise', () => {
    const { samples, errors } = parseExposition('a 1 1733299999000\nb 2\nc 3 -5\n', opts);
    expect(errors).toEqual([]);
    expect(samples.map((s) => s.timestamp)).toEqual([1_733_299_999_000, SCRAPE, -5]);
  });

  it('reports malformed lines with their line number and reason, and parses the rest', () => {
    const text = [
      'ok_1 1', // 1
      '9bad 1', // 2
      'm{a="1" 2', // 3
      'm{a="1",a="2"} 2', // 4
      'm{a=1} 2', // 5
      'm 1 12.5', // 6
      'm 1 2 3', // 7
      'm', // 8
      '# TYPE m bogus', // 9
      'm{a="unterminated} 1', // 10
      'ok_2{} 2', // 11
    ].join('\n');
    const { samples, errors } = parseExposition(text, opts);
    expect(samples.map((s) => s.metric_name)).toEqual(['ok_1', 'ok_2']);
    expect(errors.map((e) => [e.line, e.reason])).toEqual([
      [2, 'expected a metric name'],
      [3, 'expected , or } in the label set'],
      [4, 'duplicate label a'],
      [5, 'expected a quoted value for label a'],
      [6, 'invalid timestamp "12.5" (milliseconds as an integer)'],
      [7, 'unexpected text after the value and timestamp'],
      [8, 'expected a space and a value after the metric'],
      [9, 'unknown metric type "bogus" for m'],
      [10, 'unterminated value of label a'],
    ]);
    expect(errors[0]?.text).toBe('9bad 1');
  });

  it('checks family structure: bucket without le, summary without quantile, TYPE twice or after samples, HELP twice', () => {
    const text = [
      '# TYPE h histogram',
      'h_bucket{x="1"} 1',
      '# TYPE s summary',
      's 1',
      'late 1',
      '# TYPE late gauge',
      '# TYPE h counter',
      '# HELP h one',
      '# HELP h two',
    ].join('\n');
    const { errors } = parseExposition(text, opts);
    expect(errors.map((e) => [e.line, e.reason])).toEqual([
      [2, 'histogram bucket h_bucket without an le label'],
      [4, 'summary s sample without a quantile label'],
      [6, '# TYPE for late after its samples'],
      [7, 'second # TYPE for h (first on line 1)'],
      [9, 'second # HELP for h (first on line 8)'],
    ]);
  });

  it('keeps __proto__ and constructor as ordinary labels (label sets inherit nothing)', () => {
    const { samples, errors } = parseExposition('m{__proto__="polluted",constructor="c",toString="t"} 1\nn{a="1"} 2\n', opts);
    expect(errors).toEqual([]);
    const labels = samples[0]?.labels ?? {};
    const proto = Object.getPrototypeOf(labels) as object;
    expect(Object.getPrototypeOf(proto)).toBeNull();
    expect(Object.getOwnPropertyNames(proto)).toEqual([]);
    expect(Object.isFrozen(proto)).toBe(true);
    expect('hasOwnProperty' in (samples[1]?.labels ?? {})).toBe(false);
    expect(JSON.stringify(labels)).toBe('{"__proto__":"polluted","constructor":"c","toString":"t"}');
    expect(Object.keys(labels)).toEqual(['__proto__', 'constructor', 'toString']);
    expect(labels.__proto__).toBe('polluted');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('handles huge values and refuses ones beyond the double range', () => {
    const text = 'a 1.7976931348623157e308\nb 18446744073709551615\nc -1e-320\nd 1e400\ne 1 99999999999999999999\n';
    const { samples, errors } = parseExposition(text, opts);
    expect(samples.map((s) => s.value)).toEqual([1.7976931348623157e308, 18446744073709551615, -1e-320]);
    expect(errors.map((e) => [e.line, e.reason])).toEqual([
      [4, 'invalid value "1e400"'],
      [5, 'timestamp 99999999999999999999 out of range'],
    ]);
  });

  it('bounds the input: over-long lines and too many labels are errors, not crashes', () => {
    const many = Array.from({ length: 5 }, (_, i) => `l${i}="v"`).join(',');
    const text = `long ${'1'.repeat(100)}\nmany{${many}} 1\nok 1\n`;
    const { samples, errors } = parseExposition(text, { ...opts, maxLineLength: 50, maxLabels: 4 });
    expect(samples.map((s) => s.metric_name)).toEqual(['ok']);
    expect(errors.map((e) => [e.line, e.reason])).toEqual([
      [1, 'line longer than 50 characters'],
      [2, 'more than 4 labels'],
    ]);
  });

  it('keeps at most maxErrors errors and counts the rest', () => {
    const { errors, droppedErrors } = parseExposition('x\n'.repeat(10), { ...opts, maxErrors: 3 });
    expect(errors).toHaveLength(3);
    expect(droppedErrors).toBe(7);
  });

  it('accepts CRLF line endings, tabs and spaces between tokens', () => {
    const { samples, errors } = parseExposition('# TYPE a gauge\r\na{ x = "1" , }\t3  100\r\n', opts);
    expect(errors).toEqual([]);
    expect(samples).toEqual([{ metric_name: 'a', labels: { x: '1' }, value: 3, timestamp: 100, job: 'node', instance: 'host-1:9100' }]);
  });

  it('parses a generated node_exporter-sized page with every sample and no error', () => {
    const page = generateNodeExporterText(1);
    const { samples, errors } = parseExposition(page.text, opts);
    expect(errors).toEqual([]);
    expect(samples).toHaveLength(page.samples);
  });
});

describe('parseExposition (OpenMetrics)', () => {
  const om = (body: string): string => `${body}\n# EOF\n`;

  it('detects OpenMetrics by # EOF, reads timestamps as seconds, maps _total to its counter family, ignores exemplars', () => {
    const text = om(
      [
        '# TYPE requests counter',
        '# UNIT requests_seconds seconds',
        '# HELP requests Requests \\"served\\".',
        'requests_total{code="200"} 10 1733300000.5 # {trace_id="abc"} 1 1733300000.1',
        'requests_created{code="200"} 1733200000',
        '# TYPE temp gauge',
        'temp NaN',
      ].join('\n'),
    );
    const { samples, errors, families, format } = parseExposition(text, opts);
    expect(errors).toEqual([]);
    expect(format).toBe('openmetrics');
    expect(samples[0]).toEqual({ metric_name: 'requests_total', labels: { code: '200' }, value: 10, timestamp: 1_733_300_000_500, job: 'node', instance: 'host-1:9100' });
    expect(samples[1]?.timestamp).toBe(SCRAPE);
    expect(samples[2]?.value).toBeNaN();
    expect(families.get('requests')).toEqual({ type: 'counter', help: 'Requests "served".' });
    expect(families.get('requests_seconds')?.unit).toBe('seconds');
  });

  it('requires # EOF last: missing EOF and content after it are errors', () => {
    const missing = parseExposition('a 1\n', { ...opts, format: 'openmetrics' });
    expect(missing.samples).toHaveLength(1);
    expect(missing.errors.map((e) => [e.line, e.reason])).toEqual([[2, 'missing # EOF at the end of OpenMetrics input']]);
    const after = parseExposition('a 1\n# EOF\nb 2\n', { ...opts, format: 'openmetrics' });
    expect(after.samples.map((s) => s.metric_name)).toEqual(['a']);
    expect(after.errors.map((e) => [e.line, e.reason])).toEqual([[3, 'content after # EOF (line 2)']]);
  });

  it('accepts OpenMetrics-only types and refuses them in the text format', () => {
    expect(parseExposition(om('# TYPE s stateset\ns{s="a"} 1'), opts).errors).toEqual([]);
    expect(parseExposition('# TYPE s stateset\ns{s="a"} 1\n', opts).errors.map((e) => e.reason)).toEqual(['unknown metric type "stateset" for s']);
  });
});
