import type { SourceBatch, SourceOffset, SourceRecord } from '@dataflow/core';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSource, type FileSourceDefinition } from './file-source.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-file-source-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const signal = new AbortController().signal;
let fileCounter = 0;

async function fileWith(content: string): Promise<string> {
  const path = join(dir, `input-${++fileCounter}`);
  await writeFile(path, content);
  return path;
}

async function opened(definition: FileSourceDefinition, checkpoint?: SourceOffset): Promise<FileSource> {
  const source = new FileSource(definition);
  await source.open({ pipelineId: 'p', checkpoint, signal });
  return source;
}

async function drain(source: FileSource, batchSize: number): Promise<{ records: SourceRecord[]; batches: SourceBatch[] }> {
  const records: SourceRecord[] = [];
  const batches: SourceBatch[] = [];
  for (;;) {
    const batch = await source.poll(batchSize, 0);
    batches.push(batch);
    records.push(...batch.records);
    if (batch.done) {
      await source.close();
      return { records, batches };
    }
  }
}

const values = (records: readonly SourceRecord[]): unknown[] => records.map((r) => (r.ok ? r.value : r));

const ORDERS_CSV = [
  'id,name,note',
  '1,Ada,"says ""hi"""',
  '2,"Grace, Rear Admiral","two',
  'lines"',
  '',
  '3,Linus,plain',
  '4,"Ken","a,b"',
].join('\n');

describe('FileSource CSV', () => {
  it('parses a header, quoted fields, escaped quotes and embedded newlines; skips blank lines', async () => {
    const path = await fileWith(`${ORDERS_CSV}\n`);
    const { records, batches } = await drain(await opened({ type: 'file', path, format: 'csv' }), 10);
    expect(values(records)).toEqual([
      { id: '1', name: 'Ada', note: 'says "hi"' },
      { id: '2', name: 'Grace, Rear Admiral', note: 'two\nlines' },
      { id: '3', name: 'Linus', note: 'plain' },
      { id: '4', name: 'Ken', note: 'a,b' },
    ]);
    expect(batches.at(-1)?.offset).toEqual({ line: 7, byte: Buffer.byteLength(`${ORDERS_CSV}\n`) });
  });

  it('offsets end after the last record of a batch, and resuming from any offset continues with the next record', async () => {
    const path = await fileWith(ORDERS_CSV);
    const all = values((await drain(await opened({ type: 'file', path, format: 'csv' }), 100)).records);
    const first = await opened({ type: 'file', path, format: 'csv' });
    const one = await first.poll(1, 0);
    const two = await first.poll(1, 0);
    await first.close();
    expect([one.offset, two.offset]).toEqual([
      { line: 2, byte: Buffer.byteLength('id,name,note\n1,Ada,"says ""hi"""\n') },
      { line: 4, byte: Buffer.byteLength('id,name,note\n1,Ada,"says ""hi"""\n2,"Grace, Rear Admiral","two\nlines"\n') },
    ]);
    for (const [checkpoint, skipped] of [[one.offset, 1], [two.offset, 2]] as const) {
      const rest = await drain(await opened({ type: 'file', path, format: 'csv' }, checkpoint), 1);
      expect(values(rest.records)).toEqual(all.slice(skipped));
    }
  });

  it('resumes from a checkpoint that only carries a line number', async () => {
    const path = await fileWith(ORDERS_CSV);
    const rest = await drain(await opened({ type: 'file', path, format: 'csv' }, 4), 10);
    expect(values(rest.records).map((v) => (v as { id: string }).id)).toEqual(['3', '4']);
  });

  it('uses explicit columns, with or without a header row, and infers types on request', async () => {
    const path = await fileWith('a;b;c\r\n1;true;\r\n-2.5e1;007;x\r\n');
    const withHeader = await drain(await opened({ type: 'file', path, format: 'csv', delimiter: ';', columns: ['x', 'y', 'z'], inferTypes: true }), 10);
    expect(values(withHeader.records)).toEqual([
      { x: 1, y: true, z: null },
      { x: -25, y: '007', z: 'x' },
    ]);
    const noHeader = await drain(await opened({ type: 'file', path, format: 'csv', delimiter: ';', header: false }), 10);
    expect(values(noHeader.records)[0]).toEqual({ column1: 'a', column2: 'b', column3: 'c' });
  });

  it('turns rows with the wrong field count, text after a closing quote and an unterminated quote into failed records', async () => {
    const path = await fileWith('a,b\n1,2,3\n"x"y,2\n5,6\n7,"never closed\nmore\n');
    const { records } = await drain(await opened({ type: 'file', path, format: 'csv' }), 10);
    expect(records).toEqual([
      { ok: false, raw: '1,2,3', reason: 'expected 2 fields, found 3' },
      { ok: false, raw: '"x"y,2', reason: 'unexpected "y" after a closing quote' },
      { ok: true, value: { a: '5', b: '6' } },
      { ok: false, raw: '7,"never closed\nmore', reason: 'unterminated quoted field at end of file' },
    ]);
  });

  it('strips a UTF-8 byte order mark from the header, also when resuming', async () => {
    const path = await fileWith('\uFEFFname,n\nä,1\nö,2\n');
    const source = await opened({ type: 'file', path, format: 'csv' });
    const first = await source.poll(1, 0);
    await source.close();
    expect(values(first.records)).toEqual([{ name: 'ä', n: '1' }]);
    const rest = await drain(await opened({ type: 'file', path, format: 'csv' }, first.offset), 10);
    expect(values(rest.records)).toEqual([{ name: 'ö', n: '2' }]);
  });
});

describe('FileSource NDJSON and text', () => {
  it('keeps malformed NDJSON lines as failed records with the raw text', async () => {
    const content = '{"a":1}\n\n{"a":\n[1,2]\n{"a":2}';
    const path = await fileWith(content);
    const { records, batches } = await drain(await opened({ type: 'file', path, format: 'ndjson' }), 10);
    expect(records[0]).toEqual({ ok: true, value: { a: 1 } });
    expect(records[1]).toMatchObject({ ok: false, raw: '{"a":' });
    expect(records[2]).toEqual({ ok: false, raw: '[1,2]', reason: 'not a JSON object' });
    expect(records[3]).toEqual({ ok: true, value: { a: 2 } });
    expect(batches.at(-1)?.offset).toEqual({ line: 5, byte: Buffer.byteLength(content) });
  });

  it('keeps NDJSON lines nested deeper than 64 levels or over 1 MiB as failed records with the reason and the line, and reads on', async () => {
    const deep = `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`;
    const big = JSON.stringify({ id: 2, big: 'x'.repeat(2 * 1024 * 1024) });
    const path = await fileWith([deep, big, '{"id":3}'].join('\n'));
    const { records } = await drain(await opened({ type: 'file', path, format: 'ndjson' }), 10);
    expect(records).toHaveLength(3);
    expect(records[0]).toMatchObject({ ok: false, raw: deep, reason: expect.stringMatching(/^a\.a\.a.*: The record is nested deeper than 64 levels$/) as string });
    expect(records[1]).toMatchObject({ ok: false, raw: big, reason: expect.stringMatching(/^big: The record is larger than 1048576 bytes/) as string });
    expect(records[2]).toEqual({ ok: true, value: { id: 3 } });
  });

  it('emits one record per text line, empty lines included', async () => {
    const path = await fileWith('one\n\nthree\n');
    const source = await opened({ type: 'file', path, format: 'text' });
    const first = await source.poll(2, 0);
    await source.close();
    expect([values(first.records), first.offset, first.done]).toEqual([[{ line: 'one' }, { line: '' }], { line: 2, byte: 5 }, false]);
    const rest = await drain(await opened({ type: 'file', path, format: 'text' }, first.offset), 2);
    expect(values(rest.records)).toEqual([{ line: 'three' }]);
  });

  it('reads 200 000 lines in batches, resumes mid-file, and holds every line exactly once', async () => {
    const lines = Array.from({ length: 200_000 }, (_, i) => JSON.stringify({ n: i, text: `line ${i}` }));
    const path = await fileWith(`${lines.join('\n')}\n`);
    const started = performance.now();
    const source = await opened({ type: 'file', path, format: 'ndjson' });
    const seen: number[] = [];
    let offset: SourceOffset = null;
    for (let i = 0; i < 100; i++) {
      const batch = await source.poll(1000, 0);
      for (const r of batch.records) if (r.ok) seen.push(r.value['n'] as number);
      offset = batch.offset;
    }
    await source.close();
    const rest = await drain(await opened({ type: 'file', path, format: 'ndjson' }, offset), 1000);
    for (const r of rest.records) if (r.ok) seen.push(r.value['n'] as number);
    console.info(`file source: 200000 NDJSON lines in ${(performance.now() - started).toFixed(0)} ms`);
    expect(offset).toEqual({ line: 100_000, byte: Buffer.byteLength(`${lines.slice(0, 100_000).join('\n')}\n`) });
    expect(seen).toEqual(lines.map((_, i) => i));
  });
});

describe('FileSource failures', () => {
  it('fails permanently for a missing file, a checkpoint beyond the end and one inside a line', async () => {
    await expect(opened({ type: 'file', path: join(dir, 'missing'), format: 'text' })).rejects.toMatchObject({
      tag: 'connector/failed',
      retriable: false,
    });
    const path = await fileWith('abc\ndef\n');
    await expect(opened({ type: 'file', path, format: 'text' }, { line: 9, byte: 99 })).rejects.toThrow(/replaced or truncated/);
    await expect(opened({ type: 'file', path, format: 'text' }, { line: 1, byte: 2 })).rejects.toThrow(/not at a line start/);
    await expect(opened({ type: 'file', path, format: 'text' }, 'x')).rejects.toThrow(/neither/);
  });

  it('rejects invalid options with field paths', () => {
    expect(() => new FileSource({ type: 'file', path: '', format: 'csv', delimiter: ';;' })).toThrow(/path: .*; delimiter: /);
  });
});
