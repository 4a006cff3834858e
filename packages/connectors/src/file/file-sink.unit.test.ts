import type { DataRecord, SinkPosition } from '@dataflow/core';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSink, type FileSinkDefinition } from './file-sink.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-file-sink-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const signal = new AbortController().signal;
let counter = 0;
const freshPath = (name: string): string => join(dir, `run-${++counter}`, name);

async function opened(definition: FileSinkDefinition, checkpoint?: SinkPosition): Promise<FileSink> {
  const sink = new FileSink(definition);
  await sink.open({ pipelineId: 'p', checkpoint, signal });
  return sink;
}

const batch = (n: number, size = 2): { batchId: string; records: DataRecord[] } => ({
  batchId: `b${n}`,
  records: Array.from({ length: size }, (_, i) => ({ batch: n, i, text: 'x'.repeat(10) })),
});
const jsonl = (...batches: number[]): string =>
  batches.flatMap((n) => batch(n).records.map((r) => `${JSON.stringify(r)}\n`)).join('');

describe('FileSink exactly-once across crashes', () => {
  it('cuts what was written after the checkpoint, so the re-driven batch is written once', async () => {
    const path = freshPath('out.jsonl');
    const sink = await opened({ type: 'file', path, format: 'jsonl' });
    await sink.write(batch(1));
    const { position: checkpoint } = await sink.write(batch(2));
    await sink.write(batch(3));
    await sink.close(); // crash before batch 3's checkpoint
    expect(checkpoint).toEqual({ file: 'out.jsonl', bytes: Buffer.byteLength(jsonl(1, 2)), index: 0 });

    const restarted = await opened({ type: 'file', path, format: 'jsonl' }, checkpoint);
    expect(await readFile(path, 'utf8')).toBe(jsonl(1, 2));
    const { position } = await restarted.write(batch(3));
    await restarted.close();
    expect(await readFile(path, 'utf8')).toBe(jsonl(1, 2, 3));
    expect(position).toEqual({ file: 'out.jsonl', bytes: Buffer.byteLength(jsonl(1, 2, 3)), index: 0 });
  });

  it('rotates by size without splitting a batch, and deletes files rotated after the checkpoint', async () => {
    const path = freshPath('out.jsonl');
    const batchBytes = Buffer.byteLength(jsonl(1));
    const definition: FileSinkDefinition = { type: 'file', path, format: 'jsonl', maxBytes: 2 * batchBytes };
    const sink = await opened(definition);
    const positions: (SinkPosition | undefined)[] = [];
    for (const n of [1, 2, 3, 4, 5]) positions.push((await sink.write(batch(n))).position);
    await sink.close();
    expect(positions.map((p) => (p as { index: number }).index)).toEqual([0, 0, 1, 1, 2]);
    expect(positions[2]).toEqual({ file: 'out.jsonl.1', bytes: batchBytes, index: 1 });
    expect((await readdir(join(path, '..'))).sort()).toEqual(['out.jsonl', 'out.jsonl.1', 'out.jsonl.2']);

    // Checkpoint after batch 2, the last of file 0: files 1 and 2 go, batches 3-5 are written again.
    const restarted = await opened(definition, positions[1]);
    expect((await readdir(join(path, '..'))).sort()).toEqual(['out.jsonl']);
    for (const n of [3, 4, 5]) await restarted.write(batch(n));
    await restarted.close();
    expect(await readFile(path, 'utf8')).toBe(jsonl(1, 2));
    expect(await readFile(`${path}.1`, 'utf8')).toBe(jsonl(3, 4));
    expect(await readFile(`${path}.2`, 'utf8')).toBe(jsonl(5));

    // Checkpoint inside file 1 (after batch 3): file 1 is cut back, file 2 deleted.
    const again = await opened(definition, positions[2]);
    await again.write(batch(4));
    await again.close();
    expect(await readFile(`${path}.1`, 'utf8')).toBe(jsonl(3, 4));
    expect((await readdir(join(path, '..'))).sort()).toEqual(['out.jsonl', 'out.jsonl.1']);
  });

  it('starts empty without a checkpoint: leftovers of a run that never checkpointed are removed', async () => {
    const path = freshPath('out.jsonl');
    const first = await opened({ type: 'file', path, format: 'jsonl', maxBytes: 10 });
    await first.write(batch(1));
    await first.write(batch(2));
    await first.close();
    const second = await opened({ type: 'file', path, format: 'jsonl', maxBytes: 10 });
    await second.write(batch(1));
    await second.close();
    expect(await readdir(join(path, '..'))).toEqual(['out.jsonl']);
    expect(await readFile(path, 'utf8')).toBe(jsonl(1));
  });

  it('fails permanently when the file is shorter than the checkpoint or the position is malformed', async () => {
    const path = freshPath('out.jsonl');
    const sink = await opened({ type: 'file', path, format: 'jsonl' });
    const { position } = await sink.write(batch(1));
    await sink.close();
    await writeFile(path, 'cut');
    await expect(opened({ type: 'file', path, format: 'jsonl' }, position)).rejects.toMatchObject({ tag: 'connector/failed', retriable: false });
    await expect(opened({ type: 'file', path, format: 'jsonl' }, { file: 'x', bytes: 10, index: 3 })).rejects.toThrow(/missing/);
    await expect(opened({ type: 'file', path, format: 'jsonl' }, 17)).rejects.toThrow(/not a file sink position/);
  });
});

describe('FileSink ownership', () => {
  it('refuses a second sink on the same path while the first is open', async () => {
    const path = freshPath('out.jsonl');
    const first = await opened({ type: 'file', path, format: 'jsonl' });
    const second = new FileSink({ type: 'file', path: join(path, '..', '.', 'out.jsonl'), format: 'jsonl' });
    await expect(second.open({ pipelineId: 'other', checkpoint: undefined, signal })).rejects.toThrow(/already written by pipeline p/);
    await first.close();
    await second.open({ pipelineId: 'other', checkpoint: undefined, signal });
    await second.close();
  });
});

describe('FileSink CSV', () => {
  it('writes the header once per file, quotes where needed, and keeps it when continuing a file', async () => {
    const path = freshPath('out.csv');
    const definition: FileSinkDefinition = { type: 'file', path, format: 'csv', maxBytes: 60 };
    const sink = await opened(definition);
    const { position } = await sink.write({ batchId: 'a', records: [{ id: 1, name: 'Ada, Countess', tags: ['x'] }] });
    await sink.close();
    const restarted = await opened(definition, position);
    await restarted.write({ batchId: 'b', records: [{ id: 2, name: 'say "hi"', tags: null }] });
    const { position: rotated } = await restarted.write({ batchId: 'c', records: [{ id: 3, name: 'Linus' }] });
    await restarted.close();
    expect(await readFile(path, 'utf8')).toBe('id,name,tags\n1,"Ada, Countess","[""x""]"\n2,"say ""hi""",\n');
    expect(rotated).toMatchObject({ file: 'out.csv.1', index: 1 });
    expect(await readFile(`${path}.1`, 'utf8')).toBe('id,name,tags\n3,Linus,\n');
  });

  it('rejects records with fields outside inferred columns, and projects onto explicit ones', async () => {
    const inferred = freshPath('inferred.csv');
    const sink = await opened({ type: 'file', path: inferred, format: 'csv', delimiter: ';' });
    const result = await sink.write({ batchId: 'a', records: [{ a: 1 }, { a: 2, b: 3 }, { a: 4 }] });
    await sink.close();
    expect(result.rejected).toEqual([{ index: 1, reason: 'fields not in the CSV header: b' }]);
    expect(await readFile(inferred, 'utf8')).toBe('a\n1\n4\n');

    const explicit = freshPath('explicit.csv');
    const projecting = await opened({ type: 'file', path: explicit, format: 'csv', columns: ['b', 'a'] });
    const projected = await projecting.write({ batchId: 'a', records: [{ a: 1, b: 2, c: 3 }] });
    await projecting.close();
    expect(projected.rejected).toBeUndefined();
    expect(await readFile(explicit, 'utf8')).toBe('b,a\n2,1\n');
  });
});
