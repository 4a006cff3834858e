import { describe, expect, it } from 'vitest';
import { quoteSchema, schemaStatements } from './postgres-schema.js';

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

  it('keeps the append function whole although its body holds semicolons', async () => {
    const statements = await schemaStatements('tenant_a');
    const fn = statements.filter((s) => s.includes('append_events'));
    expect(fn).toHaveLength(1);
    expect(fn[0]).toMatch(/^CREATE OR REPLACE FUNCTION "tenant_a"\.append_events\(/);
    expect(fn[0]).toContain('SET search_path = "tenant_a", pg_temp');
    expect(fn[0]).toMatch(/AS \$\$[\s\S]*;[\s\S]*\$\$$/);
  });

  it('refuses schema names that are not plain identifiers', () => {
    expect(quoteSchema('dataflow_1')).toBe('"dataflow_1"');
    for (const bad of ['', '1abc', 'a"; DROP TABLE x; --', 'with space', 'x'.repeat(64)]) expect(() => quoteSchema(bad)).toThrowError(RangeError);
  });
});
