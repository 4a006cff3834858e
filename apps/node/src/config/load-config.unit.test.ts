import { isDataflowError } from '@dataflow/core';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadNodeConfig, maskSecrets } from './load-config.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dataflow-config-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

async function refusal(promise: Promise<unknown>): Promise<{ setting: string; message: string }> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isDataflowError(error, 'node/invalid-config')) throw new Error(`expected a NodeConfigError, got ${String(error)}`);
  return { setting: (error as unknown as { setting: string }).setting, message: error.message };
}

describe('loadNodeConfig', () => {
  it('without a file runs the demo on embedded storage with the documented ports', async () => {
    const config = await loadNodeConfig({ env: {}, cwd: dir });
    expect(config).toMatchObject({
      demo: true,
      journal: { type: 'embedded', migrate: 'check' },
      node: { dataDir: join(dir, 'data'), shutdownTimeoutMs: 30_000 },
      api: { enabled: true, host: '127.0.0.1', port: 8080 },
      metrics: { enabled: true, port: 9095 },
      projections: { enabled: true },
      pipelines: [],
    });
    expect(config.source).toBeUndefined();
    expect(config.redis).toBeUndefined();
  });

  it('reads ./dataflow.yaml when present; environment variables win over it', async () => {
    await file('dataflow.yaml', 'api:\n  port: 9000\n  host: 0.0.0.0\nkafka:\n  brokers: [a:9092]\npipelines:\n  - id: p1\n    definition: { name: x }\n');
    const config = await loadNodeConfig({ env: { DATAFLOW_API_PORT: '9100', DATAFLOW_KAFKA_BROKERS: 'k1:1, k2:2' }, cwd: dir });
    expect(config.source).toBe(join(dir, 'dataflow.yaml'));
    expect(config.demo).toBe(false);
    expect(config.api).toMatchObject({ port: 9100, host: '0.0.0.0' });
    expect(config.kafka.brokers).toEqual(['k1:1', 'k2:2']);
    expect(config.pipelines).toEqual([{ id: 'p1', start: true, definition: { name: 'x' } }]);
  });

  it('names the field and the file for a bad value, and every problem at once', async () => {
    const path = await file('node.yaml', 'api:\n  port: http\n  prot: 1\njournal:\n  type: mongo\n');
    const { setting, message } = await refusal(loadNodeConfig({ file: path, env: {}, cwd: dir }));
    expect(setting).toMatch(/^(api|journal)[.\w]* in node\.yaml$/);
    expect(message).toContain('api.port in node.yaml');
    expect(message).toContain('"prot"');
    expect(message).toContain('journal.type in node.yaml');
  });

  it('names the environment variable when the bad value came from it', async () => {
    expect(await refusal(loadNodeConfig({ env: { DATAFLOW_API_PORT: '80a' }, cwd: dir }))).toMatchObject({ setting: 'DATAFLOW_API_PORT' });
    expect(await refusal(loadNodeConfig({ env: { DATAFLOW_LOG_LEVEL: 'loud' }, cwd: dir }))).toMatchObject({ setting: 'DATAFLOW_LOG_LEVEL' });
    expect(await refusal(loadNodeConfig({ env: { DATAFLOW_OVERWRITE_OUTPUT: 'maybe' }, cwd: dir }))).toMatchObject({ setting: 'DATAFLOW_OVERWRITE_OUTPUT' });
  });

  it('a Postgres URL alone puts the journal on Postgres; postgres without a URL is refused', async () => {
    const config = await loadNodeConfig({ env: { DATAFLOW_POSTGRES_URL: 'postgres://u:s3cret@h/db' }, cwd: dir });
    expect(config.journal.type).toBe('postgres');
    expect(config.secrets).toContain('s3cret');
    expect(await refusal(loadNodeConfig({ env: { DATAFLOW_JOURNAL: 'postgres' }, cwd: dir }))).toMatchObject({ setting: 'postgres.url' });
  });

  it('reads secrets from files and variables, never keeps them in an error, and masks them', async () => {
    const tokenFile = await file('token', 'tok-123456\n');
    const path = await file('c.yaml', `api:\n  authToken: { file: ${tokenFile} }\ncassandra:\n  username: u\n  password: { env: CASS_PW }\n`);
    const config = await loadNodeConfig({ file: path, env: { CASS_PW: 'pw-abcdef' }, cwd: dir });
    expect(config.api.authToken).toBe('tok-123456');
    expect(config.cassandra.password).toBe('pw-abcdef');
    expect(maskSecrets('token tok-123456 and pw-abcdef', config.secrets)).toBe('token *** and ***');
    const missing = await refusal(loadNodeConfig({ file: path, env: {}, cwd: dir }));
    expect(missing).toMatchObject({ setting: 'cassandra.password' });
    expect(missing.message).toContain('CASS_PW');
    const noFile = await refusal(loadNodeConfig({ env: { DATAFLOW_AUTH_TOKEN_FILE: join(dir, 'nope') }, cwd: dir }));
    expect(noFile.setting).toBe('DATAFLOW_AUTH_TOKEN_FILE');
  });

  it('refuses __proto__ keys, deep nesting, duplicate keys, bad YAML and a missing file, naming them', async () => {
    const proto = await file('p.yaml', 'pipelines:\n  - id: a\n    definition:\n      __proto__: { polluted: true }\n');
    expect((await refusal(loadNodeConfig({ file: proto, env: {}, cwd: dir }))).setting).toBe('pipelines[0].definition.__proto__ in p.yaml');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    const deep = await file('d.yaml', `pipelines:\n  - id: a\n    definition: ${'{a: '.repeat(40)}1${'}'.repeat(40)}\n`);
    expect((await refusal(loadNodeConfig({ file: deep, env: {}, cwd: dir }))).message).toContain('nested deeper than 32');
    const dup = await file('u.yaml', 'api:\n  port: 1\napi:\n  port: 2\n');
    expect((await refusal(loadNodeConfig({ file: dup, env: {}, cwd: dir }))).message).toContain('not valid YAML');
    const bad = await file('b.yaml', 'api: [1, 2\n');
    expect((await refusal(loadNodeConfig({ file: bad, env: {}, cwd: dir }))).setting).toBe('b.yaml');
    expect((await refusal(loadNodeConfig({ env: { DATAFLOW_CONFIG: join(dir, 'missing.yaml') }, cwd: dir }))).setting).toBe('DATAFLOW_CONFIG');
    const list = await file('l.yaml', '- 1\n- 2\n');
    expect((await refusal(loadNodeConfig({ file: list, env: {}, cwd: dir }))).message).toContain('mapping of sections');
    // A "billion laughs" file: aliases that would expand to millions of nodes, refused naming the file.
    const laughs = await file('x.yaml', ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]', ...'bcdefg'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefg'[i]}`).join(', ')}]`)].join('\n'));
    const expanded = await refusal(loadNodeConfig({ file: laughs, env: {}, cwd: dir }));
    expect(expanded).toMatchObject({ setting: 'x.yaml', message: expect.stringMatching(/^x\.yaml: cannot be read: .*alias.* \(its aliases would expand past 100 references\)$/i) as unknown });
  });

  it('DATAFLOW_MIGRATE: check by default, auto when asked, another value refused naming it and the value', async () => {
    const url = 'postgres://postgres@127.0.0.1:5432/postgres';
    expect((await loadNodeConfig({ env: { DATAFLOW_POSTGRES_URL: url }, cwd: dir })).journal).toEqual({ type: 'postgres', migrate: 'check' });
    expect((await loadNodeConfig({ env: { DATAFLOW_POSTGRES_URL: url, DATAFLOW_MIGRATE: ' AUTO ' }, cwd: dir })).journal.migrate).toBe('auto');
    const refused = await refusal(loadNodeConfig({ env: { DATAFLOW_POSTGRES_URL: url, DATAFLOW_MIGRATE: 'yes' }, cwd: dir }));
    expect(refused).toMatchObject({ setting: 'DATAFLOW_MIGRATE' });
    expect(refused.message).toMatch(/^DATAFLOW_MIGRATE: is "yes"; .*"check"\|"auto"/);
  });

  it('never repeats a secret field in an error', async () => {
    const path = await file('s.yaml', 'api:\n  authToken: 987654321\n');
    const { setting, message } = await refusal(loadNodeConfig({ file: path, env: {}, cwd: dir }));
    expect(setting).toBe('api.authToken in s.yaml');
    expect(message).not.toContain('987654321');
  });

  it('parses a Logstash address from DATAFLOW_LOGSTASH_HOST', async () => {
    const config = await loadNodeConfig({ env: { DATAFLOW_LOGSTASH_HOST: 'logstash:5000' }, cwd: dir });
    expect(config.logging.logstash).toEqual({ host: 'logstash', port: 5000 });
    expect((await refusal(loadNodeConfig({ env: { DATAFLOW_LOGSTASH_HOST: 'logstash' }, cwd: dir }))).setting).toBe('DATAFLOW_LOGSTASH_HOST');
  });

  it('cluster.projectionRanges: 4 by default, 1-1024 from the file or DATAFLOW_CLUSTER_PROJECTION_RANGES, refused by field outside', async () => {
    expect((await loadNodeConfig({ env: {}, cwd: dir })).cluster.projectionRanges).toBe(4);
    expect((await loadNodeConfig({ env: { DATAFLOW_CLUSTER_PROJECTION_RANGES: '16' }, cwd: dir })).cluster.projectionRanges).toBe(16);
    expect((await refusal(loadNodeConfig({ env: { DATAFLOW_CLUSTER_PROJECTION_RANGES: '2000' }, cwd: dir }))).setting).toBe('DATAFLOW_CLUSTER_PROJECTION_RANGES');
    const path = await file('node.yaml', 'cluster:\n  projectionRanges: 0\n');
    const { setting, message } = await refusal(loadNodeConfig({ file: path, env: {}, cwd: dir }));
    expect(setting).toBe('cluster.projectionRanges in node.yaml');
    expect(message).toContain('at least 1');
  });
});
