/**
 * The Prometheus scrape source: fetches each target's `/metrics` every
 * `intervalMs` (default 5 s, as the seed's schedule), parses the exposition
 * (text 0.0.4 or OpenMetrics, by the response's content type) and hands out
 * one record per sample: `{ metric_name, labels, value, timestamp, job,
 * instance }` (value `"NaN"`, `"+Inf"`, `"-Inf"` as strings). Like Prometheus
 * it adds per target and scrape `up` (1, or 0 when the scrape failed),
 * `scrape_duration_seconds` and `scrape_samples_scraped`.
 *
 * A failed scrape (refused, timed out, an HTTP error, a body over
 * `maxBodyBytes`, unreadable lines) is never fatal: it yields `up` = 0 and the
 * target is scraped again at the next interval. As in Prometheus, a page with
 * unreadable lines counts as failed and its samples are not used; the page
 * itself goes to the dead-letter queue with the line numbers and reasons.
 *
 * With `output: 'exposition'` the source hands out each page as is,
 * `{ job, instance, timestamp, contentType, body }` (a failed scrape as a page
 * holding `up 0`), for shipping raw pages through Kafka as the seed did.
 *
 * Scrapes are not replayable: the source offset counts scrape rounds, and a
 * crash loses at most the rounds not yet checkpointed (the next scrape reads
 * the exporter's current values). The buffer is bounded: when the pipeline
 * has not taken the previous round when the next is due, that round is
 * skipped and counted (`skippedRounds`) rather than buffered.
 */
import type { DataRecord, Source, SourceBatch, SourceContext, SourceOffset, SourceRecord } from '@dataflow/core';
import { ConnectorError } from '@dataflow/core';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';
import { parseExposition, sampleToRecord, SeriesCache } from '../prometheus/index.js';

const labelName = z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'a label name matches [a-zA-Z_][a-zA-Z0-9_]*');

const targetSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL such as http://127.0.0.1:9100/metrics' }),
  job: z.string().min(1),
  /** Labels added to every sample of the target (an exposition label of the same name wins). */
  labels: z.record(labelName, z.string()).default({}),
});

/**
 * Definition of the scrape source.
 *
 * @example
 * ```ts
 * parseScrapeSourceDefinition({ type: 'prometheus-scrape', targets: [{ url: 'http://127.0.0.1:9100/metrics', job: 'node' }] });
 * ```
 */
export const scrapeSourceDefinitionSchema = z
  .strictObject({
    type: z.literal('prometheus-scrape'),
    targets: z.array(targetSchema).min(1, 'at least one target'),
    intervalMs: z.number().int().min(100).max(3_600_000).default(5_000),
    /** Default the smaller of the interval and 10 s; at most the interval. */
    timeoutMs: z.number().int().min(10).optional(),
    output: z.enum(['samples', 'exposition']).default('samples'),
    /** Use the timestamps written in the exposition (else every sample gets the scrape time). */
    honorTimestamps: z.boolean().default(true),
    maxBodyBytes: z.number().int().positive().max(256 * 1024 * 1024).default(10 * 1024 * 1024),
    /** Request headers (e.g. Authorization); never logged, never in errors or records. */
    headers: z.record(z.string().min(1), z.string()).default({}),
  })
  .superRefine((value, ctx) => {
    if (value.timeoutMs !== undefined && value.timeoutMs > value.intervalMs) {
      ctx.addIssue({ code: 'custom', path: ['timeoutMs'], message: `must be at most intervalMs (${value.intervalMs})` });
    }
    const seen = new Set<string>();
    value.targets.forEach((t, i) => {
      const key = `${t.job}\u0000${t.url}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['targets', i], message: 'the same job and url appear twice' });
      seen.add(key);
    });
  });

export type ScrapeSourceDefinition = z.output<typeof scrapeSourceDefinitionSchema>;
export type ScrapeSourceDefinitionInput = z.input<typeof scrapeSourceDefinitionSchema>;

/** Validates a scrape source definition; throws `InvalidConnectorOptionsError` with field-level issues. */
export function parseScrapeSourceDefinition(input: unknown): ScrapeSourceDefinition {
  return parseDefinition('prometheus-scrape', scrapeSourceDefinitionSchema, input);
}

const ACCEPT = 'application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const RAW_LIMIT = 64 * 1024;

/** What one scrape of a target gave. */
export interface ScrapeOutcome {
  readonly job: string;
  readonly instance: string;
  readonly ok: boolean;
  /** Why it failed, when it did. */
  readonly error?: string;
  readonly samples: number;
  readonly durationMs: number;
}

/** Counters of a running source. */
export interface ScrapeSourceStatus {
  readonly rounds: number;
  readonly skippedRounds: number;
  readonly failedScrapes: number;
  readonly lastRound: readonly ScrapeOutcome[];
}

class ScrapeFailure extends Error {}

/** The scrape source; see the module comment. */
export class ScrapeSource implements Source {
  readonly type = 'prometheus-scrape';
  readonly definition: ScrapeSourceDefinition;
  readonly #timeoutMs: number;
  readonly #caches = new Map<string, SeriesCache>();
  #buffer: SourceRecord[] = [];
  #head = 0;
  #rounds = 0;
  #skipped = 0;
  #failed = 0;
  #lastRound: ScrapeOutcome[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #abort = new AbortController();
  #waiter: (() => void) | undefined;
  #open = false;

  constructor(definition: ScrapeSourceDefinitionInput | Record<string, unknown>) {
    this.definition = parseScrapeSourceDefinition(definition);
    this.#timeoutMs = this.definition.timeoutMs ?? Math.min(this.definition.intervalMs, 10_000);
  }

  get status(): ScrapeSourceStatus {
    return { rounds: this.#rounds, skippedRounds: this.#skipped, failedScrapes: this.#failed, lastRound: this.#lastRound };
  }

  open(context: SourceContext): Promise<void> {
    if (this.#open) return Promise.reject(new ConnectorError('prometheus-scrape', 'the scrape source is already open', { retriable: false }));
    const restored = context.checkpoint as { readonly rounds?: unknown } | undefined;
    if (restored !== undefined && typeof restored?.rounds === 'number') this.#rounds = restored.rounds;
    this.#open = true;
    this.#abort = new AbortController();
    context.signal.addEventListener('abort', () => this.#abort.abort(), { once: true });
    this.#schedule(0);
    return Promise.resolve();
  }

  async poll(maxRecords: number, maxWaitMs: number): Promise<SourceBatch> {
    if (this.#available() === 0 && maxWaitMs > 0 && this.#open) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, maxWaitMs);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.#waiter = done;
      });
      this.#waiter = undefined;
    }
    const take = Math.min(maxRecords, this.#available());
    const records = this.#buffer.slice(this.#head, this.#head + take);
    this.#head += take;
    if (this.#head === this.#buffer.length) {
      this.#buffer = [];
      this.#head = 0;
    }
    return { records, offset: this.#offset(), done: false };
  }

  /** Nothing to commit upstream: an exporter keeps no reading position. */
  ack(_offset: SourceOffset): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    this.#open = false;
    clearTimeout(this.#timer);
    this.#abort.abort();
    this.#waiter?.();
    await this.#inFlight;
  }

  #available(): number {
    return this.#buffer.length - this.#head;
  }

  #offset(): SourceOffset {
    return { rounds: this.#rounds };
  }

  #schedule(delayMs: number): void {
    if (!this.#open) return;
    this.#timer = setTimeout(() => {
      const started = Date.now();
      this.#inFlight = this.#round().finally(() => {
        this.#inFlight = undefined;
        this.#schedule(Math.max(0, this.definition.intervalMs - (Date.now() - started)));
      });
    }, delayMs);
    this.#timer.unref?.();
  }

  /** One round: every target in parallel; its records are buffered unless the previous round is still unread. */
  async #round(): Promise<void> {
    if (this.#available() > 0) {
      this.#skipped++;
      return;
    }
    const results = await Promise.all(this.definition.targets.map((target) => this.#scrape(target)));
    if (!this.#open) return;
    this.#rounds++;
    this.#lastRound = results.map((r) => r.outcome);
    for (const r of results) this.#buffer.push(...r.records);
    this.#waiter?.();
  }

  async #scrape(target: ScrapeSourceDefinition['targets'][number]): Promise<{ outcome: ScrapeOutcome; records: SourceRecord[] }> {
    const url = new URL(target.url);
    const instance = url.host;
    const started = Date.now();
    const records: SourceRecord[] = [];
    let body: string | undefined;
    let contentType = '';
    let error: string | undefined;
    let samples = 0;
    try {
      ({ body, contentType } = await this.#fetch(target.url));
    } catch (failure) {
      error = failure instanceof ScrapeFailure ? failure.message : `scrape failed: ${failure instanceof Error ? failure.message : String(failure)}`;
    }
    const durationMs = Date.now() - started;
    if (this.definition.output === 'exposition') {
      const page = body ?? '# TYPE up gauge\nup 0\n';
      records.push({ ok: true, value: { job: target.job, instance, timestamp: started, contentType: body === undefined ? 'text/plain; version=0.0.4' : contentType, body: page } });
    } else if (body !== undefined) {
      const cacheKey = `${target.job}\u0000${target.url}`;
      let cache = this.#caches.get(cacheKey);
      if (cache === undefined) this.#caches.set(cacheKey, (cache = new SeriesCache()));
      const parsed = parseExposition(body, {
        job: target.job,
        instance,
        scrapeTimestampMs: started,
        seriesCache: cache,
        ...(contentType.includes('application/openmetrics-text') ? { format: 'openmetrics' as const } : {}),
      });
      if (parsed.errors.length > 0) {
        const shown = parsed.errors
          .slice(0, 5)
          .map((e) => `line ${e.line}: ${e.reason}`)
          .join('; ');
        error = `${parsed.errors.length + parsed.droppedErrors} unreadable line(s): ${shown}`;
        records.push({ ok: false, raw: body.length > RAW_LIMIT ? `${body.slice(0, RAW_LIMIT)}\n[truncated: ${body.length} characters in all]` : body, reason: `scrape of ${target.job}/${instance}: ${error}` });
      } else {
        samples = parsed.samples.length;
        for (const sample of parsed.samples) {
          const record = sampleToRecord(sample);
          if (!this.definition.honorTimestamps) (record as { timestamp: number }).timestamp = started;
          records.push({ ok: true, value: withTargetLabels(record, target.labels) });
        }
      }
    }
    if (error !== undefined) this.#failed++;
    if (this.definition.output === 'samples') {
      const synthetic = (name: string, value: number): SourceRecord => ({
        ok: true,
        value: { metric_name: name, labels: { ...target.labels }, value, timestamp: started, job: target.job, instance },
      });
      records.push(synthetic('up', error === undefined ? 1 : 0), synthetic('scrape_duration_seconds', durationMs / 1000), synthetic('scrape_samples_scraped', samples));
    }
    return { outcome: { job: target.job, instance, ok: error === undefined, ...(error === undefined ? {} : { error }), samples, durationMs }, records };
  }

  /** GETs the page within the timeout and the size limit; the failure message never holds the headers. */
  async #fetch(url: string): Promise<{ body: string; contentType: string }> {
    const signal = AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#timeoutMs)]);
    let response: Response;
    try {
      response = await fetch(url, { headers: { ...this.definition.headers, accept: ACCEPT }, signal, redirect: 'follow' });
    } catch (error) {
      const reason = signal.aborted ? `timed out after ${this.#timeoutMs} ms` : describeFetchError(error);
      throw new ScrapeFailure(`scrape of ${url} failed: ${reason}`);
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new ScrapeFailure(`scrape of ${url} failed: HTTP ${response.status} ${response.statusText}`);
    }
    const declared = Number(response.headers.get('content-length') ?? Number.NaN);
    if (declared > this.definition.maxBodyBytes) {
      await response.body?.cancel();
      throw new ScrapeFailure(`scrape of ${url} failed: the body (${declared} bytes) is larger than maxBodyBytes (${this.definition.maxBodyBytes})`);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for await (const chunk of response.body ?? []) {
        size += (chunk as Uint8Array).byteLength;
        if (size > this.definition.maxBodyBytes) throw new ScrapeFailure(`scrape of ${url} failed: the body is larger than maxBodyBytes (${this.definition.maxBodyBytes})`);
        chunks.push(chunk as Uint8Array);
      }
    } catch (error) {
      if (error instanceof ScrapeFailure) throw error;
      throw new ScrapeFailure(`scrape of ${url} failed while reading the body: ${signal.aborted ? `timed out after ${this.#timeoutMs} ms` : describeFetchError(error)}`);
    }
    return { body: Buffer.concat(chunks).toString('utf8'), contentType: response.headers.get('content-type') ?? '' };
  }
}

/** The useful part of a fetch failure: undici says "fetch failed" and puts the system error (or several, one per address tried) in `cause`. */
function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: unknown; message?: unknown; errors?: readonly { code?: unknown; message?: unknown }[] } } | null)?.cause;
  const first = cause?.errors?.[0];
  const code = typeof cause?.code === 'string' ? cause.code : typeof first?.code === 'string' ? first.code : undefined;
  const message = typeof cause?.message === 'string' && cause.message.length > 0 ? cause.message : typeof first?.message === 'string' ? first.message : undefined;
  if (code !== undefined) return message !== undefined && message.includes(code) ? message : `${code}${message === undefined ? '' : ` (${message})`}`;
  if (message !== undefined) return message;
  return error instanceof Error ? error.message : String(error);
}

/** Adds the target's labels to a sample (labels the exposition already has win). */
function withTargetLabels(record: DataRecord, labels: Readonly<Record<string, string>>): DataRecord {
  const names = Object.keys(labels);
  if (names.length === 0) return record;
  const own = record['labels'] as Record<string, string>;
  const merged = Object.fromEntries([...Object.entries(labels).filter(([name]) => !Object.hasOwn(own, name)), ...Object.entries(own)]);
  return { ...record, labels: merged };
}
