/**
 * Reads a file line by line from a byte position with bounded buffering: it
 * holds at most one chunk beyond the current line, and reads the next chunk
 * only when asked to. Every line comes with the byte offset just after its
 * newline, so a reader can later resume exactly there.
 */
import type { FileHandle } from 'node:fs/promises';

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** One line without its line terminator (`\n` or `\r\n`), and the byte offset right after it. */
export interface Line {
  readonly text: string;
  readonly endByte: number;
}

/**
 * A chunked, pull-based line reader over an open file.
 *
 * @example
 * ```ts
 * const reader = new LineReader(handle, 0);
 * for (let line = reader.next(); ; line = reader.next()) {
 *   if (line === 'need-more') { if (!(await reader.fill())) break; continue; }
 *   // ... line.text, line.endByte
 * }
 * ```
 */
export class LineReader {
  private buffer: Buffer;
  private start = 0;
  private end = 0;
  /** File offset of `buffer[0]`. */
  private bufferOffset: number;
  private endOfFile = false;

  constructor(
    private readonly handle: FileHandle,
    startByte: number,
    private readonly chunkBytes = 64 * 1024,
  ) {
    this.buffer = Buffer.allocUnsafe(chunkBytes);
    this.bufferOffset = startByte;
  }

  /** True once the file's end has been reached and every line was handed out. */
  get exhausted(): boolean {
    return this.endOfFile && this.start >= this.end;
  }

  /** The next complete line, or `'need-more'` when `fill()` must read first (or the file is exhausted). */
  next(): Line | 'need-more' {
    const newline = this.buffer.indexOf(NEWLINE, this.start);
    if (newline !== -1 && newline < this.end) return this.take(newline, newline + 1);
    if (this.endOfFile && this.start < this.end) return this.take(this.end, this.end);
    return 'need-more';
  }

  /** Reads the next chunk; false when the file has no more bytes. */
  async fill(): Promise<boolean> {
    if (this.endOfFile) return false;
    if (this.start > 0) {
      this.buffer.copy(this.buffer, 0, this.start, this.end);
      this.bufferOffset += this.start;
      this.end -= this.start;
      this.start = 0;
    }
    if (this.buffer.length - this.end < this.chunkBytes) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.end + this.chunkBytes));
      this.buffer.copy(grown, 0, 0, this.end);
      this.buffer = grown;
    }
    const { bytesRead } = await this.handle.read(this.buffer, this.end, this.chunkBytes, this.bufferOffset + this.end);
    this.end += bytesRead;
    if (bytesRead === 0) this.endOfFile = true;
    return bytesRead > 0 || this.start < this.end;
  }

  private take(lineEnd: number, nextStart: number): Line {
    const textEnd = lineEnd > this.start && this.buffer[lineEnd - 1] === CARRIAGE_RETURN ? lineEnd - 1 : lineEnd;
    const text = this.buffer.toString('utf8', this.start, textEnd);
    this.start = nextStart;
    return { text, endByte: this.bufferOffset + nextStart };
  }
}
