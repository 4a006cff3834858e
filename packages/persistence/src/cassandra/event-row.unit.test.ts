import { createRequire } from 'node:module';
import { types } from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { isDataflowError } from '@dataflow/core';
import { bucketOf, parseManifest, partitionOf, TimeUuidSource, toNumber, toNumberMap } from './event-row.js';

describe('event rows', () => {
  it('puts sequence numbers 1..size in partition 0, the next size in partition 1', () => {
    expect([1, 5, 6, 10, 11].map((n) => partitionOf(n, 5))).toEqual([0, 0, 1, 1, 2]);
    expect(partitionOf(500_000, 500_000)).toBe(0);
    expect(partitionOf(500_001, 500_000)).toBe(1);
  });

  it('buckets time by the bucket width', () => {
    expect(bucketOf(0, 1000)).toBe(0);
    expect(bucketOf(999, 1000)).toBe(0);
    expect(bucketOf(1000, 1000)).toBe(1);
  });

  it('parses manifests written as Type@vN, including types that contain @v', () => {
    expect(parseManifest('PipelineCreated@v2')).toEqual({ eventType: 'PipelineCreated', schemaVersion: 2 });
    expect(parseManifest('odd@vname@v13')).toEqual({ eventType: 'odd@vname', schemaVersion: 13 });
    let caught: unknown;
    try {
      parseManifest('NoVersion');
    } catch (error) {
      caught = error;
    }
    expect(isDataflowError(caught, 'journal/read-failed')).toBe(true);
  });

  it('converts driver longs and maps of longs to numbers', () => {
    expect(toNumber(types.Long.fromNumber(2 ** 40))).toBe(2 ** 40);
    expect(toNumberMap({ a: types.Long.fromNumber(3), b: 4 })).toEqual(new Map([['a', 3], ['b', 4]]));
    expect(toNumberMap(null)).toEqual(new Map());
  });

  it('makes strictly increasing time uuids, also when the clock stands still or goes back', () => {
    let now = 1_700_000_000_000;
    const source = new TimeUuidSource(() => now);
    const ids: types.TimeUuid[] = [];
    for (let i = 0; i < 20_005; i++) ids.push(source.next());
    now -= 5000;
    ids.push(source.next());
    now += 10_000;
    ids.push(source.next());
    const keys = ids.map((id) => {
      const { date, ticks } = id.getDatePrecision();
      return BigInt(date.getTime()) * 10_000n + BigInt(ticks);
    });
    for (let i = 1; i < keys.length; i++) expect((keys[i] ?? 0n) > (keys[i - 1] ?? 0n)).toBe(true);
    expect(ids[0]?.getDate().getTime()).toBe(1_700_000_000_000);
  });

  it('stamps uuids with the time they carry, one random node per source, and no crypto call per uuid', () => {
    // The module object the driver calls `randomBytes` on (`require('crypto')`).
    const crypto = createRequire(import.meta.url)('node:crypto') as { randomBytes: (size: number) => Buffer };
    const a = new TimeUuidSource(() => 1_700_000_000_123);
    const b = new TimeUuidSource(() => 1_700_000_000_123);
    const first = a.stamp();
    expect(first.ms).toBe(1_700_000_000_123);
    expect(first.uuid.getDate().getTime()).toBe(first.ms);
    const node = (id: types.TimeUuid): string => id.getBuffer().subarray(8).toString('hex'); // clock sequence and node
    // The same node within a source, another one in the other source: equal times and ticks still give two uuids.
    expect(node(a.next())).toBe(node(first.uuid));
    expect(node(b.stamp().uuid)).not.toBe(node(first.uuid));
    const randomBytes = crypto.randomBytes;
    let calls = 0;
    const counting = ((...args: Parameters<typeof randomBytes>) => {
      calls++;
      return randomBytes(...args);
    }) as typeof randomBytes;
    Object.defineProperty(crypto, 'randomBytes', { value: counting, configurable: true, writable: true });
    try {
      for (let i = 0; i < 100; i++) a.next();
    } finally {
      Object.defineProperty(crypto, 'randomBytes', { value: randomBytes, configurable: true, writable: true });
    }
    expect(calls).toBe(0);
  });
});
