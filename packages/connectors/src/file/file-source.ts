/**
 * The file source: CSV, NDJSON or plain text, read as a stream of lines with
 * at most one chunk read ahead. Its offset is `{ line, byte }` after the last
 * record of a batch: the line number the platform's checkpoints always used,
 * and the byte position that lets a restart seek straight to the next record
 * instead of re-reading the file. Lines that cannot be parsed become failed
 * records (for the dead-letter queue); nothing is dropped.
 */
import {
  checkRecordBounds,
  ConnectorError,
  type DataRecord,
  type JsonValue,
  type Source,
  type SourceBatch,
  type SourceContext,
  type SourceOffset,
  type SourceRecord,
} from '@dataflow/core';
import { open, type FileHandle } from 'node:fs/promises';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';
import { CsvRecordParser, inferCsvValue, type CsvFeedResult } from './csv.js';
import { fileError } from './file-errors.js';
import { LineReader, type Line } from './line-reader.js';

const pathSchema = z.string().min(1);

/**
 * Schema of a file source definition; `format` picks the parser.
 *
 * @example
 * ```ts
 * fileSourceDefinitionSchema.parse({ type: 'file', path: 'data/orders.csv', format: 'csv', delimiter: ';', inferTypes: true });
 * fileSourceDefinitionSchema.parse({ type: 'file', path: 'data/events.ndjson', format: 'ndjson' });
 * ```
 */
export const fileSourceDefinitionSchema = z.discriminatedUnion('format', [
  z.strictObject({
    type: z.literal('file'),
    path: pathSchema,
    format: z.literal('csv'),
    delimiter: z.string().length(1).default(','),
    quote: z.string().length(1).default('"'),
    /** The first record holds the column names (skipped as data when `columns` is given). */
    header: z.boolean().default(true),
    /** Explicit column names; without them and without a header, columns are `column1`, `column2`, ... */
    columns: z.array(z.string().min(1)).min(1).optional(),
    /** Numbers, booleans and empty fields (null) instead of strings. */
    inferTypes: z.boolean().default(false),
  }),
  z.strictObject({ type: z.literal('file'), path: pathSchema, format: z.literal('ndjson') }),
  z.strictObject({ type: z.literal('file'), path: pathSchema, format: z.literal('text') }),
]);

/** A file source definition as written by a user. */
export type FileSourceDefinition = z.input<typeof fileSourceDefinitionSchema>;
type ParsedDefinition = z.output<typeof fileSourceDefinitionSchema>;
type CsvDefinition = Extract<ParsedDefinition, { format: 'csv' }>;

/** The file source's offset: lines consumed and the byte position after them. */
export type FileSourceOffset = { readonly line: number; readonly byte: number };

type State =
  | { readonly status: 'closed' }
  | {
      readonly status: 'open';
      readonly handle: FileHandle;
      readonly reader: LineReader;
      readonly csv: CsvRecordParser | undefined;
      /** CSV column names, once known. */
      columns: readonly string[] | undefined;
      /** A header row is still to be read at the reader's position. */
      headerPending: boolean;
      /** Lines read, including those of a CSV record not yet complete. */
      linesRead: number;
      offset: FileSourceOffset;
    };

/**
 * Reads records from a local file.
 *
 * @example
 * ```ts
 * const source = new FileSource({ type: 'file', path: 'orders.csv', format: 'csv' });
 * await source.open({ pipelineId: 'orders', checkpoint: { line: 1000, byte: 48_213 }, signal });
 * const batch = await source.poll(500, 1000); // records from line 1001 on
 * ```
 */
export class FileSource implements Source {
  readonly type = 'file';
  private readonly definition: ParsedDefinition;
  private state: State = { status: 'closed' };

  constructor(definition: FileSourceDefinition) {
    this.definition = parseDefinition('file', fileSourceDefinitionSchema, definition);
  }

  async open(context: SourceContext): Promise<void> {
    await this.close();
    const checkpoint = parseCheckpoint(context.checkpoint);
    const { path } = this.definition;
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      throw fileError('file', `cannot open ${path}`, error);
    }
    try {
      const offset = checkpoint.byte === undefined ? await offsetOfLine(handle, checkpoint.line) : await verifiedOffset(handle, path, checkpoint);
      const csvDefinition = this.definition.format === 'csv' ? this.definition : undefined;
      let columns: readonly string[] | undefined = csvDefinition?.columns;
      if (csvDefinition !== undefined && csvDefinition.header && columns === undefined && offset.byte > 0) {
        columns = await readCsvHeader(handle, csvDefinition);
      }
      this.state = {
        status: 'open',
        handle,
        reader: new LineReader(handle, offset.byte),
        csv: csvDefinition === undefined ? undefined : new CsvRecordParser(csvDefinition.delimiter, csvDefinition.quote),
        columns,
        headerPending: csvDefinition !== undefined && csvDefinition.header && offset.byte === 0,
        linesRead: offset.line,
        offset,
      };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async poll(maxRecords: number, _maxWaitMs: number): Promise<SourceBatch> {
    const state = this.state;
    if (state.status !== 'open') throw new ConnectorError('file', 'poll before open', { retriable: false });
    const records: SourceRecord[] = [];
    while (records.length < maxRecords) {
      const line = state.reader.next();
      if (line === 'need-more') {
        let more: boolean;
        try {
          more = await state.reader.fill();
        } catch (error) {
          throw fileError('file', `cannot read ${this.definition.path}`, error);
        }
        if (more) continue;
        const unterminated = state.csv?.finish();
        if (unterminated?.status === 'malformed') {
          records.push({ ok: false, raw: unterminated.raw, reason: unterminated.reason });
          state.offset = { line: state.linesRead, byte: state.offset.byte };
        }
        break;
      }
      state.linesRead++;
      const text = state.offset.byte === 0 && state.linesRead === 1 ? stripByteOrderMark(line.text) : line.text;
      const record = this.recordOf(state, text);
      if (record !== 'incomplete') state.offset = { line: state.linesRead, byte: line.endByte };
      if (record !== 'incomplete' && record !== 'skip') records.push(record);
    }
    const done = state.reader.exhausted && state.csv?.pending !== true;
    return { records, offset: state.offset, done };
  }

  /** A file has nothing upstream to commit. */
  ack(_offset: SourceOffset): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    const state = this.state;
    this.state = { status: 'closed' };
    if (state.status === 'open') await state.handle.close();
  }

  private recordOf(state: Extract<State, { status: 'open' }>, text: string): SourceRecord | 'skip' | 'incomplete' {
    switch (this.definition.format) {
      case 'text':
        return { ok: true, value: { line: text } };
      case 'ndjson':
        return text.trim() === '' ? 'skip' : parseJsonLine(text);
      case 'csv':
        if (state.csv === undefined) throw new ConnectorError('file', 'CSV parser missing', { retriable: false });
        if (text === '' && !state.csv.pending) return 'skip';
        return csvRecord(state, this.definition, state.csv.feed(text), text);
    }
  }
}

function csvRecord(
  state: Extract<State, { status: 'open' }>,
  definition: CsvDefinition,
  result: CsvFeedResult,
  text: string,
): SourceRecord | 'skip' | 'incomplete' {
  if (result.status === 'incomplete') return 'incomplete';
  if (result.status === 'malformed') return { ok: false, raw: result.raw, reason: result.reason };
  if (state.headerPending) {
    state.headerPending = false;
    state.columns ??= headerColumns(result.fields, definition.path);
    return 'skip';
  }
  const { fields } = result;
  const columns = state.columns;
  if (columns !== undefined && fields.length !== columns.length) {
    return { ok: false, raw: text, reason: `expected ${columns.length} fields, found ${fields.length}` };
  }
  const value: Record<string, JsonValue> = {};
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i] ?? '';
    const column = columns?.[i] ?? `column${i + 1}`;
    const cell = definition.inferTypes ? inferCsvValue(field) : field;
    // A column called __proto__ is data: define it (assigning it would try to change the prototype and drop the value).
    if (column === '__proto__') Object.defineProperty(value, column, { value: cell, enumerable: true, writable: true, configurable: true });
    else value[column] = cell;
  }
  return { ok: true, value };
}

function headerColumns(fields: readonly string[], path: string): readonly string[] {
  const columns = fields.map((f) => f.trim());
  const duplicate = columns.find((c, i) => columns.indexOf(c) !== i);
  if (duplicate !== undefined || columns.includes('')) {
    throw new ConnectorError('file', `${path}: the CSV header has ${duplicate === undefined ? 'an empty' : `a duplicate (${duplicate})`} column name`, {
      retriable: false,
    });
  }
  return columns;
}

function parseJsonLine(text: string): SourceRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, raw: text, reason: error instanceof Error ? error.message : String(error) };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, raw: text, reason: 'not a JSON object' };
  // Nested deeper than 64 levels or over 1 MiB: refused here, with the line kept as text, before anything recursive meets it.
  const issue = checkRecordBounds(value);
  if (issue !== undefined) return { ok: false, raw: text, reason: issue.path === '' ? issue.message : `${issue.path}: ${issue.message}` };
  return { ok: true, value: value as DataRecord };
}

function stripByteOrderMark(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function parseCheckpoint(checkpoint: SourceOffset | undefined): { line: number; byte: number | undefined } {
  if (checkpoint === undefined || checkpoint === null) return { line: 0, byte: 0 };
  if (isCount(checkpoint)) return { line: checkpoint, byte: undefined };
  if (typeof checkpoint === 'object' && !Array.isArray(checkpoint)) {
    const { line, byte } = checkpoint as { line?: unknown; byte?: unknown };
    if (isCount(line) && isCount(byte)) return { line, byte };
  }
  throw new ConnectorError('file', `checkpoint ${JSON.stringify(checkpoint)} is neither { line, byte } nor a line number`, { retriable: false });
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Checks that the checkpoint's byte position still lies on a line boundary of this file (a replaced or truncated file fails here). */
async function verifiedOffset(handle: FileHandle, path: string, offset: { line: number; byte: number | undefined }): Promise<FileSourceOffset> {
  const byte = offset.byte ?? 0;
  const { size } = await handle.stat();
  if (byte > size) {
    throw new ConnectorError('file', `${path} has ${size} bytes, fewer than the checkpoint's ${byte}: was it replaced or truncated?`, { retriable: false });
  }
  if (byte > 0 && byte < size) {
    const previous = Buffer.alloc(1);
    await handle.read(previous, 0, 1, byte - 1);
    if (previous[0] !== 0x0a) {
      throw new ConnectorError('file', `${path}: the checkpoint's byte ${byte} is not at a line start: was the file rewritten?`, { retriable: false });
    }
  }
  return { line: offset.line, byte };
}

/** Finds the byte after `line` lines by reading (for checkpoints that only carry a line number). */
async function offsetOfLine(handle: FileHandle, line: number): Promise<FileSourceOffset> {
  const reader = new LineReader(handle, 0);
  let read = 0;
  let byte = 0;
  while (read < line) {
    const next: Line | 'need-more' = reader.next();
    if (next === 'need-more') {
      if (!(await reader.fill())) break;
      continue;
    }
    read++;
    byte = next.endByte;
  }
  return { line: read, byte };
}

async function readCsvHeader(handle: FileHandle, definition: CsvDefinition): Promise<readonly string[]> {
  const reader = new LineReader(handle, 0);
  const parser = new CsvRecordParser(definition.delimiter, definition.quote);
  let first = true;
  for (;;) {
    const next = reader.next();
    if (next === 'need-more') {
      if (await reader.fill()) continue;
      break;
    }
    const text = first ? stripByteOrderMark(next.text) : next.text;
    first = false;
    if (text === '' && !parser.pending) continue;
    const result = parser.feed(text);
    if (result.status === 'record') return headerColumns(result.fields, definition.path);
    if (result.status === 'malformed') break;
  }
  throw new ConnectorError('file', `${definition.path}: cannot read the CSV header`, { retriable: false });
}
