/**
 * Versioned migrations and the checks at start against the real Cassandra:
 * a keyspace that is missing migrations is refused with the command to run,
 * `migrateCassandra` applies only what is missing, a start changes no DDL,
 * replication is configurable, and the single-writer mode is recorded and
 * enforced.
 */
import { Client } from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDataflowError } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { createCassandraPersistence, SingleWriterModeMismatchError } from './cassandra-persistence.js';
import { cassandraMigrations, migrateCassandra, migrationStatements } from './cassandra-schema.js';

describe('Cassandra schema migrations and start checks', () => {
  let client: Client;
  const keyspaces: string[] = [];
  const keyspace = (suffix: string): string => {
    const name = testNamespace(import.meta.url, suffix);
    keyspaces.push(name);
    return name;
  };

  beforeAll(async () => {
    const services = serviceSettings();
    client = new Client({ contactPoints: [...services.cassandraContactPoints], localDataCenter: services.cassandraLocalDataCenter });
    await client.connect();
  });
  afterAll(async () => {
    try {
      for (const ks of keyspaces) await client.execute(`DROP KEYSPACE IF EXISTS ${ks}`);
    } finally {
      await client.shutdown();
    }
  });

  it('refuses to start on a keyspace that was never migrated, naming the command; migrate applies each migration once', async () => {
    const ks = keyspace('fresh');
    const refused = await createCassandraPersistence({ client, keyspace: ks }).catch((error: unknown) => error);
    expect(isDataflowError(refused, 'schema/version-mismatch')).toBe(true);
    expect((refused as Error).message).toContain(`run \`dataflow migrate --journal cassandra --keyspace ${ks}\``);
    expect(refused).toMatchObject({ schemaVersion: 0, requiredVersion: 2, retriable: false });

    expect(await migrateCassandra(client, ks)).toEqual({ applied: [1, 2], version: 2 });
    expect(await migrateCassandra(client, ks)).toEqual({ applied: [], version: 2 });
    const recorded = await client.execute(`SELECT version, name FROM ${ks}.schema_migrations`);
    expect(recorded.rows.map((r): [unknown, unknown] => [r['version'], r['name']]).sort()).toEqual([
      [1, 'journal'],
      [2, 'journal-settings'],
    ]);

    // A start only reads: not one DDL statement.
    const statements: string[] = [];
    const spy = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop === 'execute') {
          return (query: string, ...rest: unknown[]) => {
            statements.push(query);
            return (target.execute as (...args: unknown[]) => unknown).call(target, query, ...rest);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const plugin = await createCassandraPersistence({ client: spy, keyspace: ks });
    await plugin.journal.append('p', [{ eventType: 'E', payload: {} }], { expectedSequenceNr: 0, writerId: 'w' });
    await plugin.close();
    expect(statements.length).toBeGreaterThan(0);
    expect(statements.filter((s) => /^\s*(CREATE|ALTER|DROP)\b/i.test(s))).toEqual([]);
  });

  it('refuses a keyspace that is missing the newest migration, and migrate then applies only that one', async () => {
    const ks = keyspace('old');
    const [first] = await cassandraMigrations();
    if (first === undefined) throw new Error('no migrations');
    // A keyspace migrated by the previous release: version 1 only.
    await client.execute(`CREATE KEYSPACE ${ks} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    await client.execute(`CREATE TABLE ${ks}.schema_migrations (version int PRIMARY KEY, name text, checksum text, applied_at timestamp)`);
    for (const statement of migrationStatements(first, ks)) await client.execute(statement);
    await client.execute(`INSERT INTO ${ks}.schema_migrations (version, name, checksum) VALUES (1, 'journal', ?)`, [first.checksum], { prepare: true });

    const refused = await createCassandraPersistence({ client, keyspace: ks }).catch((error: unknown) => error);
    expect(isDataflowError(refused, 'schema/version-mismatch')).toBe(true);
    expect((refused as Error).message).toContain('missing 0002-journal-settings.cql');
    expect(await migrateCassandra(client, ks)).toEqual({ applied: [2], version: 2 });
    await (await createCassandraPersistence({ client, keyspace: ks })).close();
  });

  it('refuses a migration file changed after it was applied', async () => {
    const ks = keyspace('changed');
    await migrateCassandra(client, ks);
    await client.execute(`UPDATE ${ks}.schema_migrations SET checksum = 'edited' WHERE version = 1`);
    const refused = await createCassandraPersistence({ client, keyspace: ks }).catch((error: unknown) => error);
    expect(isDataflowError(refused, 'schema/version-mismatch')).toBe(true);
    expect((refused as Error).message).toContain('0001-journal.cql was changed after it was applied');
  });

  it('creates the keyspace with the replication it is given', async () => {
    const ks = keyspace('nts');
    const dc = serviceSettings().cassandraLocalDataCenter;
    await migrateCassandra(client, ks, { class: 'NetworkTopologyStrategy', dataCenters: { [dc]: 1 } });
    const row = (await client.execute('SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = ?', [ks], { prepare: true })).first();
    const replication = row['replication'] as Record<string, string>;
    expect(replication['class']).toBe('org.apache.cassandra.locator.NetworkTopologyStrategy');
    expect(replication[dc]).toBe('1');
  });

  it('records the single-writer mode of the first journal and refuses a journal of the other mode', async () => {
    const ks = keyspace('mode');
    await migrateCassandra(client, ks);
    const lease = await createCassandraPersistence({ client, keyspace: ks, singleWriter: 'lease' });
    const refused = await createCassandraPersistence({ client, keyspace: ks, singleWriter: 'conditional' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SingleWriterModeMismatchError);
    expect(refused).toMatchObject({ tag: 'journal/single-writer-mode-mismatch', retriable: false, recorded: 'lease', configured: 'conditional' });
    expect((refused as Error).message).toContain(`Keyspace ${ks} is written with singleWriter 'lease'`);
    // The same mode is welcome, also after the first journal closed.
    await lease.close();
    await (await createCassandraPersistence({ client, keyspace: ks })).close();

    const other = keyspace('mode2');
    await migrateCassandra(client, other);
    await (await createCassandraPersistence({ client, keyspace: other, singleWriter: 'conditional' })).close();
    await expect(createCassandraPersistence({ client, keyspace: other })).rejects.toMatchObject({ recorded: 'conditional', configured: 'lease' });
  });
});
