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

  it('fails with SerializationError on bytes that are not its JSON', () => {
    expect(() => json.deserialize(new Uint8Array([0xff, 0xfe]), manifest)).toThrowError(/Sample@v1/);
    expect(() => json.deserialize(new TextEncoder().encode('{"$df":"mystery","v":1}'), manifest)).toThrowError(/unknown tagged value/);
  });
});
