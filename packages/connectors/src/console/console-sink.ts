/**
 * The console sink: shows what a pipeline produces, for demos and debugging.
 * It writes to an injected stream (standard output by default) rather than
 * through `console.log`, one compact line per batch or one line per record.
 */
import { ConnectorError, type Sink, type SinkBatch, type SinkContext, type SinkWriteResult } from '@dataflow/core';
import type { Writable } from 'node:stream';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';

/**
 * Schema of a console sink definition.
 *
 * @example
 * ```ts
 * consoleSinkDefinitionSchema.parse({ type: 'console', format: 'records' });
 * ```
 */
export const consoleSinkDefinitionSchema = z.strictObject({
  type: z.literal('console'),
  /** `summary`: one line per batch; `records`: one JSON line per record. */
  format: z.enum(['summary', 'records']).default('summary'),
  /** Longest rendering of the first record in a summary line. */
  maxPreviewChars: z.number().int().min(10).default(200),
});

/** A console sink definition as written by a user. */
export type ConsoleSinkDefinition = z.input<typeof consoleSinkDefinitionSchema>;

/** What the console sink writes to. */
export interface ConsoleSinkDependencies {
  /** Defaults to `process.stdout`. */
  readonly stream?: Writable;
}

/**
 * Prints batches.
 *
 * @example
 * ```ts
 * const sink = new ConsoleSink({ type: 'console' });
 * await sink.open({ pipelineId: 'orders', checkpoint: undefined, signal });
 * await sink.write({ batchId: '12', records }); // [orders] batch 12: 500 records (first: {"id":1})
 * ```
 */
export class ConsoleSink implements Sink {
  readonly type = 'console';
  private readonly definition: z.output<typeof consoleSinkDefinitionSchema>;
  private readonly stream: Writable;
  private pipelineId: string | undefined;

  constructor(definition: ConsoleSinkDefinition, dependencies: ConsoleSinkDependencies = {}) {
    this.definition = parseDefinition('console', consoleSinkDefinitionSchema, definition);
    this.stream = dependencies.stream ?? process.stdout;
  }

  open(context: SinkContext): Promise<void> {
    this.pipelineId = context.pipelineId;
    return Promise.resolve();
  }

  async write(batch: SinkBatch): Promise<SinkWriteResult> {
    if (this.pipelineId === undefined) throw new ConnectorError('console', 'write before open', { retriable: false });
    const prefix = `[${this.pipelineId}]`;
    let text: string;
    if (this.definition.format === 'records') {
      text = batch.records.map((record) => `${prefix} ${JSON.stringify(record)}\n`).join('');
    } else {
      const [first] = batch.records;
      const preview = first === undefined ? '' : ` (first: ${truncate(JSON.stringify(first), this.definition.maxPreviewChars)})`;
      const noun = batch.records.length === 1 ? 'record' : 'records';
      text = `${prefix} batch ${batch.batchId}: ${batch.records.length} ${noun}${preview}\n`;
    }
    if (text !== '') await this.print(text);
    return {};
  }

  close(): Promise<void> {
    this.pipelineId = undefined;
    return Promise.resolve();
  }

  /** Resolves once the stream took the text (waits out backpressure). */
  private print(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.stream.write(text, (error) => {
        if (error === null || error === undefined) resolve();
        else reject(new ConnectorError('console', `cannot write to the output stream: ${error.message}`, { retriable: false, cause: error }));
      });
    });
  }
}

function truncate(text: string, maxChars: number): string {
  return text.length <= maxChars ? text : `${text.slice(0, maxChars - 1)}…`;
}
