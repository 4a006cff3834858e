/**
 * CSV (RFC 4180 with a configurable delimiter): a record parser fed one
 * physical line at a time, so that a quoted field spanning several lines keeps
 * record boundaries on line boundaries (which is what the file source's
 * offsets count), and the row formatter of the file sink.
 */
import type { JsonValue } from '@dataflow/core';

/** The outcome of feeding one line. */
export type CsvFeedResult =
  | { readonly status: 'record'; readonly fields: string[] }
  | { readonly status: 'malformed'; readonly raw: string; readonly reason: string }
  | { readonly status: 'incomplete' };

const INCOMPLETE: CsvFeedResult = { status: 'incomplete' };

/**
 * Parses CSV records from lines. A quote inside an unquoted field is kept as
 * a literal character (`5" pipe`); text after a closing quote makes the record
 * malformed; a quoted field longer than `maxRecordChars` is cut off as
 * malformed instead of buffering the rest of the file.
 *
 * @example
 * ```ts
 * const parser = new CsvRecordParser(',');
 * parser.feed('1,"two'); // { status: 'incomplete' }
 * parser.feed('lines"'); // { status: 'record', fields: ['1', 'two\nlines'] }
 * ```
 */
export class CsvRecordParser {
  private fields: string[] = [];
  private field = '';
  private inQuotes = false;
  private afterQuote = false;
  private error: string | undefined;
  private rawLines: string[] = [];
  private pendingChars = 0;

  constructor(
    private readonly delimiter: string,
    private readonly quote = '"',
    private readonly maxRecordChars = 1024 * 1024,
  ) {}

  /** True while a quoted field is open across lines. */
  get pending(): boolean {
    return this.rawLines.length > 0;
  }

  feed(line: string): CsvFeedResult {
    if (!this.pending && !line.includes(this.quote)) return { status: 'record', fields: line.split(this.delimiter) };
    if (this.pending) this.field += '\n';
    this.rawLines.push(line);
    this.pendingChars += line.length + 1;
    this.parseLine(line);
    if (this.inQuotes) {
      if (this.pendingChars <= this.maxRecordChars) return INCOMPLETE;
      return this.reset({ status: 'malformed', raw: this.rawLines.join('\n'), reason: `quoted field longer than ${this.maxRecordChars} characters` });
    }
    this.fields.push(this.field);
    const result: CsvFeedResult =
      this.error === undefined ? { status: 'record', fields: this.fields } : { status: 'malformed', raw: this.rawLines.join('\n'), reason: this.error };
    return this.reset(result);
  }

  /** At the end of the input: a record still open is malformed (unterminated quote). */
  finish(): CsvFeedResult | undefined {
    if (!this.pending) return undefined;
    return this.reset({ status: 'malformed', raw: this.rawLines.join('\n'), reason: 'unterminated quoted field at end of file' });
  }

  private parseLine(line: string): void {
    const { delimiter, quote } = this;
    for (let i = 0; i < line.length; i++) {
      const c = line.charAt(i);
      if (this.inQuotes) {
        if (c !== quote) this.field += c;
        else if (line.charAt(i + 1) === quote) {
          this.field += quote;
          i++;
        } else {
          this.inQuotes = false;
          this.afterQuote = true;
        }
      } else if (c === delimiter) {
        this.fields.push(this.field);
        this.field = '';
        this.afterQuote = false;
      } else if (this.afterQuote) {
        this.error ??= `unexpected ${JSON.stringify(c)} after a closing quote`;
        this.field += c;
      } else if (c === quote && this.field === '') {
        this.inQuotes = true;
      } else {
        this.field += c;
      }
    }
  }

  private reset(result: CsvFeedResult): CsvFeedResult {
    this.fields = [];
    this.field = '';
    this.inQuotes = false;
    this.afterQuote = false;
    this.error = undefined;
    this.rawLines = [];
    this.pendingChars = 0;
    return result;
  }
}

const NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * The JSON value of a CSV field when type inference is on: numbers, `true` /
 * `false`, the empty field as `null`, anything else the string itself.
 *
 * @example
 * ```ts
 * inferCsvValue('42'); // 42
 * inferCsvValue('007'); // '007' (leading zeros stay text)
 * ```
 */
export function inferCsvValue(text: string): JsonValue {
  if (text === '') return null;
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (NUMBER.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  return text;
}

/**
 * One CSV row (with its line terminator) from JSON values: `null` and absent
 * values are empty, objects and arrays are written as JSON, and a field is
 * quoted when it holds the delimiter, a quote or a line break.
 *
 * @example
 * ```ts
 * formatCsvRow(['a', 1, 'say "hi"', null], ','); // 'a,1,"say ""hi""",\n'
 * ```
 */
export function formatCsvRow(values: readonly (JsonValue | undefined)[], delimiter: string): string {
  let row = '';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) row += delimiter;
    const value = values[i];
    if (value === null || value === undefined) continue;
    const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
    row += text.includes(delimiter) || text.includes('"') || text.includes('\n') || text.includes('\r') ? `"${text.replaceAll('"', '""')}"` : text;
  }
  return `${row}\n`;
}
