/**
 * The `dataflow` command line in process, without a store: flags and
 * settings resolved from the environment, usage errors (78, field named),
 * help (0), and the password mask on everything printed. The store side runs
 * in migrate.e2e.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { EX_CONFIG, runCli, type CliIo } from './cli.js';
import { migrateConfig } from './migrate-command.js';

function capture(env: Record<string, string | undefined> = {}): CliIo & { readonly stdout: () => string; readonly stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (t) => (out += t), err: (t) => (err += t), env, stdout: () => out, stderr: () => err };
}

describe('migrateConfig', () => {
  it('takes Postgres settings from flags before the environment and shows the URL without its password', () => {
    const env = { DATAFLOW_POSTGRES_URL: 'postgres://env@h/db', DATAFLOW_POSTGRES_SCHEMA: 'from_env' };
    expect(migrateConfig({ journal: 'postgres' }, env)).toEqual({
      journal: 'postgres',
      url: 'postgres://env@h/db',
      shownUrl: 'postgres://env@h/db',
      schema: 'from_env',
    });
    expect(migrateConfig({ journal: 'postgres', url: 'postgres://u:pw@h:5433/db', schema: 's1' }, env)).toMatchObject({
      url: 'postgres://u:pw@h:5433/db',
      shownUrl: 'postgres://u:***@h:5433/db',
      schema: 's1',
    });
    expect(migrateConfig({ journal: 'postgres' }, { DATAFLOW_POSTGRES_URL: 'postgres://h/db' })).toMatchObject({ schema: 'dataflow' });
  });

  it('takes Cassandra settings and replication from flags or the environment', () => {
    expect(migrateConfig({ journal: 'cassandra' }, {})).toEqual({
      journal: 'cassandra',
      contactPoints: ['127.0.0.1:9042'],
      localDataCenter: 'datacenter1',
      keyspace: 'dataflow',
    });
    const env = { DATAFLOW_CASSANDRA_CONTACT_POINTS: 'a:1, b:2', DATAFLOW_CASSANDRA_LOCAL_DC: 'dc9', DATAFLOW_CASSANDRA_KEYSPACE: 'ks_env', DATAFLOW_CASSANDRA_DATA_CENTERS: 'dc1:3,dc2:2' };
    expect(migrateConfig({ journal: 'cassandra' }, env)).toEqual({
      journal: 'cassandra',
      contactPoints: ['a:1', 'b:2'],
      localDataCenter: 'dc9',
      keyspace: 'ks_env',
      replication: { class: 'NetworkTopologyStrategy', dataCenters: { dc1: 3, dc2: 2 } },
    });
    expect(migrateConfig({ journal: 'cassandra', keyspace: 'k', replicationFactor: '3' }, {})).toMatchObject({
      keyspace: 'k',
      replication: { class: 'SimpleStrategy', replicationFactor: 3 },
    });
  });

  it.each([
    ['no URL', { journal: 'postgres' as const }, {}, '--url (DATAFLOW_POSTGRES_URL): is not set'],
    ['not a URL', { journal: 'postgres' as const, url: 'nope:pw@' }, {}, '--url (DATAFLOW_POSTGRES_URL): has the scheme nope:'],
    ['an unparsable URL', { journal: 'postgres' as const, url: 'postgres://u:pw@[bad' }, {}, '--url (DATAFLOW_POSTGRES_URL): is not a URL'],
    ['a bad schema', { journal: 'postgres' as const, url: 'postgres://h/db', schema: '1x' }, {}, '--schema (DATAFLOW_POSTGRES_SCHEMA): Invalid schema name'],
    ['a Cassandra flag on Postgres', { journal: 'postgres' as const, url: 'postgres://h/db', keyspace: 'k' }, {}, '--keyspace: applies to --journal cassandra only'],
    ['a Postgres flag on Cassandra', { journal: 'cassandra' as const, schema: 's' }, {}, '--schema: applies to --journal postgres only'],
    ['a bad keyspace', { journal: 'cassandra' as const, keyspace: 'a-b' }, {}, '--keyspace (DATAFLOW_CASSANDRA_KEYSPACE): Invalid keyspace name'],
    ['empty contact points', { journal: 'cassandra' as const, contactPoints: ' , ' }, {}, '--contact-points (DATAFLOW_CASSANDRA_CONTACT_POINTS): is empty'],
    ['a zero factor', { journal: 'cassandra' as const }, { DATAFLOW_CASSANDRA_REPLICATION_FACTOR: '0' }, '--replication-factor (DATAFLOW_CASSANDRA_REPLICATION_FACTOR): is "0"'],
    ['both replications', { journal: 'cassandra' as const, replicationFactor: '1', dataCenters: 'dc1:1' }, {}, '--replication-factor / --data-centers: give one of them'],
    ['a bad data center list', { journal: 'cassandra' as const, dataCenters: 'dc1:3,dc2' }, {}, '--data-centers (DATAFLOW_CASSANDRA_DATA_CENTERS): has "dc2"'],
  ])('refuses %s naming the field', (_, flags, env, message) => {
    expect(() => migrateConfig(flags, env)).toThrow(expect.objectContaining({ tag: 'cli/usage', message: expect.stringContaining(message) as string }));
  });
});

describe('runCli', () => {
  it('prints help with 0', async () => {
    const io = capture();
    expect(await runCli(['migrate', '--help'], io)).toBe(0);
    expect(io.stdout()).toContain('--journal <store>');
    expect(io.stdout()).toContain('--dry-run');
  });

  it.each([
    ['an unknown command', ['frobnicate'], "unknown command 'frobnicate'"],
    ['no --journal', ['migrate'], "required option '--journal <store>' not specified"],
    ['an unknown flag', ['migrate', '--journal', 'postgres', '--nope'], "unknown option '--nope'"],
    ['--status with --dry-run', ['migrate', '--journal', 'postgres', '--status', '--dry-run'], "option '--status' cannot be used with option '--dry-run'"],
  ])('exits 78 on %s, with the reason', async (_, argv, message) => {
    const io = capture();
    expect(await runCli(argv, io)).toBe(EX_CONFIG);
    expect(io.stderr()).toContain(message);
  });

  it('exits 78 naming the setting, and masks a password given on the command line', async () => {
    const io = capture();
    expect(await runCli(['migrate', '--journal', 'postgres', '--url', 'mysql://root:hunter2@db/x'], io)).toBe(EX_CONFIG);
    expect(io.stderr()).toContain('dataflow: --url (DATAFLOW_POSTGRES_URL): has the scheme mysql:');
    const usage = capture({ DATAFLOW_POSTGRES_URL: 'postgres://root:hunter2@db/x' });
    // commander echoes a bad argument: the URL's password in it is masked.
    expect(await runCli(['migrate', '--journal', 'hunter2'], usage)).toBe(EX_CONFIG);
    expect(usage.stderr()).toContain("argument '***' is invalid");
    for (const printed of [io.stdout(), io.stderr(), usage.stdout(), usage.stderr()]) expect(printed).not.toContain('hunter2');
  });
});
