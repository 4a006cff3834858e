/**
 * The file dead-letter target: one JSON line per letter, appended and synced
 * before `send` returns, all letters of a call or none (a failed append is cut
 * back). The line is the `DeadLetter` as is, so a replay tool reads it back
 * with `JSON.parse`.
 */
import { ConnectorError, type DeadLetter, type DeadLetterTarget } from '@dataflow/core';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as z from 'zod';
import { parseDefinition } from '../factory/parse-definition.js';
import { DurableAppendFile } from '../file/durable-append-file.js';
import { fileError } from '../file/file-errors.js';

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
  private file: DurableAppendFile | undefined;

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
    this.file = await DurableAppendFile.open('file', path);
  }

  async send(letters: readonly DeadLetter[]): Promise<void> {
    if (this.file === undefined) throw new ConnectorError('file', 'send before open', { retriable: false });
    if (letters.length === 0) return;
    let text = '';
    for (const letter of letters) text += `${JSON.stringify(letter)}\n`;
    await this.file.append(Buffer.from(text));
  }

  async close(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    await file?.close();
  }
}
