import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { journalSchema, journalSchemaFile, KEYSPACE_PLACEHOLDER } from './cassandra-schema.js';

const read = (relative: string): string => readFileSync(new URL(relative, import.meta.url), 'utf8');

describe('journal schema', () => {
  it('ships CQL files that match the statements autoCreate runs', () => {
    expect(read('../../cql/001-journal.cql')).toBe(journalSchemaFile(KEYSPACE_PLACEHOLDER));
    expect(read('../../../../docker/cassandra/init/001-journal.cql')).toBe(journalSchemaFile('dataflow'));
  });

  it('creates every table idempotently, snapshots newest first', () => {
    const statements = journalSchema('dataflow');
    for (const table of ['messages', 'tag_views', 'tag_buckets', 'all_persistence_ids', 'metadata', 'snapshots']) {
      expect(statements.some((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS dataflow.${table} (`))).toBe(true);
    }
    expect(statements.every((s) => s.includes('IF NOT EXISTS'))).toBe(true);
    expect(statements.find((s) => s.includes('.snapshots'))).toContain('CLUSTERING ORDER BY (sequence_nr DESC)');
    expect(statements.find((s) => s.includes('.messages'))).toContain('PRIMARY KEY ((persistence_id, partition_nr), sequence_nr)');
  });

  it('renders network topology replication', () => {
    const [keyspace] = journalSchema('prod', { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3, dc2: 3 } });
    expect(keyspace).toContain("{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3}");
  });

  it('refuses keyspace names that are not plain identifiers', () => {
    for (const name of ['', '1abc', 'a-b', 'ks; DROP KEYSPACE x', 'x'.repeat(49)]) {
      expect(() => journalSchema(name)).toThrow(RangeError);
    }
  });
});
