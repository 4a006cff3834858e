/** The example of docs-postgres.md, run as written (keep the two in sync). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NoOffset } from '@dataflow/core';
import { expect, it } from 'vitest';
import { createPglitePersistence } from './pglite-persistence.js'; // users: from '@dataflow/persistence'

it('runs the docs-postgres.md example', { timeout: 60_000 }, async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'dataflow-docs-'));
  try {
    // --- example start
    const persistence = await createPglitePersistence({ dataDir });
    const { journal, queries, snapshots } = persistence;

    await journal.append(
      'pipeline-orders',
      [
        { eventType: 'PipelineCreated', payload: { name: 'orders' }, tags: ['pipeline-events', 'pipeline-lifecycle'] },
        { eventType: 'PipelineStarted', payload: {}, tags: ['pipeline-events', 'pipeline-lifecycle'] },
      ],
      { expectedSequenceNr: 0, writerId: 'node-1' },
    );
    await snapshots.save({ persistenceId: 'pipeline-orders', sequenceNr: 2, timestamp: Date.now() }, { status: 'running' });

    const seen: string[] = [];
    for await (const envelope of queries.eventsByTag('pipeline-lifecycle', NoOffset)) {
      seen.push(`${envelope.eventType}@${JSON.stringify(envelope.offset)}`);
    }
    await persistence.close();
    // --- example end
    expect(seen).toEqual(['PipelineCreated@{"kind":"sequence","value":1}', 'PipelineStarted@{"kind":"sequence","value":2}']);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
