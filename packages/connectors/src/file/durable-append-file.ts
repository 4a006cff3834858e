/**
 * An append-only file whose appends are durable when they return (written,
 * then `fdatasync`) and all-or-nothing: a failed append is cut back to the
 * length before it, so a retry never leaves half a batch behind. The file sink
 * and the file dead-letter target build on it.
 */
import { ConnectorError } from '@dataflow/core';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileError } from './file-errors.js';

/** Makes a directory entry (a created or deleted file) durable. */
export async function syncDirectory(connector: string, path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch (error) {
    throw fileError(connector, `cannot sync directory ${path}`, error);
  } finally {
    await handle?.close();
  }
}

/**
 * A file appended to durably.
 *
 * @example
 * ```ts
 * const file = await DurableAppendFile.open('file', '/data/out.jsonl');
 * await file.append(Buffer.from('{"n":1}\n')); // on disk when it resolves
 * await file.close();
 * ```
 */
export class DurableAppendFile {
  private constructor(
    private readonly connector: string,
    readonly path: string,
    private readonly handle: FileHandle,
    private length: number,
  ) {}

  /** Opens `path` for appending, creating it (durably) when it does not exist. */
  static async open(connector: string, path: string): Promise<DurableAppendFile> {
    let handle: FileHandle;
    try {
      handle = await open(path, 'r+');
    } catch (error) {
      if (!isNotFound(error)) throw fileError(connector, `cannot open ${path}`, error);
      try {
        handle = await open(path, 'w+');
      } catch (createError) {
        throw fileError(connector, `cannot create ${path}`, createError);
      }
      await syncDirectory(connector, dirname(path));
    }
    try {
      const { size } = await handle.stat();
      return new DurableAppendFile(connector, path, handle, size);
    } catch (error) {
      await handle.close();
      throw fileError(connector, `cannot stat ${path}`, error);
    }
  }

  /** The file's length in bytes, including every completed append. */
  get size(): number {
    return this.length;
  }

  /** Appends `data` and syncs it; on failure the file is cut back to its previous length. */
  async append(data: Buffer): Promise<number> {
    const before = this.length;
    try {
      let written = 0;
      while (written < data.length) {
        const { bytesWritten } = await this.handle.write(data, written, data.length - written, before + written);
        written += bytesWritten;
      }
      await this.handle.datasync();
    } catch (error) {
      const failure = fileError(this.connector, `cannot append to ${this.path}`, error);
      try {
        await this.handle.truncate(before);
      } catch (truncateError) {
        throw new ConnectorError(this.connector, `${failure.message}; cutting it back to ${before} bytes also failed, the file may hold a partial write`, {
          retriable: false,
          cause: new AggregateError([error, truncateError]),
        });
      }
      throw failure;
    }
    this.length = before + data.length;
    return this.length;
  }

  /** Cuts the file to `length` bytes (never grows it) and syncs. */
  async truncate(length: number): Promise<void> {
    if (length > this.length) {
      throw new ConnectorError(this.connector, `${this.path} has ${this.length} bytes, fewer than the ${length} to keep`, { retriable: false });
    }
    try {
      await this.handle.truncate(length);
      await this.handle.datasync();
    } catch (error) {
      throw fileError(this.connector, `cannot truncate ${this.path}`, error);
    }
    this.length = length;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT';
}
