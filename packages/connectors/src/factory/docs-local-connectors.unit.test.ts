import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { createDeadLetterTarget, createSink, createSource, type ConnectorDefinition } from './create-connector.js';

const docs = await readFile(new URL('../../docs-local-connectors.md', import.meta.url), 'utf8');
const blocks = [...docs.matchAll(/```json (source|sink|dead-letter)\n([\s\S]*?)```/g)].map((m) => ({
  kind: m[1] as 'source' | 'sink' | 'dead-letter',
  definition: JSON.parse(m[2] ?? '') as ConnectorDefinition,
}));
const create = { source: createSource, sink: createSink, 'dead-letter': createDeadLetterTarget };

describe('docs-local-connectors.md', () => {
  it('has examples of every kind', () => {
    expect(new Set(blocks.map((b) => b.kind))).toEqual(new Set(['source', 'sink', 'dead-letter']));
  });

  it.each(blocks.map((b) => [b.kind, b.definition.type, b] as const))('builds the %s example of type %s', (_kind, type, block) => {
    expect(create[block.kind](block.definition).type).toBe(type);
  });
});
