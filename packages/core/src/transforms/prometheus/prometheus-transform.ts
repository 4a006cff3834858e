/**
 * The `prometheus` parse transform: one record holding a page of exposition
 * text (text format 0.0.4 or OpenMetrics), as a Kafka source delivers what a
 * scraper shipped, becomes one record per sample (`sampleToRecord`). The job
 * comes from the record's topic through a pattern such as
 * `prometheus_metrics_{job}` (the seed's topic naming), or is fixed.
 *
 * A page with unreadable lines still yields its good samples, and the input
 * record is also reported as a failure naming the first bad lines (line
 * number and reason), so the stage's `onError` (e.g. the dead-letter queue)
 * keeps the page: nothing is dropped silently. A replay rewrites the good
 * samples with the same keys (series and timestamp).
 */
import * as z from 'zod';
import type { DataRecord } from '../../connector/data-record.js';
import { parseFieldPath } from '../expression/expression-parser.js';
import { getPath } from '../field-path/field-path.js';
import { fieldPathSchema } from '../field-path/field-path-schema.js';
import { stageErrorPolicySchema } from '../stage-error-policy.js';
import { rejectRecord, type RecordFailure, type StatelessTransform } from '../transform.js';
import { parseExposition, SeriesCache } from './exposition-parser.js';
import { sampleToRecord } from './prometheus-sample-record.js';

const JOB_PLACEHOLDER = '{job}';

/**
 * Schema of a prometheus stage.
 *
 * @example
 * ```ts
 * prometheusDefinitionSchema.parse({ type: 'prometheus', field: 'value', jobFromTopic: 'prometheus_metrics_{job}', onError: 'dead-letter' });
 * ```
 */
export const prometheusDefinitionSchema = z
  .strictObject({
    type: z.literal('prometheus'),
    /** The field holding the exposition text. */
    field: fieldPathSchema.default('value'),
    /** The field holding the topic the job is taken from. */
    topicField: fieldPathSchema.default('topic'),
    /** A topic pattern with one `{job}` placeholder, e.g. `prometheus_metrics_{job}` (give this or `job`). */
    jobFromTopic: z
      .string()
      .refine((p) => p.split(JOB_PLACEHOLDER).length === 2, 'must contain {job} exactly once, e.g. prometheus_metrics_{job}')
      .optional(),
    /** A fixed job for every sample (instead of `jobFromTopic`). */
    job: z.string().min(1).optional(),
    /** The field holding the instance (e.g. `key` for a Kafka record keyed by instance). */
    instanceField: fieldPathSchema.optional(),
    /** A fixed instance, used when `instanceField` is absent or the record lacks it. */
    instance: z.string().default(''),
    /** The field holding the scrape time (epoch ms, a number or a numeric string): the timestamp of samples without their own; a record without it is rejected. */
    timestampField: fieldPathSchema.default('timestamp'),
    /** Force a format; default: OpenMetrics when the text ends with `# EOF`. */
    format: z.enum(['text', 'openmetrics']).optional(),
    /** Largest page accepted, in UTF-16 code units of the text. */
    maxBytes: z.number().int().positive().max(256 * 1024 * 1024).default(10 * 1024 * 1024),
    onError: stageErrorPolicySchema,
  })
  .superRefine((value, ctx) => {
    if (value.job !== undefined && value.jobFromTopic !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['job'], message: 'give job (fixed) or jobFromTopic (a topic pattern), not both' });
    }
    if (value.job === undefined && value.jobFromTopic === undefined) {
      ctx.addIssue({ code: 'custom', path: ['jobFromTopic'], message: 'give jobFromTopic (a topic pattern such as prometheus_metrics_{job}) or job (fixed)' });
    }
  });

/** A validated prometheus stage definition. */
export type PrometheusDefinition = z.output<typeof prometheusDefinitionSchema>;

/** The job a topic yields under `pattern`, or undefined when it does not match. */
export function jobFromTopic(pattern: string, topic: string): string | undefined {
  const [prefix = '', suffix = ''] = pattern.split(JOB_PLACEHOLDER);
  if (topic.length <= prefix.length + suffix.length || !topic.startsWith(prefix) || !topic.endsWith(suffix)) return undefined;
  return topic.slice(prefix.length, topic.length - suffix.length);
}

/**
 * Creates a prometheus transform (a series cache per job and instance makes
 * repeated pages of one target cheaper to parse).
 *
 * @example
 * ```ts
 * const t = createPrometheusTransform(prometheusDefinitionSchema.parse({ type: 'prometheus', job: 'node' }), 'transforms[0]');
 * t.apply([{ value: 'up 1\n', timestamp: 1700000000000 }], { now: 0 }); // records: [{ metric_name: 'up', value: 1, ... }]
 * ```
 */
export function createPrometheusTransform(definition: PrometheusDefinition, stage: string): StatelessTransform {
  const field = parseFieldPath(definition.field);
  const topicField = parseFieldPath(definition.topicField);
  const timestampField = parseFieldPath(definition.timestampField);
  const instanceField = definition.instanceField === undefined ? undefined : parseFieldPath(definition.instanceField);
  const pattern = definition.job === undefined ? definition.jobFromTopic : undefined;
  const caches = new Map<string, SeriesCache>();
  const MAX_CACHES = 1_000;

  const process = (record: DataRecord, output: DataRecord[], failures: RecordFailure[]): void => {
    const fail = (error: ReturnType<typeof rejectRecord>) => failures.push({ record, error, stage });
    const text = getPath(record, field);
    if (typeof text !== 'string') {
      fail(rejectRecord('malformed-exposition', `Field ${definition.field} is ${text === undefined ? 'missing' : 'not a string'}, expected exposition text`));
      return;
    }
    if (text.length > definition.maxBytes) {
      fail(rejectRecord('too-large', `Field ${definition.field} holds ${text.length} characters, more than maxBytes (${definition.maxBytes})`));
      return;
    }
    let job = definition.job;
    if (pattern !== undefined) {
      const topic = getPath(record, topicField);
      job = typeof topic === 'string' ? jobFromTopic(pattern, topic) : undefined;
      if (job === undefined) {
        fail(rejectRecord('topic-mismatch', `Topic ${JSON.stringify(topic ?? null)} (field ${definition.topicField}) does not match ${JSON.stringify(pattern)}`));
        return;
      }
    }
    const instanceValue = instanceField === undefined ? undefined : getPath(record, instanceField);
    const instance = typeof instanceValue === 'string' && instanceValue.length > 0 ? instanceValue : definition.instance;
    const stamp = getPath(record, timestampField);
    const scrapeTimestampMs = typeof stamp === 'number' && Number.isFinite(stamp) ? stamp : typeof stamp === 'string' && /^\d{1,16}$/.test(stamp) ? Number(stamp) : undefined;
    if (scrapeTimestampMs === undefined) {
      fail(rejectRecord('invalid-timestamp', `Field ${definition.timestampField} is ${stamp === undefined ? 'missing' : 'not epoch milliseconds'}, expected the scrape time (a number or a numeric string)`));
      return;
    }
    const cacheKey = `${job ?? ''}\u0000${instance}`;
    let cache = caches.get(cacheKey);
    if (cache === undefined) {
      if (caches.size >= MAX_CACHES) caches.clear();
      cache = new SeriesCache();
      caches.set(cacheKey, cache);
    }
    const result = parseExposition(text, {
      job: job ?? '',
      instance,
      scrapeTimestampMs,
      seriesCache: cache,
      ...(definition.format === undefined ? {} : { format: definition.format }),
    });
    for (const sample of result.samples) output.push(sampleToRecord(sample));
    if (result.errors.length > 0) {
      const shown = result.errors
        .slice(0, 5)
        .map((e) => `line ${e.line}: ${e.reason}`)
        .join('; ');
      const more = result.errors.length + result.droppedErrors - 5;
      fail(
        rejectRecord(
          'malformed-exposition',
          `${result.errors.length + result.droppedErrors} unreadable line(s) (${result.samples.length} samples read): ${shown}${more > 0 ? `; and ${more} more` : ''}`,
        ),
      );
    }
  };

  return {
    kind: 'stateless',
    type: 'prometheus',
    stage,
    apply(records) {
      const output: DataRecord[] = [];
      const failures: RecordFailure[] = [];
      for (const record of records) process(record, output, failures);
      return { records: output, failures };
    },
  };
}
