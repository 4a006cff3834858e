/**
 * The tee sink: one pipeline sink that writes every batch to several sinks,
 * in the order listed (e.g. a console for people and a file for the record).
 *
 * Positions compose: the tee's position is `{ sinks: [p0, p1, ...] }`, the
 * position each sink reported after the batch (null when it reports none),
 * stored with the pipeline's checkpoint. On `open` each sink gets its own
 * element back, so a sink that cuts off what it wrote after its checkpoint
 * (files) stays exactly-once inside a tee. A batch that fails in sink k is
 * re-driven to all sinks: sinks before k see it again, which the position
 * cut-off (or idempotence by batch id, the same id for every sink) absorbs;
 * a sink that is neither (the console) shows it twice. The tee is
 * exactly-once for every sink that is exactly-once on its own.
 *
 * A record any sink refuses is reported as refused once (its reasons joined),
 * for the pipeline's sink error policy; the sinks that accepted it keep it.
 */
import { ConnectorError, isRetriable, type Sink, type SinkBatch, type SinkContext, type SinkPosition, type SinkWriteResult } from '@dataflow/core';
import * as z from 'zod';
import { consoleSinkDefinitionSchema } from '../console/console-sink.js';
import { parseDefinition } from '../factory/parse-definition.js';
import { fileSinkDefinitionSchema } from '../file/file-sink.js';

/** The sinks a tee may hold, with their option schemas (a tee of tees would be one tee). */
const teeableSinkSchemas: Readonly<Record<string, z.ZodType>> = {
  file: fileSinkDefinitionSchema,
  console: consoleSinkDefinitionSchema,
};

/**
 * Schema of a tee sink definition; each inner sink is validated by its own
 * schema, with paths such as `sinks[1].path`.
 *
 * @example
 * ```ts
 * teeSinkDefinitionSchema.parse({
 *   type: 'tee',
 *   sinks: [{ type: 'console' }, { type: 'file', path: 'out/events.jsonl', format: 'jsonl', maxBytes: 16_000_000 }],
 * });
 * ```
 */
export const teeSinkDefinitionSchema = z
  .strictObject({
    type: z.literal('tee'),
    sinks: z.array(z.looseObject({ type: z.string().min(1) })).min(2, 'A tee needs at least 2 sinks').max(8, 'A tee takes at most 8 sinks'),
  })
  .superRefine((definition, ctx) => {
    definition.sinks.forEach((sink, i) => {
      const schema = Object.hasOwn(teeableSinkSchemas, sink.type) ? teeableSinkSchemas[sink.type] : undefined;
      if (schema === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['sinks', i, 'type'],
          message: `A tee cannot hold a sink of type '${sink.type}'; known: ${Object.keys(teeableSinkSchemas).sort().join(', ')}`,
        });
        return;
      }
      const result = schema.safeParse(sink);
      if (result.success) return;
      for (const issue of result.error.issues) {
        ctx.addIssue({ code: 'custom', path: ['sinks', i, ...issue.path], message: issue.message });
      }
    });
  });

/** A tee sink definition as written by a user. */
export type TeeSinkDefinition = z.input<typeof teeSinkDefinitionSchema>;

/** Where a tee stands: the position of each of its sinks, in order. */
export type TeeSinkPosition = { readonly sinks: readonly SinkPosition[] };

/** What the tee needs to build its sinks. */
export interface TeeSinkDependencies {
  /** Builds one inner sink (the connectors' `createSink` with the caller's dependencies). */
  readonly createSink: (definition: { readonly type: string; readonly [option: string]: unknown }) => Sink;
}

/**
 * Writes each batch to several sinks.
 *
 * @example
 * ```ts
 * const tee = new TeeSink({ type: 'tee', sinks: [{ type: 'console' }, { type: 'file', path: 'out.jsonl', format: 'jsonl' }] }, { createSink });
 * await tee.open({ pipelineId: 'demo', checkpoint: savedPosition, signal });
 * const { position } = await tee.write({ batchId: 'demo:7', records }); // { sinks: [null, { file, bytes, index }] }
 * ```
 */
export class TeeSink implements Sink {
  readonly type = 'tee';
  /** Only when every sink of the tee may be written ahead of the previous checkpoint. */
  readonly pipelinedWrites: boolean;
  private readonly sinks: readonly Sink[];
  private opened = false;

  constructor(definition: TeeSinkDefinition, dependencies: TeeSinkDependencies) {
    const parsed = parseDefinition('tee', teeSinkDefinitionSchema, definition);
    this.sinks = parsed.sinks.map((sink) => dependencies.createSink(sink));
    this.pipelinedWrites = this.sinks.every((sink) => sink.pipelinedWrites === true);
  }

  async open(context: SinkContext): Promise<void> {
    const checkpoints = this.checkpointsOf(context.checkpoint);
    const opened: Sink[] = [];
    for (const [i, sink] of this.sinks.entries()) {
      const checkpoint = checkpoints[i];
      try {
        await sink.open({ ...context, checkpoint: checkpoint === null ? undefined : checkpoint });
      } catch (error) {
        const closeErrors = await closeAll(opened);
        if (closeErrors.length === 0) throw error;
        throw new ConnectorError('tee', `sinks[${i}] (${sink.type}) could not open, and closing the sinks opened before it failed too`, {
          retriable: isRetriable(error),
          cause: new AggregateError([error, ...closeErrors]),
        });
      }
      opened.push(sink);
    }
    this.opened = true;
  }

  async write(batch: SinkBatch): Promise<SinkWriteResult> {
    if (!this.opened) throw new ConnectorError('tee', 'write before open', { retriable: false });
    const positions: SinkPosition[] = [];
    const refused = new Map<number, string[]>();
    for (const [i, sink] of this.sinks.entries()) {
      const result = await sink.write(batch);
      positions.push(result.position ?? null);
      for (const { index, reason } of result.rejected ?? []) {
        const reasons = refused.get(index) ?? [];
        reasons.push(`sinks[${i}] (${sink.type}): ${reason}`);
        refused.set(index, reasons);
      }
    }
    const position: TeeSinkPosition = { sinks: positions };
    if (refused.size === 0) return { position };
    const rejected = [...refused].sort(([a], [b]) => a - b).map(([index, reasons]) => ({ index, reason: reasons.join('; ') }));
    return { position, rejected };
  }

  async close(): Promise<void> {
    this.opened = false;
    const errors = await closeAll(this.sinks);
    if (errors.length > 0) {
      throw new ConnectorError('tee', `${errors.length} of ${this.sinks.length} sinks failed to close`, { retriable: false, cause: new AggregateError(errors) });
    }
  }

  /** The checkpoint of each inner sink; a first start has none. */
  private checkpointsOf(checkpoint: SinkPosition | undefined): readonly SinkPosition[] {
    if (checkpoint === undefined || checkpoint === null) return this.sinks.map(() => null);
    const sinks = typeof checkpoint === 'object' && !Array.isArray(checkpoint) ? (checkpoint as { sinks?: unknown }).sinks : undefined;
    if (!Array.isArray(sinks) || sinks.length !== this.sinks.length) {
      throw new ConnectorError('tee', `checkpoint ${JSON.stringify(checkpoint)} is not a position of a tee of ${this.sinks.length} sinks { sinks: [...] }`, {
        retriable: false,
      });
    }
    return sinks as readonly SinkPosition[];
  }
}

/** Closes every sink, also after a failure; returns the failures. */
async function closeAll(sinks: readonly Sink[]): Promise<unknown[]> {
  const results = await Promise.allSettled(sinks.map((sink) => sink.close()));
  return results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
}
