import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { PostgresSink, type PostgresSinkDefinition } from '../postgres/postgres-sink.js';
import { CassandraSink, type CassandraSinkDefinition } from './cassandra-sink.js';

const DOC = new URL('../../docs-cassandra-postgres-sinks.md', import.meta.url);

describe('docs-cassandra-postgres-sinks.md', () => {
  it('builds every `json sink` example', async () => {
    const text = await readFile(DOC, 'utf8');
    const blocks = [...text.matchAll(/```json sink\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1] ?? '') as { type: string });
    expect(blocks.map((b) => b.type)).toEqual(['cassandra', 'cassandra', 'cassandra', 'postgres']);
    for (const block of blocks) {
      const sink = block.type === 'cassandra' ? new CassandraSink(block as CassandraSinkDefinition) : new PostgresSink(block as PostgresSinkDefinition);
      expect(sink.type).toBe(block.type);
    }
  });
});
