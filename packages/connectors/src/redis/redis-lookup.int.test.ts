import { createTransform, definePipeline, enrich, isDataflowError } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLookupSource } from './redis-lookup.js';

describe('RedisLookupSource (real server)', () => {
  let client: Redis;
  let prefix: string;

  beforeAll(async () => {
    client = new Redis(serviceSettings().redisUrl, { maxRetriesPerRequest: 1 });
    prefix = `${testNamespace(import.meta.url)}:customers:`;
    await client.mset(
      `${prefix}c1`, JSON.stringify({ name: 'Ada', tier: 'gold' }),
      `${prefix}c2`, JSON.stringify({ name: 'Grace' }),
      `${prefix}42`, JSON.stringify('answer'),
      `${prefix}broken`, '{not json',
    );
  });

  afterAll(async () => {
    const keys = await client.keys(`${testNamespace(import.meta.url)}:*`);
    if (keys.length > 0) await client.del(...keys);
    await client.quit();
  });

  it('returns the JSON values of the keys that exist and omits the others', async () => {
    const lookup = new RedisLookupSource({ client, keyPrefix: prefix });
    const found = await lookup.get(['c1', 'missing', '42']);
    expect([...found.entries()]).toEqual([
      ['c1', { name: 'Ada', tier: 'gold' }],
      ['42', 'answer'],
    ]);
  });

  it('reads in chunks and can return raw strings', async () => {
    const lookup = new RedisLookupSource({ client, keyPrefix: prefix, format: 'string', chunkSize: 2 });
    const found = await lookup.get(['c1', 'c2', 'nope', '42', 'broken']);
    expect([...found.keys()]).toEqual(['c1', 'c2', '42', 'broken']);
    expect(found.get('broken')).toBe('{not json');
  });

  it('reports a stored value that is not JSON as a permanent connector error', async () => {
    const lookup = new RedisLookupSource({ client, keyPrefix: prefix });
    await expect(lookup.get(['c1', 'broken'])).rejects.toMatchObject({ tag: 'connector/failed', retriable: false });
  });

  it('enriches records through an enrich stage', async () => {
    const definition = definePipeline({
      name: 'enrich-from-redis',
      source: { type: 'generator' },
      transforms: [enrich({ lookup: 'customers', key: 'customerId', target: 'customer', onMiss: 'fail' })],
      sink: { type: 'console' },
    });
    const [stageDefinition] = definition.transforms;
    if (stageDefinition === undefined) throw new Error('the definition has one transform');
    const stage = createTransform(stageDefinition, { stage: 'transforms[0]', lookups: { customers: new RedisLookupSource({ client, keyPrefix: prefix }) } });
    if (stage.kind !== 'stateless') throw new Error('enrich is stateless');
    const result = await stage.apply([{ customerId: 'c2', n: 1 }, { customerId: 'zzz' }], { now: 0 });
    expect(result.records).toEqual([{ customerId: 'c2', n: 1, customer: { name: 'Grace' } }]);
    expect(result.failures.map((f) => [f.stage, f.error.reason])).toEqual([['transforms[0]', 'lookup-miss']]);
  });

  it('turns an unreachable server into a retriable error', async () => {
    const offline = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      const lookup = new RedisLookupSource({ client: offline });
      const failure: unknown = await lookup.get(['c1']).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(isDataflowError(failure, 'connector/failed')).toBe(true);
      expect(failure).toMatchObject({ retriable: true });
    } finally {
      offline.disconnect();
    }
  });
});
