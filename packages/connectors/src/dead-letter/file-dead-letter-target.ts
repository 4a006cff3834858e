/**
 * The file dead-letter target: one JSON line per letter, appended and synced
 * before `send` returns, all letters of a call or none (a failed append is cut
 * back). The line is the `DeadLetter` as is, so a replay tool reads it back
 * with `JSON.parse`. Targets of one process that name the same file (several
 * pipelines sharing a dead-letter file) share one writer and queue their
 * appends, so they never write over each other.
 */
import { ConnectorError, type DeadLetter, type DeadLetterTarget } from '@dataflow/core';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';
import { DurableAppendFile } from '../file/durable-append-file.js';
import { fileError } from '../file/file-errors.js';

/** One open dead-letter file, shared by the targets of this process that name it. */
interface SharedFile {
  refs: number;
  /** The queue of appends: each starts after the previous one settled. */
  tail: Promise<void>;
  readonly file: Promise<DurableAppendFile>;
}

const sharedFiles = new Map<string, SharedFile>();
/** A file being closed is reopened only after its last append and close, so a new writer never sees a stale length. */
const closingFiles = new Map<string, Promise<void>>();

function acquire(path: string): SharedFile {
  let shared = sharedFiles.get(path);
  if (shared === undefined) {
    const previous = closingFiles.get(path) ?? Promise.resolve();
    shared = { refs: 0, tail: Promise.resolve(), file: previous.then(() => DurableAppendFile.open('file', path)) };
    sharedFiles.set(path, shared);
  }
  shared.refs++;
  return shared;
}

async function release(path: string, shared: SharedFile): Promise<void> {
  shared.refs--;
  if (shared.refs > 0) return;
  sharedFiles.delete(path);
  const closing = shared.tail.then(async () => {
    // A file that failed to open was reported to the opener; there is nothing to close.
    const file = await shared.file.catch(() => undefined);
    await file?.close();
  });
  closingFiles.set(path, closing);
  try {
    await closing;
  } finally {
    if (closingFiles.get(path) === closing) closingFiles.delete(path);
  }
}

/**
 * Schema of a file dead-letter target definition.
 *
 * @example
 * ```ts
 * fileDeadLetterDefinitionSchema.parse({ type: 'file', path: 'data/dead-letters.jsonl' });
 * ```
 */
export const fileDeadLetterDefinitionSchema = z.strictObject({
  type: z.literal('file'),
  path: z.string().min(1),
});

/** A file dead-letter target definition as written by a user. */
export type FileDeadLetterDefinition = z.input<typeof fileDeadLetterDefinitionSchema>;

/**
 * Appends dead letters to a JSON Lines file.
 *
 * @example
 * ```ts
 * const target = new FileDeadLetterTarget({ type: 'file', path: 'dead-letters.jsonl' });
 * await target.open();
 * await target.send([{ pipelineId: 'p1', stage: 'source', stageName: 'file', error: { message: 'bad JSON', retriable: false },
 *   attempt: 1, payload: '{"a":', failedAt: Date.now() }]);
 * ```
 */
export class FileDeadLetterTarget implements DeadLetterTarget {
  readonly type = 'file';
  private readonly definition: z.output<typeof fileDeadLetterDefinitionSchema>;
  private shared: { readonly path: string; readonly file: SharedFile } | undefined;

  constructor(definition: FileDeadLetterDefinition) {
    this.definition = parseDefinition('file', fileDeadLetterDefinitionSchema, definition);
  }

  async open(): Promise<void> {
    await this.close();
    const { path } = this.definition;
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch (error) {
      throw fileError('file', `cannot create the directory of ${path}`, error);
    }
    const key = resolve(path);
    const shared = acquire(key);
    try {
      await shared.file;
    } catch (error) {
      await release(key, shared);
      throw error;
    }
    this.shared = { path: key, file: shared };
  }

  async send(letters: readonly DeadLetter[]): Promise<void> {
    const shared = this.shared?.file;
    if (shared === undefined) throw new ConnectorError('file', 'send before open', { retriable: false });
    if (letters.length === 0) return;
    let text = '';
    for (const letter of letters) text += `${JSON.stringify(letter)}\n`;
    const data = Buffer.from(text);
    const append = shared.tail.then(async () => {
      await (await shared.file).append(data);
    });
    // The queue only orders appends; each failure is reported to its own sender through `append`.
    shared.tail = append.catch(() => undefined);
    await append;
  }

  async close(): Promise<void> {
    const shared = this.shared;
    this.shared = undefined;
    if (shared !== undefined) await release(shared.path, shared.file);
  }
}
