/**
 * Versioned, forward-only schema migrations shared by the stores (Postgres
 * and PGlite today; the Cassandra store can plug in the same way): numbered
 * files `NNNN-name.<ext>` in one folder, a table in the store recording which
 * versions were applied (with a checksum of each file), a runner that applies
 * the missing ones in order under the store's migration lock, and a check a
 * node runs at start that refuses a schema older than its code, naming the
 * command that upgrades it.
 *
 * A store provides a `MigrationTarget`; everything else is shared.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { DataflowError } from '@dataflow/core';

/** One migration file. */
export interface Migration {
  /** Its number: 1, 2, ... without gaps. */
  readonly version: number;
  /** The rest of the file name, e.g. `journal` for `0001-journal.sql`. */
  readonly name: string;
  readonly fileName: string;
  readonly text: string;
  /** sha256 (hex) of `text` without `--` comments and with whitespace collapsed: an applied migration's statements must never change. */
  readonly checksum: string;
}

/** A migration recorded as applied in the store. */
export interface AppliedMigration {
  readonly version: number;
  readonly checksum: string;
}

/** What a store does inside one migration run (while holding its migration lock). */
export interface MigrationSession {
  /** Versions recorded as applied; empty when the record (table) does not exist yet. */
  applied(): Promise<readonly AppliedMigration[]>;
  /** Applies one migration and records it. */
  apply(migration: Migration): Promise<void>;
}

/** A store's schema as the runner sees it. */
export interface MigrationTarget {
  /** For messages, e.g. `Postgres schema "dataflow"`. */
  readonly description: string;
  /** What an operator runs to upgrade it, named in the error of a schema that is too old. */
  readonly migrateCommand: string;
  /** Runs `work` under the store's migration lock (one migration run at a time, across processes). */
  session<T>(work: (session: MigrationSession) => Promise<T>): Promise<T>;
  /** The applied migrations, read without taking the lock (for the check at start). */
  applied(): Promise<readonly AppliedMigration[]>;
}

/** The outcome of `runMigrations`. */
export interface MigrationResult {
  /** Versions applied by this run, in order (empty when the schema was current). */
  readonly applied: readonly number[];
  /** The schema's version afterwards. */
  readonly version: number;
}

/**
 * The schema is older than this code needs (or a migration file changed
 * after it was applied). Not retriable: an operator must run the migration.
 */
export class SchemaVersionError extends DataflowError<'schema/version-mismatch'> {
  constructor(
    message: string,
    /** The highest version applied in the store (0 for none). */
    readonly schemaVersion: number,
    /** The version this code needs. */
    readonly requiredVersion: number,
  ) {
    super('schema/version-mismatch', message, { retriable: false });
  }
}

const FILE_NAME = /^(\d{4})-([a-z0-9][a-z0-9-]*)\.([a-z]+)$/;

/**
 * Reads the migrations of a folder: files named `NNNN-name.<extension>`,
 * numbered from 1 without gaps (other files are ignored).
 *
 * @example
 * ```ts
 * const migrations = await loadMigrations(new URL('./sql/', import.meta.url), 'sql');
 * ```
 */
export async function loadMigrations(folder: URL, extension: string): Promise<Migration[]> {
  const migrations: Migration[] = [];
  for (const fileName of (await readdir(folder)).sort()) {
    const match = FILE_NAME.exec(fileName);
    if (match === null || match[3] !== extension) continue;
    const text = await readFile(new URL(fileName, folder), 'utf8');
    migrations.push({ version: Number(match[1]), name: match[2] ?? '', fileName, text, checksum: checksumOf(text) });
  }
  migrations.forEach((migration, i) => {
    if (migration.version !== i + 1) throw new RangeError(`Migration ${migration.fileName} should be number ${i + 1}: migrations are numbered 1, 2, ... without gaps`);
  });
  return migrations;
}

/** The checksum of a migration's statements: comments and layout may change, statements may not. */
export function checksumOf(text: string): string {
  const statements = text.replace(/--.*$/gm, '').replace(/\s+/g, ' ').trim();
  return createHash('sha256').update(statements).digest('hex');
}

/**
 * Applies every migration the store has not recorded yet, in order, under
 * the store's migration lock; on a current schema it only reads the record
 * (no lock, no DDL). Refuses when an applied migration's file has
 * changed since (migrations are forward-only: add a new file instead).
 *
 * @example
 * ```ts
 * const { applied, version } = await runMigrations(target, migrations);
 * ```
 */
export async function runMigrations(target: MigrationTarget, migrations: readonly Migration[]): Promise<MigrationResult> {
  // A current schema needs no lock and no DDL at all (a node may call this on every start).
  const before = await target.applied();
  verifyChecksums(target, migrations, before);
  const present = new Set(before.map((m) => m.version));
  if (migrations.every((m) => present.has(m.version))) return { applied: [], version: Math.max(0, ...present) };
  return target.session(async (session) => {
    const applied = await session.applied();
    verifyChecksums(target, migrations, applied);
    const done = new Set(applied.map((m) => m.version));
    const now: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await session.apply(migration);
      now.push(migration.version);
    }
    return { applied: now, version: Math.max(0, ...done, ...now) };
  });
}

/**
 * The check at start: resolves with the schema's version when every
 * migration is applied, and fails with `SchemaVersionError` naming
 * `target.migrateCommand` when one is missing. A schema newer than the code
 * (a later release migrated it) is accepted: migrations only add.
 */
export async function checkMigrations(target: MigrationTarget, migrations: readonly Migration[]): Promise<number> {
  const applied = await target.applied();
  verifyChecksums(target, migrations, applied);
  const done = new Set(applied.map((m) => m.version));
  const version = Math.max(0, ...done);
  const required = migrations.at(-1)?.version ?? 0;
  const missing = migrations.filter((m) => !done.has(m.version));
  if (missing.length > 0) {
    const names = missing.map((m) => m.fileName).join(', ');
    throw new SchemaVersionError(
      `${target.description} is at version ${version}, this release needs version ${required} (missing ${names}): run \`${target.migrateCommand}\``,
      version,
      required,
    );
  }
  return version;
}

function verifyChecksums(target: MigrationTarget, migrations: readonly Migration[], applied: readonly AppliedMigration[]): void {
  const known = new Map(migrations.map((m) => [m.version, m]));
  for (const record of applied) {
    const migration = known.get(record.version);
    if (migration !== undefined && migration.checksum !== record.checksum) {
      throw new SchemaVersionError(
        `${target.description}: migration ${migration.fileName} was changed after it was applied; migrations are forward-only, add a new file instead`,
        record.version,
        migrations.at(-1)?.version ?? 0,
      );
    }
  }
}
