/**
 * The embedded store survives its process: events and snapshots written by a
 * child process (closing cleanly or just exiting) are recovered by a new
 * PGlite instance on the same data directory.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NoOffset } from '@dataflow/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createPglitePersistence } from './pglite-persistence.js';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./pglite-recovery-child.test.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');
const dirs: string[] = [];

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dataflow-pglite-recovery-'));
  dirs.push(dir);
  return dir;
}

async function writeInChild(dir: string, persistenceId: string, events: number, ending: 'close' | 'exit'): Promise<number> {
  const { stdout } = await run(process.execPath, ['--conditions=@dataflow/source', '--import', tsx, child, dir, persistenceId, String(events), ending], {
    timeout: 60_000,
  });
  return (JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { highest: number }).highest;
}

afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

describe('PGlite recovery', () => {
  it('reopens a data directory in the same process and continues the history', { timeout: 60_000 }, async () => {
    const dir = await dataDir();
    const first = await createPglitePersistence({ dataDir: dir });
    await first.journal.append('p-1', [{ eventType: 'A', payload: 1, tags: ['t'] }, { eventType: 'B', payload: 2, tags: ['t'] }], { expectedSequenceNr: 0, writerId: 'one' });
    await first.close();
    const second = await createPglitePersistence({ dataDir: dir });
    try {
      expect(await second.journal.highestSequenceNr('p-1')).toBe(2);
      await second.journal.append('p-1', [{ eventType: 'C', payload: 3, tags: ['t'] }], { expectedSequenceNr: 2, writerId: 'two' });
      const events = [];
      for await (const e of second.queries.eventsByTag('t', NoOffset)) events.push([e.sequenceNr, e.payload, e.writerId]);
      expect(events).toEqual([[1, 1, 'one'], [2, 2, 'one'], [3, 3, 'two']]);
    } finally {
      await second.close();
    }
  });

  it.each(['close', 'exit'] as const)('recovers what a child process wrote before it ended with %s', { timeout: 120_000 }, async (ending) => {
    const dir = await dataDir();
    expect(await writeInChild(dir, 'pipeline-1', 95, ending)).toBe(95);
    // A second process continues the same history, then this one reads it all.
    expect(await writeInChild(dir, 'pipeline-1', 5, ending)).toBe(100);
    const recovered = await createPglitePersistence({ dataDir: dir });
    try {
      expect(await recovered.journal.highestSequenceNr('pipeline-1')).toBe(100);
      const payloads: unknown[] = [];
      for await (const e of recovered.journal.replay('pipeline-1', 1)) payloads.push(e.payload);
      expect(payloads.map((p) => (p as { n: number }).n)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      expect([...(payloads[0] as { bytes: Uint8Array }).bytes]).toEqual([0, 255]);
      expect(await recovered.snapshots.loadLatest('pipeline-1')).toMatchObject({ metadata: { sequenceNr: 100 }, state: { total: 100 } });
    } finally {
      await recovered.close();
    }
  });
});
