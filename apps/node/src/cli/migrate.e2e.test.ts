/**
 * The real `dataflow migrate` command (the root `dataflow` script's command
 * line, a child process) against the real Postgres and Cassandra, and the
 * node's refusal to start on a schema that misses a migration. The command a
 * refusal names is taken from its message and run as printed, so the flags
 * of `SchemaVersionError` and of the CLI cannot drift apart.
 */
import { createCassandraPersistence } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Client } from 'cassandra-driver';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../../../..');

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a child to its end (the node is expected to refuse to start, so it ends too). */
function run(args: readonly string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@dataflow/source', ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('exit', (code) => done({ code, stdout, stderr }));
  });
}

const CLI = 'apps/node/src/cli/dataflow.ts';
const dataflow = (args: readonly string[], env: Record<string, string> = {}): Promise<Ran> => run([CLI, ...args], env);

/** The command a `SchemaVersionError` names: `run \`dataflow migrate ...\``, as arguments after `dataflow`. */
function namedCommand(message: string): string[] {
  const match = /run `dataflow (migrate [^`]+)`/.exec(message);
  expect(match, `no command named in: ${message}`).not.toBeNull();
  return (match?.[1] ?? '').split(' ');
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dataflow-migrate-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('dataflow migrate --journal postgres', () => {
  const schema = testNamespace(import.meta.url, 'pg');
  const dropSchema = async (): Promise<void> => {
    const admin = new pg.Client({ connectionString: serviceSettings().postgresUrl });
    await admin.connect();
    try {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    } finally {
      await admin.end();
    }
  };
  beforeAll(dropSchema);
  afterAll(dropSchema);

  it('a node refuses a fresh schema naming the command; --status lists pending, migrate applies, a second migrate is a no-op; the node then starts', { timeout: 240_000 }, async () => {
    const url = serviceSettings().postgresUrl;
    const nodeEnv = { DATAFLOW_DATA_DIR: join(work, 'node'), DATAFLOW_POSTGRES_URL: url, DATAFLOW_POSTGRES_SCHEMA: schema };

    const refused = await run(['apps/node/src/main.ts'], nodeEnv);
    expect(refused.code).toBe(78);
    const said = refused.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { log_level: string; message: string })
      .filter((line) => line.log_level === 'error')
      .map((line) => line.message);
    expect(said).toHaveLength(1);
    const refusal = said[0] ?? '';
    expect(refusal).toMatch(new RegExp(`^cannot start: DATAFLOW_POSTGRES_SCHEMA: Postgres schema "${schema}" is at version 0, this release needs version \\d+`));
    expect(refusal).toContain('DATAFLOW_MIGRATE=auto');
    // Only the refusal: the pool is ended once (ending it twice used to add "Called end on pool more than once").
    expect(refusal).not.toContain('Called end on pool');
    const command = namedCommand(refusal);
    expect(command).toEqual(['migrate', '--journal', 'postgres', '--schema', schema]);
    // The refusal ran no DDL: the schema still does not exist.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const found = await admin.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema]);
      expect(found.rowCount).toBe(0);
    } finally {
      await admin.end();
    }

    const before = await dataflow([...command, '--status'], { DATAFLOW_POSTGRES_URL: url });
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toContain(`Postgres schema "${schema}"`);
    expect(before.stdout).toMatch(/version 0, this release has (\d+) migration\(s\), \1 pending/);
    expect(before.stdout).toMatch(/^pending 0001-journal\.sql$/m);
    expect(before.stdout).not.toMatch(/^applied /m);

    // The command exactly as the node printed it, with the URL from the environment the node used.
    const first = await dataflow(command, { DATAFLOW_POSTGRES_URL: url });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^applied 0001-journal\.sql$/m);
    expect(first.stdout).toMatch(/is now at version \d+/);

    const second = await dataflow([...command, '--url', url]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/is current at version \d+: nothing to apply/);
    expect(second.stdout).not.toMatch(/^applied /m);

    const after = await dataflow([...command, '--dry-run'], { DATAFLOW_POSTGRES_URL: url });
    expect(after.code, after.stderr).toBe(0);
    expect(after.stdout).toMatch(/, 0 pending/);
    expect(after.stdout).toContain('dry run: nothing to apply; nothing was changed');

    // Migrated: the same node start gets past the store (it runs until stopped).
    const started = spawn(process.execPath, ['--import', 'tsx', '--conditions=@dataflow/source', 'apps/node/src/main.ts'], {
      cwd: root,
      env: { ...process.env, ...nodeEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((done) => started.on('exit', done));
    const firstLine = new Promise<void>((done) => started.stdout.once('data', () => done()));
    await Promise.race([firstLine, exited.then((code) => Promise.reject(new Error(`the node exited (${code}) instead of running`)))]);
    started.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('with DATAFLOW_MIGRATE=auto a node migrates a fresh schema at start and runs', { timeout: 240_000 }, async () => {
    const autoSchema = `${schema}_auto`;
    const url = serviceSettings().postgresUrl;
    const started = spawn(process.execPath, ['--import', 'tsx', '--conditions=@dataflow/source', 'apps/node/src/main.ts'], {
      cwd: root,
      env: { ...process.env, DATAFLOW_DATA_DIR: join(work, 'auto'), DATAFLOW_POSTGRES_URL: url, DATAFLOW_POSTGRES_SCHEMA: autoSchema, DATAFLOW_MIGRATE: 'auto' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((done) => started.on('exit', done));
    const firstLine = new Promise<void>((done) => started.stdout.once('data', () => done()));
    try {
      await Promise.race([firstLine, exited.then((code) => Promise.reject(new Error(`the node exited (${code}) instead of running`)))]);
      started.kill('SIGINT');
      expect(await exited).toBe(0);
      const status = await dataflow(['migrate', '--journal', 'postgres', '--schema', autoSchema, '--status'], { DATAFLOW_POSTGRES_URL: url });
      expect(status.code, status.stderr).toBe(0);
      expect(status.stdout).toMatch(/, 0 pending/);
    } finally {
      started.kill('SIGKILL');
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${autoSchema} CASCADE`).finally(() => admin.end());
    }
  });

  it('usage errors exit 78 naming the field; a failure exits 1 with its cause and never prints the password', { timeout: 120_000 }, async () => {
    const missing = await dataflow(['migrate', '--journal', 'postgres'], { DATAFLOW_POSTGRES_URL: '' });
    expect(missing.code).toBe(78);
    expect(missing.stderr).toContain('--url (DATAFLOW_POSTGRES_URL): is not set');

    const badSchema = await dataflow(['migrate', '--journal', 'postgres', '--url', 'postgres://u@127.0.0.1/x', '--schema', 'no-dashes']);
    expect(badSchema.code).toBe(78);
    expect(badSchema.stderr).toContain('--schema (DATAFLOW_POSTGRES_SCHEMA): Invalid schema name');

    const badJournal = await dataflow(['migrate', '--journal', 'mysql']);
    expect(badJournal.code).toBe(78);
    expect(badJournal.stderr).toContain("argument 'mysql' is invalid");

    const unreachable = await dataflow(['migrate', '--journal', 'postgres', '--url', 'postgres://admin:Sup3r%2Fsecret@127.0.0.1:1/x', '--status']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('cannot migrate Postgres schema "dataflow" at postgres://admin:***@127.0.0.1:1/x');
    expect(unreachable.stderr).toContain('ECONNREFUSED');
    for (const out of [unreachable.stdout, unreachable.stderr]) {
      expect(out).not.toContain('Sup3r');
    }
  });
});

describe('dataflow migrate --journal cassandra', () => {
  const keyspace = testNamespace(import.meta.url, 'cql');
  let client: Client;
  beforeAll(async () => {
    const services = serviceSettings();
    client = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
    await client.connect();
    await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
  });
  afterAll(async () => {
    try {
      await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
    } finally {
      await client.shutdown();
    }
  });

  it('a journal refuses a fresh keyspace naming the command; the command as printed migrates it (second run a no-op) and the journal then opens and writes', { timeout: 300_000 }, async () => {
    const services = serviceSettings();
    const env = { DATAFLOW_CASSANDRA_CONTACT_POINTS: services.cassandraContactPoints.join(','), DATAFLOW_CASSANDRA_LOCAL_DC: services.cassandraLocalDataCenter };
    const refusal = await createCassandraPersistence({ client, keyspace }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).toMatchObject({ tag: 'schema/version-mismatch' });
    const command = namedCommand((refusal as Error).message);
    expect(command).toEqual(['migrate', '--journal', 'cassandra', '--keyspace', keyspace]);

    const before = await dataflow([...command, '--status'], env);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toMatch(/version 0, this release has (\d+) migration\(s\), \1 pending/);
    expect(before.stdout).toMatch(/^pending 0001-journal\.cql$/m);

    const first = await dataflow([...command, '--replication-factor', '1'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^applied 0001-journal\.cql$/m);
    const replication = await client.execute('SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?', [keyspace], { prepare: true });
    expect(replication.first()?.['replication']).toMatchObject({ class: 'org.apache.cassandra.locator.SimpleStrategy', replication_factor: '1' });

    const second = await dataflow(command, env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/is current at version \d+: nothing to apply/);

    const plugin = await createCassandraPersistence({ client, keyspace });
    try {
      await plugin.journal.append('migrate-e2e-1', [{ payload: { n: 1 }, eventType: 'Counted' }], { expectedSequenceNr: 0, writerId: 'migrate-e2e' });
      expect(await plugin.journal.highestSequenceNr('migrate-e2e-1')).toBe(1);
    } finally {
      await plugin.close();
    }
  });

  it('a malformed replication setting exits 78 naming it', { timeout: 60_000 }, async () => {
    const bad = await dataflow(['migrate', '--journal', 'cassandra', '--keyspace', keyspace, '--data-centers', 'dc1=3']);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain('--data-centers (DATAFLOW_CASSANDRA_DATA_CENTERS): has "dc1=3"');
  });
});
