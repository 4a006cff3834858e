import type { DeadLetter } from '@dataflow/core';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDeadLetterTarget } from './file-dead-letter-target.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-dlq-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const letter = (n: number): DeadLetter => ({
  pipelineId: 'orders',
  stage: 'transform',
  stageName: 'transforms[1]:filter',
  error: { message: `bad record ${n}`, tag: 'transform/failed', retriable: false },
  attempt: 1,
  payload: { n, nested: { text: 'line\nbreak' } },
  batchId: `b${n}`,
  failedAt: Date.UTC(2025, 0, 1, 0, 0, n),
});

describe('FileDeadLetterTarget', () => {
  it('appends one JSON line per letter that reads back as the letter, across reopenings', async () => {
    const path = join(dir, 'nested', 'dead-letters.jsonl');
    const target = new FileDeadLetterTarget({ type: 'file', path });
    await target.open();
    await target.send([letter(1), letter(2)]);
    await target.send([]);
    await target.close();
    const reopened = new FileDeadLetterTarget({ type: 'file', path });
    await reopened.open();
    await reopened.send([letter(3)]);
    await reopened.close();
    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual([letter(1), letter(2), letter(3)]);
  });

  it('lets targets of several pipelines share one file without writing over each other', async () => {
    const path = join(dir, 'shared.jsonl');
    const a = new FileDeadLetterTarget({ type: 'file', path });
    const b = new FileDeadLetterTarget({ type: 'file', path: join(dir, '.', 'shared.jsonl') });
    await Promise.all([a.open(), b.open()]);
    const sends = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? a : b).send([letter(i), letter(1000 + i)]));
    await Promise.all([...sends, a.close()]);
    await b.send([letter(2000)]);
    await b.close();
    const again = new FileDeadLetterTarget({ type: 'file', path });
    await again.open();
    await again.send([letter(3000)]);
    await again.close();
    const lines = (await readFile(path, 'utf8')).trimEnd().split('\n');
    const ns = lines.map((line) => ((JSON.parse(line) as DeadLetter).payload as { n: number }).n).sort((x, y) => x - y);
    expect(ns).toEqual([...Array.from({ length: 50 }, (_, i) => i), ...Array.from({ length: 50 }, (_, i) => 1000 + i), 2000, 3000]);
  });

  it('refuses to send before open and reports a file it cannot create', async () => {
    const target = new FileDeadLetterTarget({ type: 'file', path: join(dir, 'x.jsonl') });
    await expect(target.send([letter(1)])).rejects.toMatchObject({ tag: 'connector/failed', retriable: false });
    const blocked = new FileDeadLetterTarget({ type: 'file', path: join(dir, 'x.jsonl', 'under-a-file.jsonl') });
    await target.open();
    await target.close();
    await expect(blocked.open()).rejects.toMatchObject({ tag: 'connector/failed' });
  });
});
