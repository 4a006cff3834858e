/**
 * The file sink: JSON Lines or CSV, with size rotation, exactly-once across
 * crashes. Each `write` appends one whole batch and syncs it before returning
 * the position `{ file, bytes, index }`; the pipeline stores that position with
 * its checkpoint. On `open`, the sink cuts the current file back to the
 * checkpointed length and deletes files rotated after it, so whatever was
 * written after the last checkpoint disappears and the re-driven batches are
 * written once. The sink therefore owns its files: without a checkpoint (a
 * first start) it starts them empty.
 *
 * Because it cuts files back, a file sink must be the only writer of its path:
 * a second sink of this process opening the same path is refused.
 *
 * Rotation: file 0 is `path`, later ones `path.1`, `path.2`, ... (never
 * renamed, so a position stays valid). A batch is never split: a new file is
 * started when the batch would push a non-empty file beyond `maxBytes`.
 */
import {
  ConnectorError,
  type DataRecord,
  type Sink,
  type SinkBatch,
  type SinkContext,
  type SinkPosition,
  type SinkWriteResult,
} from '@dataflow/core';
import { mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';
import { CsvRecordParser, formatCsvRow } from './csv.js';
import { DurableAppendFile, syncDirectory } from './durable-append-file.js';
import { fileError } from './file-errors.js';
import { LineReader } from './line-reader.js';

const common = {
  type: z.literal('file'),
  path: z.string().min(1),
  /** Start a new file when a batch would push the current one beyond this size. */
  maxBytes: z.number().int().positive().optional(),
};

/**
 * Schema of a file sink definition.
 *
 * @example
 * ```ts
 * fileSinkDefinitionSchema.parse({ type: 'file', path: 'out/events.jsonl', format: 'jsonl', maxBytes: 64 * 1024 * 1024 });
 * fileSinkDefinitionSchema.parse({ type: 'file', path: 'out/orders.csv', format: 'csv', columns: ['id', 'total'] });
 * ```
 */
export const fileSinkDefinitionSchema = z.discriminatedUnion('format', [
  z.strictObject({ ...common, format: z.literal('jsonl') }),
  z.strictObject({
    ...common,
    format: z.literal('csv'),
    delimiter: z.string().length(1).default(','),
    /** The columns written, in order (other fields are left out); without them, the fields of the first record. */
    columns: z.array(z.string().min(1)).min(1).optional(),
  }),
]);

/** A file sink definition as written by a user. */
export type FileSinkDefinition = z.input<typeof fileSinkDefinitionSchema>;
type ParsedDefinition = z.output<typeof fileSinkDefinitionSchema>;

/** Where the sink stands: the current file's name, its length, and its rotation index. */
export type FileSinkPosition = { readonly file: string; readonly bytes: number; readonly index: number };

/** The paths held by open file sinks of this process, and the pipeline holding each. */
const claimedPaths = new Map<string, { readonly sink: FileSink; readonly pipelineId: string }>();

type State =
  | { readonly status: 'closed' }
  | { readonly status: 'open'; current: DurableAppendFile; index: number; columns: readonly string[] | undefined };

/**
 * Writes batches to local files, exactly once across crashes when its
 * positions are stored with the pipeline's checkpoints.
 *
 * @example
 * ```ts
 * const sink = new FileSink({ type: 'file', path: 'out.jsonl', format: 'jsonl' });
 * await sink.open({ pipelineId: 'p1', checkpoint: savedPosition, signal });
 * const { position } = await sink.write({ batchId: 'p1-7', records }); // store with the checkpoint
 * ```
 */
export class FileSink implements Sink {
  readonly type = 'file';
  /** It cuts back to the checkpointed position on open: a batch may be written before the previous checkpoint is durable. */
  readonly pipelinedWrites = true;
  private readonly definition: ParsedDefinition;
  private state: State = { status: 'closed' };

  constructor(definition: FileSinkDefinition) {
    this.definition = parseDefinition('file', fileSinkDefinitionSchema, definition);
  }

  /** The path of rotation `index`: `path`, `path.1`, `path.2`, ... */
  segmentPath(index: number): string {
    return index === 0 ? this.definition.path : `${this.definition.path}.${index}`;
  }

  async open(context: SinkContext): Promise<void> {
    await this.close();
    const position = parsePosition(context.checkpoint);
    const { path } = this.definition;
    const claim = claimedPaths.get(resolve(path));
    if (claim !== undefined && claim.sink !== this) {
      throw new ConnectorError('file', `${path} is already written by pipeline ${claim.pipelineId}`, { retriable: false });
    }
    claimedPaths.set(resolve(path), { sink: this, pipelineId: context.pipelineId });
    try {
      await this.openAt(position);
    } catch (error) {
      claimedPaths.delete(resolve(path));
      throw error;
    }
  }

  private async openAt(position: { index: number; bytes: number }): Promise<void> {
    const { path } = this.definition;
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch (error) {
      throw fileError('file', `cannot create the directory of ${path}`, error);
    }
    await this.deleteSegmentsAfter(position.index);
    const segment = this.segmentPath(position.index);
    if (position.bytes > 0 && (await sizeOf(segment)) === undefined) {
      throw new ConnectorError('file', `${segment} is missing but the checkpoint holds ${position.bytes} bytes of it`, { retriable: false });
    }
    const current = await DurableAppendFile.open('file', segment);
    try {
      await current.truncate(position.bytes);
      const columns = this.definition.format === 'csv' ? (this.definition.columns ?? (await readHeader(current, this.definition.delimiter))) : undefined;
      this.state = { status: 'open', current, index: position.index, columns };
    } catch (error) {
      await current.close();
      throw error;
    }
  }

  async write(batch: SinkBatch): Promise<SinkWriteResult> {
    const state = this.state;
    if (state.status !== 'open') throw new ConnectorError('file', 'write before open', { retriable: false });
    if (batch.records.length === 0) return { position: this.positionOf(state) };
    const maxBytes = this.definition.maxBytes;
    let encoded = this.encode(state, batch.records, state.current.size === 0);
    if (maxBytes !== undefined && state.current.size > 0 && state.current.size + encoded.data.length > maxBytes) {
      await this.rotate(state);
      encoded = this.encode(state, batch.records, true);
    }
    await state.current.append(encoded.data);
    const position = this.positionOf(state);
    return encoded.rejected.length === 0 ? { position } : { position, rejected: encoded.rejected };
  }

  async close(): Promise<void> {
    const state = this.state;
    this.state = { status: 'closed' };
    const key = resolve(this.definition.path);
    if (claimedPaths.get(key)?.sink === this) claimedPaths.delete(key);
    if (state.status === 'open') await state.current.close();
  }

  private positionOf(state: Extract<State, { status: 'open' }>): FileSinkPosition {
    return { file: basename(state.current.path), bytes: state.current.size, index: state.index };
  }

  private async rotate(state: Extract<State, { status: 'open' }>): Promise<void> {
    const next = await DurableAppendFile.open('file', this.segmentPath(state.index + 1));
    try {
      await next.truncate(0);
    } catch (error) {
      await next.close();
      throw error;
    }
    await state.current.close();
    state.current = next;
    state.index += 1;
  }

  private encode(
    state: Extract<State, { status: 'open' }>,
    records: readonly DataRecord[],
    startOfFile: boolean,
  ): { data: Buffer; rejected: { index: number; reason: string }[] } {
    const rejected: { index: number; reason: string }[] = [];
    if (this.definition.format === 'jsonl') {
      let text = '';
      for (const record of records) text += `${JSON.stringify(record)}\n`;
      return { data: Buffer.from(text), rejected };
    }
    const { delimiter, columns: explicit } = this.definition;
    state.columns ??= Object.keys(records[0] ?? {});
    const columns = state.columns;
    let text = startOfFile ? formatCsvRow(columns, delimiter) : '';
    records.forEach((record, index) => {
      const unknown = explicit === undefined ? Object.keys(record).filter((key) => !columns.includes(key)) : [];
      if (unknown.length > 0) rejected.push({ index, reason: `fields not in the CSV header: ${unknown.join(', ')}` });
      else text += formatCsvRow(columns.map((c) => record[c]), delimiter);
    });
    return { data: Buffer.from(text), rejected };
  }

  private async deleteSegmentsAfter(index: number): Promise<void> {
    const dir = dirname(this.definition.path);
    const prefix = `${basename(this.definition.path)}.`;
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      throw fileError('file', `cannot list ${dir}`, error);
    }
    const stale = names.filter((name) => name.startsWith(prefix) && /^[1-9]\d*$/.test(name.slice(prefix.length)) && Number(name.slice(prefix.length)) > index);
    for (const name of stale) {
      try {
        await unlink(join(dir, name));
      } catch (error) {
        throw fileError('file', `cannot delete ${name} (written after the checkpoint)`, error);
      }
    }
    if (stale.length > 0) await syncDirectory('file', dir);
  }
}

function parsePosition(checkpoint: SinkPosition | undefined): { index: number; bytes: number } {
  if (checkpoint === undefined || checkpoint === null) return { index: 0, bytes: 0 };
  if (typeof checkpoint === 'object' && !Array.isArray(checkpoint)) {
    const { index, bytes } = checkpoint as { index?: unknown; bytes?: unknown };
    if (isCount(index) && isCount(bytes)) return { index, bytes };
  }
  throw new ConnectorError('file', `checkpoint ${JSON.stringify(checkpoint)} is not a file sink position { file, bytes, index }`, { retriable: false });
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if (typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT') return undefined;
    throw fileError('file', `cannot stat ${path}`, error);
  }
}

/** The column names of a CSV file the sink continues (its first record), or undefined for an empty file. */
async function readHeader(file: DurableAppendFile, delimiter: string): Promise<readonly string[] | undefined> {
  if (file.size === 0) return undefined;
  const handle = await open(file.path, 'r');
  try {
    const reader = new LineReader(handle, 0);
    const parser = new CsvRecordParser(delimiter);
    for (;;) {
      const line = reader.next();
      if (line === 'need-more') {
        if (await reader.fill()) continue;
        break;
      }
      const result = parser.feed(line.text);
      if (result.status === 'record') return result.fields;
      if (result.status === 'malformed') break;
    }
  } catch (error) {
    throw fileError('file', `cannot read the CSV header of ${file.path}`, error);
  } finally {
    await handle.close();
  }
  throw new ConnectorError('file', `${file.path} does not start with a CSV header`, { retriable: false });
}
