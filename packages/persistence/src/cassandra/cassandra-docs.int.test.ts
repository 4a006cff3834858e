import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isConcurrencyConflict, NoOffset, type EventEnvelope } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Client } from 'cassandra-driver';
import { createCassandraPersistence } from '../index.js';

/** The lines between `// docs:start name` and `// docs:end` of this file, dedented. */
function snippet(name: string): string {
  const source = readFileSync(new URL(import.meta.url), 'utf8').split('\n');
  const start = source.findIndex((line) => line.trim() === `// docs:start ${name}`);
  const end = source.findIndex((line, i) => i > start && line.trim() === '// docs:end');
  const lines = source.slice(start + 1, end);
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

// Keeps the quick start of docs-cassandra.md compiled, run and in sync with the code.
describe('docs-cassandra.md', () => {
  it('has a quick start that runs as written', { timeout: 60_000 }, async () => {
    const services = serviceSettings();
    const contactPoints = [...services.cassandraContactPoints];
    const localDataCenter = services.cassandraLocalDataCenter;
    const keyspace = testNamespace(import.meta.url);
    const seen: EventEnvelope[] = [];
    try {
      // docs:start quick-start
      const persistence = await createCassandraPersistence({
        contactPoints,
        localDataCenter,
        keyspace,
        autoCreate: true, // development only: production runs `dataflow migrate --journal cassandra`
      });
      const { journal, queries } = persistence;

      await journal.append('pipeline-orders',
        [{ eventType: 'PipelineCreated', payload: { name: 'orders' }, tags: ['pipeline-events'] }],
        { expectedSequenceNr: 0, writerId: 'node-1' });

      // A second writer with a stale view is refused when it writes.
      await journal
        .append('pipeline-orders', [{ eventType: 'PipelineStarted', payload: {} }], { expectedSequenceNr: 0, writerId: 'node-2' })
        .catch((error: unknown) => {
          if (!isConcurrencyConflict(error)) throw error;
        });

      // Current query: every event stored when it started, then it ends.
      for await (const envelope of queries.eventsByTag('pipeline-events', NoOffset)) {
        seen.push(envelope); // envelope.offset resumes the stream after this event
      }
      await persistence.close();
      // docs:end
    } finally {
      const client = new Client({ contactPoints, localDataCenter });
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
      await client.shutdown();
    }
    expect(seen.map((e) => [e.persistenceId, e.sequenceNr, e.eventType])).toEqual([['pipeline-orders', 1, 'PipelineCreated']]);
    const docs = readFileSync(new URL('../../docs-cassandra.md', import.meta.url), 'utf8');
    expect(docs).toContain(snippet('quick-start'));
  });
});
