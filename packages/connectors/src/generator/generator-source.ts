/**
 * The generator source: synthetic records for demos and benchmarks, at a
 * given rate, finite or unlimited. Every value is a pure function of the seed,
 * the field name and the record's index, so a pipeline that resumes from
 * offset N (the number of records emitted) reproduces record N + 1 exactly.
 */
import {
  ConnectorError,
  type DataRecord,
  type JsonValue,
  type Source,
  type SourceBatch,
  type SourceContext,
  type SourceOffset,
  type SourceRecord,
} from '@dataflow/core';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';
import { CounterRandom, streamOf } from './counter-random.js';
import { systemPacingClock, type PacingClock } from './pacing-clock.js';

const fieldSchema = z.discriminatedUnion('kind', [
  /** `start`, `start + 1`, ... (record index + start). */
  z.strictObject({ kind: z.literal('sequence'), start: z.number().int().default(1) }),
  z.strictObject({ kind: z.literal('constant'), value: z.json() }),
  /** A uniform integer in [min, max]. */
  z.strictObject({ kind: z.literal('int'), min: z.number().int(), max: z.number().int() }),
  /** A uniform float in [min, max), rounded to `decimals` when given. */
  z.strictObject({ kind: z.literal('float'), min: z.number(), max: z.number(), decimals: z.number().int().min(0).max(15).optional() }),
  /** One of `values`, uniformly. */
  z.strictObject({ kind: z.literal('pick'), values: z.array(z.json()).min(1) }),
  /**
   * `startMs + index * stepMs`; without `startMs` the clock's time of emission
   * (then the field is the one value that is not reproducible).
   */
  z.strictObject({
    kind: z.literal('timestamp'),
    startMs: z.number().int().optional(),
    stepMs: z.number().min(0).default(1000),
    format: z.enum(['iso', 'epoch-ms']).default('iso'),
  }),
  /** A random UUID (version 4 layout) derived from the seed and index. */
  z.strictObject({ kind: z.literal('uuid') }),
]);

/** One field of a generated record. */
export type GeneratedField = z.output<typeof fieldSchema>;

/**
 * Schema of a generator source definition.
 *
 * @example
 * ```ts
 * generatorSourceDefinitionSchema.parse({
 *   type: 'generator',
 *   rate: 1000,
 *   count: 50_000,
 *   seed: 7,
 *   fields: { id: { kind: 'sequence' }, temp: { kind: 'float', min: -10, max: 40, decimals: 1 } },
 * });
 * ```
 */
export const generatorSourceDefinitionSchema = z
  .strictObject({
    type: z.literal('generator'),
    /** Records per second; 0 emits as fast as the pipeline polls. */
    rate: z.number().min(0).default(0),
    /** Total records; absent means unlimited. */
    count: z.number().int().min(0).optional(),
    seed: z.number().int().default(1),
    fields: z.record(z.string().min(1), fieldSchema).default({ id: { kind: 'sequence', start: 1 } }),
  })
  .superRefine((definition, ctx) => {
    for (const [name, field] of Object.entries(definition.fields)) {
      if ((field.kind === 'int' || field.kind === 'float') && field.min > field.max) {
        ctx.addIssue({ code: 'custom', path: ['fields', name, 'min'], message: `min (${field.min}) is greater than max (${field.max})` });
      }
    }
  });

/** A generator source definition as written by a user. */
export type GeneratorSourceDefinition = z.input<typeof generatorSourceDefinitionSchema>;

/** What the generator source needs from its environment. */
export interface GeneratorSourceDependencies {
  /** Paces emission at `rate`; defaults to the wall clock. */
  readonly clock?: PacingClock;
}

/** A record never waits more than this long to catch up after the pipeline stalled: no bursts of an hour's backlog. */
const MAX_BACKLOG_MS = 1000;

type Cursor = { readonly status: 'closed' } | { status: 'open'; emitted: number; nextDueAtMs: number; signal: AbortSignal };

/**
 * Generates records from a seeded, counter-based shape.
 *
 * @example
 * ```ts
 * const source = new GeneratorSource({ type: 'generator', count: 3, fields: { n: { kind: 'sequence' } } });
 * await source.open({ pipelineId: 'demo', checkpoint: 1, signal: new AbortController().signal });
 * const batch = await source.poll(10, 0); // records n = 2, 3; offset 3; done
 * ```
 */
export class GeneratorSource implements Source {
  readonly type = 'generator';
  private readonly definition: z.output<typeof generatorSourceDefinitionSchema>;
  private readonly random: CounterRandom;
  private readonly clock: PacingClock;
  private readonly fields: readonly (readonly [name: string, field: GeneratedField, stream: number])[];
  private cursor: Cursor = { status: 'closed' };

  constructor(definition: GeneratorSourceDefinition, dependencies: GeneratorSourceDependencies = {}) {
    this.definition = parseDefinition('generator', generatorSourceDefinitionSchema, definition);
    this.random = new CounterRandom(this.definition.seed);
    this.clock = dependencies.clock ?? systemPacingClock;
    this.fields = Object.entries(this.definition.fields).map(([name, field]) => [name, field, streamOf(name)] as const);
  }

  open(context: SourceContext): Promise<void> {
    const emitted = context.checkpoint ?? 0;
    const { count } = this.definition;
    if (typeof emitted !== 'number' || !Number.isSafeInteger(emitted) || emitted < 0 || (count !== undefined && emitted > count)) {
      return Promise.reject(
        new ConnectorError('generator', `checkpoint ${JSON.stringify(emitted)} is not a record count in [0, ${count ?? '∞'}]`, { retriable: false }),
      );
    }
    this.cursor = { status: 'open', emitted, nextDueAtMs: this.clock.now(), signal: context.signal };
    return Promise.resolve();
  }

  async poll(maxRecords: number, maxWaitMs: number): Promise<SourceBatch> {
    const cursor = this.cursor;
    if (cursor.status !== 'open') throw new ConnectorError('generator', 'poll before open', { retriable: false });
    const remaining = this.definition.count === undefined ? Number.POSITIVE_INFINITY : this.definition.count - cursor.emitted;
    const wanted = Math.max(0, Math.min(maxRecords, remaining));
    const n = this.definition.rate === 0 ? wanted : await this.waitForDue(cursor, wanted, maxWaitMs);
    const records: SourceRecord[] = new Array<SourceRecord>(n);
    for (let i = 0; i < n; i++) records[i] = { ok: true, value: this.recordAt(cursor.emitted + i) };
    cursor.emitted += n;
    return { records, offset: cursor.emitted, done: cursor.emitted === this.definition.count };
  }

  /** Nothing to commit upstream: the offset alone positions a generator. */
  ack(_offset: SourceOffset): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.cursor = { status: 'closed' };
    return Promise.resolve();
  }

  /**
   * The record at `index` (0-based; the record after offset N has index N).
   * Public so tests and benchmarks can predict what the source emits.
   */
  recordAt(index: number): DataRecord {
    const record: Record<string, JsonValue> = {};
    for (const [name, field, stream] of this.fields) record[name] = this.valueOf(field, stream, index);
    return record;
  }

  /** Sleeps until `wanted` records are due or `maxWaitMs` has passed; returns how many are due (≤ wanted). */
  private async waitForDue(cursor: Extract<Cursor, { status: 'open' }>, wanted: number, maxWaitMs: number): Promise<number> {
    const intervalMs = 1000 / this.definition.rate;
    const startMs = this.clock.now();
    cursor.nextDueAtMs = Math.max(cursor.nextDueAtMs, startMs - MAX_BACKLOG_MS);
    if (wanted > 0) {
      const allDueAtMs = cursor.nextDueAtMs + (wanted - 1) * intervalMs;
      const wakeAtMs = Math.min(allDueAtMs, startMs + Math.max(0, maxWaitMs));
      if (wakeAtMs > startMs) await this.clock.sleep(wakeAtMs - startMs, cursor.signal);
    }
    const nowMs = this.clock.now();
    const due = nowMs < cursor.nextDueAtMs ? 0 : Math.floor((nowMs - cursor.nextDueAtMs) / intervalMs) + 1;
    const n = Math.min(due, wanted);
    cursor.nextDueAtMs += n * intervalMs;
    return n;
  }

  private valueOf(field: GeneratedField, stream: number, index: number): JsonValue {
    switch (field.kind) {
      case 'sequence':
        return field.start + index;
      case 'constant':
        return field.value;
      case 'int':
        return field.min + Math.floor(this.random.unit(stream, index) * (field.max - field.min + 1));
      case 'float': {
        const value = field.min + this.random.unit(stream, index) * (field.max - field.min);
        if (field.decimals === undefined) return value;
        const scale = 10 ** field.decimals;
        return Math.round(value * scale) / scale;
      }
      case 'pick':
        return field.values[Math.floor(this.random.unit(stream, index) * field.values.length)] as JsonValue;
      case 'timestamp': {
        const ms = field.startMs === undefined ? this.clock.now() : field.startMs + index * field.stepMs;
        return field.format === 'iso' ? new Date(ms).toISOString() : ms;
      }
      case 'uuid':
        return this.uuidAt(stream, index);
    }
  }

  private uuidAt(stream: number, index: number): string {
    const a = this.random.uint32(stream, index, 0);
    const b = this.random.uint32(stream, index, 1);
    const c = this.random.uint32(stream, index, 2);
    const d = this.random.uint32(stream, index, 3);
    // Version 4 in the 13th hex digit, variant 10xx in the 17th.
    const b4 = ((b & 0xffff0fff) | 0x00004000) >>> 0;
    const c4 = ((c & 0x3fffffff) | 0x80000000) >>> 0;
    return `${hex8(a)}-${hex4(b4 >>> 16)}-${hex4(b4)}-${hex4(c4 >>> 16)}-${hex4(c4)}${hex8(d)}`;
  }
}

const HEX_BYTES = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex4(n: number): string {
  return (HEX_BYTES[(n >>> 8) & 0xff] ?? '') + (HEX_BYTES[n & 0xff] ?? '');
}

function hex8(n: number): string {
  return hex4(n >>> 16) + hex4(n);
}
