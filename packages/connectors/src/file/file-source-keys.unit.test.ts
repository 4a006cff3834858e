/**
 * CSV column names are data: a header such as `__proto__`, `constructor` or
 * `toString` becomes an own field of the record like any other, and never
 * changes a prototype.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSource, type FileSourceDefinition } from './file-source.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-file-source-keys-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let files = 0;

async function read(definition: Omit<Extract<FileSourceDefinition, { format: 'csv' }>, 'path'>, content: string): Promise<unknown[]> {
  const path = join(dir, `input-${++files}.csv`);
  await writeFile(path, content);
  const source = new FileSource({ ...definition, path });
  await source.open({ pipelineId: 'p', checkpoint: undefined, signal: new AbortController().signal });
  const batch = await source.poll(10, 0);
  await source.close();
  return batch.records.map((r): unknown => (r.ok ? r.value : r));
}

describe('file source: CSV columns named like Object.prototype members', () => {
  it('keeps a __proto__ column from the header as an own field', async () => {
    const [record] = await read({ type: 'file', format: 'csv' }, '__proto__,constructor,toString\n{"admin":true},c,t\n');
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
    expect(Object.keys(record as object)).toEqual(['__proto__', 'constructor', 'toString']);
    expect(Object.getOwnPropertyDescriptor(record, '__proto__')?.value).toBe('{"admin":true}');
    expect((record as { constructor: unknown }).constructor).toBe('c');
  });

  it('keeps a __proto__ column given in `columns`, with inferred types', async () => {
    const [record] = await read({ type: 'file', format: 'csv', header: false, columns: ['id', '__proto__'], inferTypes: true }, '1,2\n');
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(record, '__proto__')?.value).toBe(2);
    expect(JSON.stringify(record)).toBe('{"id":1,"__proto__":2}');
  });
});
