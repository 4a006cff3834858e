import { Client, types } from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceSettings, testNamespace } from '@dataflow/test-env';

// The foundation's round trip: the test Cassandra answers CQL with the settings
// the global setup hands out, and this file's keyspace lives and dies with it.
describe('Cassandra round trip', () => {
  const keyspace = testNamespace(import.meta.url);
  let client: Client;

  beforeAll(async () => {
    const settings = serviceSettings();
    client = new Client({ contactPoints: [...settings.cassandraContactPoints], localDataCenter: settings.cassandraLocalDataCenter });
    await client.connect();
  });

  afterAll(async () => {
    await client.shutdown();
  });

  it('creates a keyspace and a table, inserts, selects and drops the keyspace', async () => {
    await client.execute(`CREATE KEYSPACE ${keyspace} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
    await client.execute(`CREATE TABLE ${keyspace}.greetings (id text PRIMARY KEY, body text, at timeuuid)`);
    const at = types.TimeUuid.now();
    await client.execute(`INSERT INTO ${keyspace}.greetings (id, body, at) VALUES (?, ?, ?)`, ['g-1', 'hello, cassandra', at], { prepare: true });

    const result = await client.execute(`SELECT id, body, at FROM ${keyspace}.greetings WHERE id = ?`, ['g-1'], { prepare: true });
    expect(result.rows).toHaveLength(1);
    expect(result.first()['body']).toBe('hello, cassandra');
    expect((result.first()['at'] as types.TimeUuid).equals(at)).toBe(true);

    await client.execute(`DROP KEYSPACE ${keyspace}`);
    const keyspaces = await client.execute('SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?', [keyspace], { prepare: true });
    expect(keyspaces.rows).toHaveLength(0);
  });
});
