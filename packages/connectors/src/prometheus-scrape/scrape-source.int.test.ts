/**
 * The scrape source against real HTTP exporters served by the test: a
 * prom-client registry with labels, a counter, a gauge (NaN and ±Inf), a
 * histogram and a summary; failing, slow and oversized targets; and the
 * source in a running pipeline.
 */
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DataRecord, SourceRecord } from '@dataflow/core';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InvalidConnectorOptionsError } from '@dataflow/core';
import { ScrapeSource, type ScrapeSourceDefinitionInput } from './scrape-source.js';

const registry = new Registry();
const requests = new Counter({ name: 'http_requests_total', help: 'Requests.', labelNames: ['method', 'code'], registers: [registry] });
const temperature = new Gauge({ name: 'room_temperature', help: 'Temperature.', labelNames: ['room'], registers: [registry] });
const latency = new Histogram({ name: 'request_latency_seconds', help: 'Latency.', buckets: [0.1, 0.5, 1], registers: [registry] });
const sizes = new Summary({ name: 'response_size_bytes', help: 'Sizes.', percentiles: [0.5, 0.9], registers: [registry] });
requests.inc({ method: 'GET', code: '200' }, 7);
requests.inc({ method: 'POST', code: '500' });
temperature.set({ room: 'a' }, Number.NaN);
temperature.set({ room: 'b' }, Number.POSITIVE_INFINITY);
temperature.set({ room: 'c' }, Number.NEGATIVE_INFINITY);
temperature.set({ room: '__proto__' }, 21.5);
latency.observe(0.05);
latency.observe(0.7);
sizes.observe(100);
sizes.observe(300);

const servers: Server[] = [];
async function serve(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
}

const sources: ScrapeSource[] = [];
function open(definition: Omit<ScrapeSourceDefinitionInput, 'type'>): ScrapeSource {
  const source = new ScrapeSource({ type: 'prometheus-scrape', intervalMs: 200, ...definition });
  sources.push(source);
  void source.open({ pipelineId: 'scrape-test', checkpoint: undefined, signal: new AbortController().signal });
  return source;
}

/** Polls until `predicate` holds for what arrived (or 10 s). */
async function collect(source: ScrapeSource, predicate: (records: readonly SourceRecord[]) => boolean): Promise<SourceRecord[]> {
  const out: SourceRecord[] = [];
  const deadline = Date.now() + 10_000;
  while (!predicate(out) && Date.now() < deadline) out.push(...(await source.poll(10_000, 300)).records);
  return out;
}

const ok = (records: readonly SourceRecord[]): DataRecord[] => records.flatMap((r) => (r.ok ? [r.value] : []));
const ups = (records: readonly SourceRecord[]) => ok(records).filter((r) => r['metric_name'] === 'up').map((r) => r['value']);

let metricsUrl: string;
let expectedSeries: number;

beforeAll(async () => {
  metricsUrl = await serve((req, res) => {
    void registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    });
  });
  const text = await registry.metrics();
  expectedSeries = text.split('\n').filter((l) => l.length > 0 && !l.startsWith('#')).length;
});

afterEach(async () => {
  for (const s of sources.splice(0)) await s.close();
});

afterAll(async () => {
  for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('Prometheus scrape source', () => {
  it('turns every series of a prom-client registry into a sample with job, instance and labels, plus up and scrape metadata', { timeout: 30_000 }, async () => {
    const source = open({ targets: [{ url: metricsUrl, job: 'app', labels: { env: 'test' } }] });
    const records = await collect(source, (r) => ups(r).length >= 1);
    const samples = ok(records);
    const page = samples.filter((s) => !['up', 'scrape_duration_seconds', 'scrape_samples_scraped'].includes(s['metric_name'] as string));
    expect(page).toHaveLength(expectedSeries);
    const instance = new URL(metricsUrl).host;
    for (const s of samples) expect(s).toMatchObject({ job: 'app', instance, labels: { env: 'test' } });
    const byName = (name: string, label?: [string, string]) =>
      page.filter((s) => s['metric_name'] === name && (label === undefined || (s['labels'] as Record<string, string>)[label[0]] === label[1])).map((s) => s['value']);
    expect(byName('http_requests_total', ['method', 'GET'])).toEqual([7]);
    expect(byName('room_temperature', ['room', 'a'])).toEqual(['NaN']);
    expect(byName('room_temperature', ['room', 'b'])).toEqual(['+Inf']);
    expect(byName('room_temperature', ['room', 'c'])).toEqual(['-Inf']);
    const proto = page.find((s) => s['metric_name'] === 'room_temperature' && s['value'] === 21.5);
    expect(Object.hasOwn(proto?.['labels'] as object, 'room')).toBe(true);
    expect(byName('request_latency_seconds_bucket', ['le', '+Inf'])).toEqual([2]);
    expect(byName('request_latency_seconds_count')).toEqual([2]);
    expect(byName('response_size_bytes', ['quantile', '0.5'])).toHaveLength(1);
    expect(samples.find((s) => s['metric_name'] === 'up')?.['value']).toBe(1);
    expect(samples.find((s) => s['metric_name'] === 'scrape_samples_scraped')?.['value']).toBe(expectedSeries);
    expect(source.status.rounds).toBeGreaterThanOrEqual(1);
  });

  it('uses the exposition timestamps when present, else the scrape time', { timeout: 30_000 }, async () => {
    const url = await serve((_req, res) => res.end('with_ts 1 1600000000000\nwithout_ts 2\n'));
    const before = Date.now();
    const honoured = ok(await collect(open({ targets: [{ url, job: 'ts' }] }), (r) => ups(r).length >= 1));
    expect(honoured.find((s) => s['metric_name'] === 'with_ts')?.['timestamp']).toBe(1_600_000_000_000);
    expect(honoured.find((s) => s['metric_name'] === 'without_ts')?.['timestamp']).toBeGreaterThanOrEqual(before);
    const ignored = ok(await collect(open({ targets: [{ url, job: 'ts' }], honorTimestamps: false }), (r) => ups(r).length >= 1));
    expect(ignored.find((s) => s['metric_name'] === 'with_ts')?.['timestamp']).toBeGreaterThanOrEqual(before);
  });

  it('records a dead, slow or oversized target as up 0 and recovers when it answers again', { timeout: 30_000 }, async () => {
    let healthy = false;
    const flaky = await serve((_req, res) => {
      if (healthy) res.end('alive 1\n');
      else {
        res.writeHead(503);
        res.end('down');
      }
    });
    const slow = await serve((_req, res) => setTimeout(() => res.end('late 1\n'), 1_000));
    const big = await serve((_req, res) => res.end(`big ${'1'.repeat(5_000)}\n`));
    // A port that was just free: nothing listens on it.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const refused = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/metrics`;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const source = open({
      targets: [
        { url: flaky, job: 'flaky' },
        { url: slow, job: 'slow' },
        { url: big, job: 'big' },
        { url: refused, job: 'refused' },
      ],
      intervalMs: 300,
      timeoutMs: 150,
      maxBodyBytes: 1_000,
    });
    const first = ok(await collect(source, (r) => ups(r).length >= 4));
    expect(first.filter((s) => s['metric_name'] === 'up').map((s) => [s['job'], s['value']])).toEqual([
      ['flaky', 0],
      ['slow', 0],
      ['big', 0],
      ['refused', 0],
    ]);
    expect(source.status.lastRound.map((o) => o.error)).toEqual([
      expect.stringContaining('HTTP 503'),
      expect.stringContaining('timed out after 150 ms'),
      expect.stringContaining('larger than maxBodyBytes'),
      expect.stringContaining('ECONNREFUSED'),
    ]);
    healthy = true;
    const later = ok(await collect(source, (r) => ok(r).some((s) => s['metric_name'] === 'alive')));
    expect(later.filter((s) => s['job'] === 'flaky' && s['metric_name'] === 'up').map((s) => s['value'])).toContain(1);
  });

  it('sends a page with unreadable lines to the dead-letter queue with the line numbers, with up 0', { timeout: 30_000 }, async () => {
    const url = await serve((_req, res) => res.end('fine 1\nbroken{ 2\n'));
    const records = await collect(open({ targets: [{ url, job: 'bad' }] }), (r) => ups(r).length >= 1);
    const failed = records.filter((r) => !r.ok);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ ok: false, raw: 'fine 1\nbroken{ 2\n', reason: expect.stringContaining('line 2:') as string });
    expect(ups(records)).toEqual([0]);
  });

  it('hands out raw pages with output exposition, and never leaks request headers into errors', { timeout: 30_000 }, async () => {
    let seenAuth: string | undefined;
    const url = await serve((req, res) => {
      seenAuth = req.headers.authorization;
      res.writeHead(500);
      res.end();
    });
    const source = open({ targets: [{ url: metricsUrl, job: 'app' }, { url, job: 'secret' }], output: 'exposition', headers: { authorization: 'Bearer s3cret-token' } });
    const pages = ok(await collect(source, (r) => r.length >= 2));
    expect(pages[0]).toMatchObject({ job: 'app', instance: new URL(metricsUrl).host, contentType: expect.stringContaining('text/plain') as string, body: await registry.metrics() });
    expect(pages[1]).toMatchObject({ job: 'secret', body: '# TYPE up gauge\nup 0\n' });
    expect(seenAuth).toBe('Bearer s3cret-token');
    expect(JSON.stringify(source.status)).not.toContain('s3cret');
    expect(JSON.stringify(pages)).not.toContain('s3cret');
  });

  it('validates its definition with field-level issues', () => {
    let error: unknown;
    try {
      new ScrapeSource({ type: 'prometheus-scrape', targets: [{ url: 'ftp://x/metrics', job: '' }, { url: 'http://a/m', job: 'a', labels: { 'bad-name': 'x' } }], intervalMs: 1000, timeoutMs: 2000, extra: 1 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidConnectorOptionsError);
    expect((error as InvalidConnectorOptionsError).issues.map((i) => i.path)).toEqual(['targets.0.url', 'targets.0.job', 'targets.1.labels.bad-name', '(definition)']);
    expect(() => new ScrapeSource({ type: 'prometheus-scrape', targets: [{ url: 'http://a/m', job: 'a' }], intervalMs: 1000, timeoutMs: 2000 })).toThrow(/timeoutMs: must be at most intervalMs/);
  });
});
