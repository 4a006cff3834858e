import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

describe('Redis round trip (real server)', () => {
  let client: Redis;
  let prefix: string;

  beforeAll(() => {
    client = new Redis(serviceSettings().redisUrl, { maxRetriesPerRequest: 1 });
    prefix = `${testNamespace(import.meta.url)}:`;
  });

  afterAll(async () => {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
    await client.quit();
  });

  it('sets, gets and deletes keys under the file namespace', async () => {
    const key = `${prefix}greeting`;
    expect(await client.set(key, 'hello')).toBe('OK');
    expect(await client.get(key)).toBe('hello');
    expect(await client.mget(key, `${prefix}missing`)).toEqual(['hello', null]);
    expect(await client.del(key)).toBe(1);
    expect(await client.get(key)).toBeNull();
    expect(await client.del(key)).toBe(0);
  });

  it('expires keys with a TTL', async () => {
    const key = `${prefix}ttl`;
    await client.set(key, 'x', 'PX', 60_000);
    const ttl = await client.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });
});
