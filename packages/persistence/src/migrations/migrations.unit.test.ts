/** The shared migration runner on an in-memory target: order, idempotence, the check at start, forward-only. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isDataflowError } from '@dataflow/core';
import { afterEach, describe, expect, it } from 'vitest';
import { checkMigrations, checksumOf, loadMigrations, runMigrations, type AppliedMigration, type Migration, type MigrationTarget } from './migrations.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function folder(files: Record<string, string>): Promise<URL> {
  const dir = await mkdtemp(join(tmpdir(), 'dataflow-migrations-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return pathToFileURL(`${dir}/`);
}

/** A store that records what was applied, in memory. */
function memoryTarget(): MigrationTarget & { readonly log: string[]; readonly records: AppliedMigration[]; readonly sessions: number } {
  const records: AppliedMigration[] = [];
  const log: string[] = [];
  let sessions = 0;
  return {
    description: 'test store',
    migrateCommand: 'dataflow migrate --test',
    log,
    records,
    get sessions() {
      return sessions;
    },
    applied: () => Promise.resolve([...records]),
    session: (work) => {
      sessions++;
      return work({
        applied: () => Promise.resolve([...records]),
        apply: (migration: Migration) => {
          log.push(migration.fileName);
          records.push({ version: migration.version, checksum: migration.checksum });
          return Promise.resolve();
        },
      });
    },
  };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

describe('migrations', () => {
  it('loads NNNN-name files of one extension in order and refuses a gap in the numbers', async () => {
    const ok = await folder({ '0002-b.sql': 'B;', '0001-a.sql': 'A;', 'README.md': 'x', '0001-a.cql': 'other store' });
    expect((await loadMigrations(ok, 'sql')).map((m) => [m.version, m.name])).toEqual([
      [1, 'a'],
      [2, 'b'],
    ]);
    const gap = await folder({ '0001-a.sql': 'A;', '0003-c.sql': 'C;' });
    await expect(loadMigrations(gap, 'sql')).rejects.toThrowError(/0003-c\.sql should be number 2/);
  });

  it('applies the missing migrations in order, once', async () => {
    const migrations = await loadMigrations(await folder({ '0001-a.sql': 'A;', '0002-b.sql': 'B;' }), 'sql');
    const target = memoryTarget();
    expect(await runMigrations(target, migrations.slice(0, 1))).toEqual({ applied: [1], version: 1 });
    expect(await runMigrations(target, migrations)).toEqual({ applied: [2], version: 2 });
    expect(target.sessions).toBe(2);
    expect(await runMigrations(target, migrations)).toEqual({ applied: [], version: 2 });
    expect(target.log).toEqual(['0001-a.sql', '0002-b.sql']);
    // A current schema is not touched: no session (no lock, no DDL).
    expect(target.sessions).toBe(2);
  });

  it('refuses a too-old schema at start, naming the missing files and the command to run', async () => {
    const migrations = await loadMigrations(await folder({ '0001-a.sql': 'A;', '0002-b.sql': 'B;' }), 'sql');
    const target = memoryTarget();
    const none = await failure(checkMigrations(target, migrations));
    expect(isDataflowError(none, 'schema/version-mismatch')).toBe(true);
    expect((none as Error).message).toBe('test store is at version 0, this release needs version 2 (missing 0001-a.sql, 0002-b.sql): run `dataflow migrate --test`');
    await runMigrations(target, migrations.slice(0, 1));
    expect((await failure(checkMigrations(target, migrations)) as Error).message).toMatch(/at version 1, this release needs version 2 \(missing 0002-b\.sql\)/);
    await runMigrations(target, migrations);
    expect(await checkMigrations(target, migrations)).toBe(2);
    // A newer schema (a later release migrated it) is accepted.
    expect(await checkMigrations(target, migrations.slice(0, 1))).toBe(2);
  });

  it('is forward-only: an applied migration whose statements changed is refused; comments may change', async () => {
    const target = memoryTarget();
    await runMigrations(target, await loadMigrations(await folder({ '0001-a.sql': 'CREATE TABLE t (a INT);' }), 'sql'));
    const recommented = await loadMigrations(await folder({ '0001-a.sql': '-- explains t\nCREATE TABLE t (a   INT);\n' }), 'sql');
    expect(await checkMigrations(target, recommented)).toBe(1);
    const edited = await loadMigrations(await folder({ '0001-a.sql': 'CREATE TABLE t (a BIGINT);' }), 'sql');
    expect((await failure(runMigrations(target, edited)) as Error).message).toMatch(/0001-a\.sql was changed after it was applied/);
    expect(checksumOf('A;  -- x\n')).toBe(checksumOf('A;'));
  });
});
