import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cassandraMigrations, journalSchema, journalSchemaFile, KEYSPACE_PLACEHOLDER, migrationStatements } from './cassandra-schema.js';

const read = (relative: string): string => readFileSync(new URL(relative, import.meta.url), 'utf8');

describe('journal schema', () => {
  it('ships CQL files for cqlsh that match the migrations, with their records', async () => {
    expect(read('../../cql/001-journal.cql')).toBe(await journalSchemaFile(KEYSPACE_PLACEHOLDER));
    expect(read('../../../../docker/cassandra/init/001-journal.cql')).toBe(await journalSchemaFile('dataflow'));
    const file = await journalSchemaFile('dataflow');
    for (const migration of await cassandraMigrations()) {
      expect(file).toContain(`VALUES (${migration.version}, '${migration.name}', '${migration.checksum}', toTimestamp(now()))`);
    }
  });

  it('numbers the migrations from 1 without gaps, the journal first and the recorded settings after it', async () => {
    expect((await cassandraMigrations()).map((m) => m.fileName)).toEqual(['0001-journal.cql', '0002-journal-settings.cql']);
  });

  it('creates every table idempotently, snapshots newest first', async () => {
    const statements = await journalSchema('dataflow');
    for (const table of ['schema_migrations', 'messages', 'tag_views', 'tag_buckets', 'all_persistence_ids', 'metadata', 'snapshots', 'journal_settings']) {
      expect(statements.some((s) => s.startsWith(`CREATE TABLE IF NOT EXISTS dataflow.${table} (`))).toBe(true);
    }
    expect(statements.every((s) => s.includes('IF NOT EXISTS'))).toBe(true);
    expect(statements.find((s) => s.includes('.snapshots'))).toContain('CLUSTERING ORDER BY (sequence_nr DESC)');
    expect(statements.find((s) => s.includes('.messages'))).toContain('PRIMARY KEY ((persistence_id, partition_nr), sequence_nr)');
    const [journal] = await cassandraMigrations();
    expect(journal === undefined ? [] : migrationStatements(journal, 'ks').every((s) => !s.includes('${keyspace}') && !s.includes('--'))).toBe(true);
  });

  it('renders network topology replication', async () => {
    const [keyspace] = await journalSchema('prod', { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3, dc2: 3 } });
    expect(keyspace).toContain("{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3}");
  });

  it('refuses keyspace names that are not plain identifiers', async () => {
    for (const name of ['', '1abc', 'a-b', 'ks; DROP KEYSPACE x', 'x'.repeat(49)]) {
      await expect(journalSchema(name)).rejects.toThrow(RangeError);
    }
  });
});
