import { describe, expect, it } from 'vitest';
import { POSTGRES_MIGRATE_COMMAND, postgresMigrations, quoteSchema, schemaStatements } from './postgres-schema.js';

describe('postgres schema DDL', () => {
  it('fills the psql schema variable of the shipped .sql file into every statement', async () => {
    const statements = await schemaStatements('tenant_a');
    expect(statements[0]).toBe('CREATE SCHEMA IF NOT EXISTS "tenant_a"');
    expect(statements.some((s) => s.startsWith('CREATE TABLE IF NOT EXISTS "tenant_a".event_journal'))).toBe(true);
    expect(statements.some((s) => s.startsWith('CREATE TABLE IF NOT EXISTS "tenant_a".event_tag'))).toBe(true);
    expect(statements.some((s) => s.startsWith('CREATE TABLE IF NOT EXISTS "tenant_a".snapshot'))).toBe(true);
    for (const s of statements) {
      expect(s).not.toContain(':"schema"');
      expect(s).not.toContain('--');
    }
  });

  it('keeps each append function whole although its body holds semicolons', async () => {
    const statements = await schemaStatements('tenant_a');
    const fns = statements.filter((s) => s.includes('append_events'));
    // Migration 1 creates it, migration 2 replaces it (per-id locks).
    expect(fns).toHaveLength(2);
    for (const fn of fns) {
      expect(fn).toMatch(/^CREATE OR REPLACE FUNCTION "tenant_a"\.append_events\(/);
      expect(fn).toContain('SET search_path = "tenant_a", pg_temp');
      expect(fn).toMatch(/AS \$\$[\s\S]*;[\s\S]*\$\$$/);
    }
    expect(fns[1]).not.toContain('pg_advisory_xact_lock(hashtext(');
  });

  it('ships numbered migrations 1, 2, ... and names the command that applies them', async () => {
    const migrations = await postgresMigrations();
    expect(migrations.map((m) => [m.version, m.fileName])).toEqual([
      [1, '0001-journal.sql'],
      [2, '0002-parallel-appends.sql'],
      [3, '0003-events-by-slices.sql'],
    ]);
    expect(POSTGRES_MIGRATE_COMMAND).toMatch(/migrate/);
  });

  it('refuses schema names that are not plain identifiers', () => {
    expect(quoteSchema('dataflow_1')).toBe('"dataflow_1"');
    for (const bad of ['', '1abc', 'a"; DROP TABLE x; --', 'with space', 'x'.repeat(64)]) expect(() => quoteSchema(bad)).toThrowError(RangeError);
  });
});
