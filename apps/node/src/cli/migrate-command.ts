/**
 * `dataflow migrate`: applies the journal schema's missing migrations (the
 * command `SchemaVersionError` names), or with `--status` / `--dry-run`
 * lists the applied and pending ones without changing anything.
 *
 * Settings come from flags, else from the environment the node reads
 * (`DATAFLOW_POSTGRES_URL`, `DATAFLOW_POSTGRES_SCHEMA`,
 * `DATAFLOW_CASSANDRA_*`). A bad setting is a `CliUsageError` naming the flag
 * (exit 78); a failure to reach or migrate the store is reported with its
 * cause (exit 1). A password in the Postgres URL is never printed.
 */
import { DataflowError, isDataflowError } from '@dataflow/core';
import {
  assertKeyspaceName,
  cassandraMigrations,
  cassandraMigrationTarget,
  pgPoolExecutor,
  postgresMigrations,
  postgresMigrationTarget,
  quoteSchema,
  runMigrations,
  type KeyspaceReplication,
  type Migration,
  type MigrationTarget,
} from '@dataflow/persistence';
import { projectionMigrations, projectionsMigrationTarget } from '@dataflow/projections';
import { Client } from 'cassandra-driver';
import pg from 'pg';

/** A flag (or the environment variable it defaults from) has a value the command cannot use (exit 78). */
export class CliUsageError extends DataflowError<'cli/usage'> {
  constructor(
    /** The flag, e.g. `--url (DATAFLOW_POSTGRES_URL)`. */
    readonly field: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super('cli/usage', `${field}: ${message}`, { retriable: false, cause: options.cause });
  }
}

/** Reaching, reading or migrating the store failed (exit 1); `cause` says why. */
export class MigrateFailedError extends DataflowError<'cli/migrate-failed'> {
  constructor(where: string, options: { retriable: boolean; cause: unknown }) {
    super('cli/migrate-failed', `cannot migrate ${where}`, options);
  }
}

/** The options commander parsed for `migrate` (all strings, as typed). */
export interface MigrateFlags {
  readonly journal: 'postgres' | 'cassandra';
  readonly url?: string;
  readonly schema?: string;
  readonly contactPoints?: string;
  readonly keyspace?: string;
  readonly localDc?: string;
  readonly replicationFactor?: string;
  readonly dataCenters?: string;
  readonly status?: boolean;
  readonly dryRun?: boolean;
}

/** What `migrate` needs to know about one store, resolved from flags and environment. */
export type MigrateConfig =
  | { readonly journal: 'postgres'; readonly url: string; readonly shownUrl: string; readonly schema: string }
  | {
      readonly journal: 'cassandra';
      readonly contactPoints: readonly string[];
      readonly localDataCenter: string;
      readonly keyspace: string;
      readonly replication?: KeyspaceReplication;
    };

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Resolves and checks the settings; throws `CliUsageError` naming the field.
 *
 * @example
 * ```ts
 * const config = migrateConfig({ journal: 'postgres', schema: 'dataflow' }, { DATAFLOW_POSTGRES_URL: 'postgres://127.0.0.1/x' });
 * ```
 */
export function migrateConfig(flags: MigrateFlags, env: Env): MigrateConfig {
  if (flags.journal === 'postgres') {
    for (const flag of ['contactPoints', 'keyspace', 'localDc', 'replicationFactor', 'dataCenters'] as const) {
      if (flags[flag] !== undefined) throw new CliUsageError(`--${kebab(flag)}`, 'applies to --journal cassandra only');
    }
    const url = pick(flags.url, env['DATAFLOW_POSTGRES_URL']);
    if (url === undefined) throw new CliUsageError('--url (DATAFLOW_POSTGRES_URL)', 'is not set; expected postgres://user[:password]@host[:port]/database');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      // The cause would repeat the URL with its password.
      throw new CliUsageError('--url (DATAFLOW_POSTGRES_URL)', 'is not a URL; expected postgres://user[:password]@host[:port]/database');
    }
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
      throw new CliUsageError('--url (DATAFLOW_POSTGRES_URL)', `has the scheme ${parsed.protocol}; expected postgres:// or postgresql://`);
    }
    const schema = pick(flags.schema, env['DATAFLOW_POSTGRES_SCHEMA']) ?? 'dataflow';
    try {
      quoteSchema(schema);
    } catch (error) {
      throw new CliUsageError('--schema (DATAFLOW_POSTGRES_SCHEMA)', messageOf(error), { cause: error });
    }
    const shown = new URL(parsed.href);
    if (shown.password !== '') shown.password = '***';
    return { journal: 'postgres', url, shownUrl: shown.href, schema };
  }
  for (const flag of ['url', 'schema'] as const) {
    if (flags[flag] !== undefined) throw new CliUsageError(`--${flag}`, 'applies to --journal postgres only');
  }
  const points = (pick(flags.contactPoints, env['DATAFLOW_CASSANDRA_CONTACT_POINTS']) ?? '127.0.0.1:9042')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (points.length === 0) throw new CliUsageError('--contact-points (DATAFLOW_CASSANDRA_CONTACT_POINTS)', 'is empty; expected host[:port][,host[:port]...]');
  const keyspace = pick(flags.keyspace, env['DATAFLOW_CASSANDRA_KEYSPACE']) ?? 'dataflow';
  try {
    assertKeyspaceName(keyspace);
  } catch (error) {
    throw new CliUsageError('--keyspace (DATAFLOW_CASSANDRA_KEYSPACE)', messageOf(error), { cause: error });
  }
  const localDataCenter = pick(flags.localDc, env['DATAFLOW_CASSANDRA_LOCAL_DC']) ?? 'datacenter1';
  const replication = replicationOf(flags, env);
  return { journal: 'cassandra', contactPoints: points, localDataCenter, keyspace, ...(replication === undefined ? {} : { replication }) };
}

function replicationOf(flags: MigrateFlags, env: Env): KeyspaceReplication | undefined {
  const factorText = pick(flags.replicationFactor, env['DATAFLOW_CASSANDRA_REPLICATION_FACTOR']);
  const centersText = pick(flags.dataCenters, env['DATAFLOW_CASSANDRA_DATA_CENTERS']);
  if (factorText !== undefined && centersText !== undefined) {
    throw new CliUsageError('--replication-factor / --data-centers', 'give one of them: a factor (SimpleStrategy) or factors per data center (NetworkTopologyStrategy)');
  }
  if (factorText !== undefined) {
    const replicationFactor = Number(factorText);
    if (!Number.isInteger(replicationFactor) || replicationFactor < 1) {
      throw new CliUsageError('--replication-factor (DATAFLOW_CASSANDRA_REPLICATION_FACTOR)', `is ${JSON.stringify(factorText)}; expected a whole number ≥ 1`);
    }
    return { class: 'SimpleStrategy', replicationFactor };
  }
  if (centersText === undefined) return undefined;
  const dataCenters: Record<string, number> = {};
  for (const entry of centersText.split(',')) {
    const match = /^\s*([A-Za-z0-9_.-]+)\s*:\s*(\d+)\s*$/.exec(entry);
    if (match === null || Number(match[2]) < 1) {
      throw new CliUsageError('--data-centers (DATAFLOW_CASSANDRA_DATA_CENTERS)', `has ${JSON.stringify(entry)}; expected dc:factor[,dc:factor...], e.g. dc1:3,dc2:3`);
    }
    dataCenters[match[1] as string] = Number(match[2]);
  }
  return { class: 'NetworkTopologyStrategy', dataCenters };
}

/** Where `migrate` writes its report. */
export interface CliOutput {
  out(line: string): void;
}

/**
 * Runs `migrate` on the store `config` names: lists (`--status`, `--dry-run`)
 * or applies the missing migrations, writing one line per fact to `output`.
 * Rejects with the store's error (the caller prints it, without secrets).
 */
export async function runMigrate(config: MigrateConfig, mode: 'apply' | 'status' | 'dry-run', output: CliOutput): Promise<void> {
  if (config.journal === 'postgres') {
    const pool = new pg.Pool({ connectionString: config.url, max: 1, connectionTimeoutMillis: 10_000 });
    // An idle client dying with its server must not crash the command; the query that needed it fails instead.
    pool.on('error', () => undefined);
    const executor = pgPoolExecutor(pool);
    const target = postgresMigrationTarget(executor, config.schema);
    const where = `${target.description} at ${config.shownUrl}`;
    try {
      await report(target, await postgresMigrations(), where, mode, output);
      // The read models and projection offsets of a node live in the same schema, with their own migration record.
      const projections = projectionsMigrationTarget(executor, config.schema);
      await report(projections, await projectionMigrations(), `${projections.description} at ${config.shownUrl}`, mode, output);
    } catch (error) {
      throw new MigrateFailedError(where, { retriable: !isDataflowError(error) || error.retriable, cause: error });
    } finally {
      await executor.close();
    }
    return;
  }
  const client = new Client({ contactPoints: [...config.contactPoints], localDataCenter: config.localDataCenter });
  const target = cassandraMigrationTarget(client, config.keyspace, config.replication);
  const where = `${target.description} at ${config.contactPoints.join(',')}`;
  try {
    await client.connect();
    await report(target, await cassandraMigrations(), where, mode, output);
  } catch (error) {
    throw new MigrateFailedError(where, { retriable: !isDataflowError(error) || error.retriable, cause: error });
  } finally {
    await client.shutdown();
  }
}

async function report(target: MigrationTarget, migrations: readonly Migration[], where: string, mode: 'apply' | 'status' | 'dry-run', output: CliOutput): Promise<void> {
  if (mode === 'apply') {
    const result = await runMigrations(target, migrations);
    const names = new Map(migrations.map((m) => [m.version, m.fileName]));
    if (result.applied.length === 0) output.out(`${where} is current at version ${result.version}: nothing to apply`);
    for (const version of result.applied) output.out(`applied ${names.get(version) ?? version}`);
    if (result.applied.length > 0) output.out(`${where} is now at version ${result.version}`);
    return;
  }
  const applied = new Set((await target.applied()).map((m) => m.version));
  const pending = migrations.filter((m) => !applied.has(m.version));
  const version = Math.max(0, ...applied);
  output.out(`${where}: version ${version}, this release has ${migrations.length} migration(s), ${pending.length} pending`);
  for (const migration of migrations) output.out(`${applied.has(migration.version) ? 'applied' : 'pending'} ${migration.fileName}`);
  const known = new Set(migrations.map((m) => m.version));
  for (const v of [...applied].filter((v) => !known.has(v)).sort((a, b) => a - b)) output.out(`applied version ${v} (newer than this release)`);
  if (mode === 'dry-run') output.out(`dry run: ${pending.length === 0 ? 'nothing to apply' : `would apply ${pending.map((m) => m.fileName).join(', ')}`}; nothing was changed`);
}

function pick(flag: string | undefined, env: string | undefined): string | undefined {
  for (const value of [flag, env]) if (value !== undefined && value.trim() !== '') return value.trim();
  return undefined;
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
