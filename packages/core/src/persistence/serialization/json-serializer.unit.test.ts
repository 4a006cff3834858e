import { describe, expect, it } from 'vitest';
import { isDataflowError } from '../../errors/dataflow-error.js';
import { JsonSerializer } from './json-serializer.js';

const manifest = { eventType: 'Sample', schemaVersion: 1 };
const json = new JsonSerializer();
const roundTrip = (value: unknown): unknown => json.deserialize(json.serialize(value, manifest), manifest);

describe('JsonSerializer', () => {
  it('round-trips JSON values and unicode strings, including NUL', () => {
    const value = { s: 'emoji 🎉 rtl שלום مرحبا nul \u0000 end', n: 1.5, b: true, z: null, list: [1, 'two', { three: 3 }] };
    expect(roundTrip(value)).toEqual(value);
  });

  it('round-trips binary data as Uint8Array', () => {
    const bytes = new Uint8Array(256).map((_, i) => i);
    const back = roundTrip({ data: bytes, buf: Buffer.from([9, 8, 7]) }) as { data: Uint8Array; buf: Uint8Array };
    expect(back.data).toBeInstanceOf(Uint8Array);
    expect([...back.data]).toEqual([...bytes]);
    expect([...back.buf]).toEqual([9, 8, 7]);
  });

  it('keeps values plain JSON would change: bigint, Date, NaN, infinities and -0', () => {
    const back = roundTrip({ big: 2n ** 70n, at: new Date(1_700_000_000_123), nan: Number.NaN, inf: Infinity, ninf: -Infinity, nz: -0 }) as Record<string, unknown>;
    expect(back['big']).toBe(2n ** 70n);
    expect(back['at']).toEqual(new Date(1_700_000_000_123));
    expect(back['nan']).toBeNaN();
    expect(back['inf']).toBe(Infinity);
    expect(back['ninf']).toBe(-Infinity);
    expect(Object.is(back['nz'], -0)).toBe(true);
  });

  it('escapes user objects that use the tag key, and keeps a __proto__ key as data', () => {
    const value = JSON.parse('{"$df":"bytes","v":"AAEC","__proto__":{"polluted":true}}') as unknown;
    const back = roundTrip(value) as Record<string, unknown>;
    expect(back['$df']).toBe('bytes');
    expect(back['v']).toBe('AAEC');
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.hasOwn(back, '__proto__')).toBe(true);
  });

  it('drops undefined members and turns undefined array items into null, as JSON does', () => {
    expect(roundTrip({ a: undefined, b: [undefined, 1] })).toEqual({ b: [null, 1] });
  });

  it('refuses values it would otherwise silently lose', () => {
    for (const value of [new Map([[1, 2]]), new Set([1]), () => 1, Symbol('s'), new Float64Array(2), new Date(Number.NaN)]) {
      let caught: unknown;
      try {
        json.serialize({ value }, manifest);
      } catch (error) {
        caught = error;
      }
      expect(isDataflowError(caught, 'serialization/failed')).toBe(true);
    }
  });

  it('refuses undefined as the whole payload instead of storing 0 bytes no replay can read', () => {
    expect(() => json.serialize(undefined, manifest)).toThrowError(/Sample@v1: undefined cannot be stored/);
    expect(isDataflowError(failure(() => json.serialize(undefined, manifest)), 'serialization/failed')).toBe(true);
  });

  it('refuses an Error, RegExp or promise anywhere in a payload instead of storing it as {}', () => {
    for (const value of [new Error('boom'), new TypeError('bad'), /x+/g, Promise.resolve(1), new WeakMap(), new WeakSet()]) {
      for (const payload of [value, { nested: { value } }, [1, value]]) {
        const caught = failure(() => json.serialize(payload, manifest));
        expect(isDataflowError(caught, 'serialization/failed')).toBe(true);
        expect((caught as Error).message).toMatch(/cannot be serialized as JSON/);
      }
    }
  });

  it('refuses cyclic values with SerializationError and keeps shared (acyclic) references', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic['self'] = { back: cyclic };
    const list: unknown[] = [1];
    list.push(list);
    for (const payload of [cyclic, list]) {
      const caught = failure(() => json.serialize(payload, manifest));
      expect(isDataflowError(caught, 'serialization/failed')).toBe(true);
      expect((caught as Error).message).toMatch(/cyclic/);
    }
    const shared = { n: 1 };
    expect(roundTrip({ a: shared, b: [shared, shared] })).toEqual({ a: { n: 1 }, b: [{ n: 1 }, { n: 1 }] });
  });

  it('fails with SerializationError on bytes that are not its JSON', () => {
    expect(() => json.deserialize(new Uint8Array([0xff, 0xfe]), manifest)).toThrowError(/Sample@v1/);
    expect(() => json.deserialize(new TextEncoder().encode('{"$df":"mystery","v":1}'), manifest)).toThrowError(/unknown tagged value/);
  });
});

function failure(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}
