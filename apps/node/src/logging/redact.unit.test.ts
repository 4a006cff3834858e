/**
 * The redaction step every log line goes through before a transport: secret
 * fields masked at any depth and in any case, hostile values survived.
 */
import { describe, expect, it } from 'vitest';
import { redact } from './redact.js';

describe('redact', () => {
  it('masks secret-named fields at any depth, in any case, and keeps the others', () => {
    const out = redact({
      user: 'ann',
      password: 'p1',
      db: { Password: 'p2', DB_PASS: 'p3', client_secret: 's', nested: { accessToken: 't', 'x-api-key': 'k', apiKey: 'k2', AUTHORIZATION: 'Bearer b' } },
      list: [{ token: 't2', ok: 1 }],
      records_passed: 12,
    });
    expect(out).toEqual({
      user: 'ann',
      password: '***',
      db: { Password: '***', DB_PASS: '***', client_secret: '***', nested: { accessToken: '***', 'x-api-key': '***', apiKey: '***', AUTHORIZATION: '***' } },
      list: [{ token: '***', ok: 1 }],
      records_passed: 12,
    });
    expect(JSON.stringify(out)).not.toMatch(/p1|p2|p3|Bearer|"t2"|"k2"/);
  });

  it('masks secrets inside Maps, error causes and toJSON results', () => {
    const out = redact({ m: new Map([['token', 'x']]), e: new Error('failed', { cause: { password: 'y' } }), j: { toJSON: () => ({ secret: 'z' }) } });
    expect(JSON.stringify(out)).not.toMatch(/"x"|"y"|"z"/);
    expect(out).toMatchObject({ m: { token: '***' }, e: { name: 'Error', message: 'failed', cause: { password: '***' } }, j: { secret: '***' } });
  });

  it('cuts cycles but keeps a value referenced twice', () => {
    const shared = { n: 1 };
    const cyclic: Record<string, unknown> = { shared, again: shared };
    cyclic['self'] = cyclic;
    expect(redact(cyclic)).toEqual({ shared: { n: 1 }, again: { n: 1 }, self: '[Circular]' });
  });

  it('keeps __proto__ an ordinary field and pollutes nothing', () => {
    const hostile = JSON.parse('{"__proto__": {"polluted": true, "token": "t"}, "constructor": {"prototype": {"polluted": true}}}') as unknown;
    const out = redact(hostile) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":true,"token":"***"},"constructor":{"prototype":{"polluted":true}}}');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  it('caps depth, string size, array and object size', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 10_000; i++) deep = { d: deep };
    const cut = JSON.stringify(redact(deep));
    expect(cut).toContain('[too deep]');
    expect(cut.length).toBeLessThan(200);
    expect((redact('x'.repeat(1_000_000)) as string).length).toBeLessThan(8_300);
    expect(redact(Array.from({ length: 1_000 }, (_, i) => i), { maxItems: 3 })).toEqual([0, 1, 2, '... (997 more)']);
    const wide = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i]));
    const out = redact(wide, { maxItems: 2 });
    expect(out).toEqual({ k0: 0, k1: 1, '...': '99998 more keys' });
  });

  it('serializes values JSON.stringify rejects or blows up, and survives throwing getters and proxies', () => {
    const getter = Object.defineProperty({}, 'boom', { enumerable: true, get: () => { throw new Error('no access'); } });
    const proxy = new Proxy({}, { ownKeys: () => { throw new Error('trap'); } });
    const out = redact({ big: 10n ** 30n, buf: Buffer.alloc(1_000_000), date: new Date(0), bad: new Date(NaN), nan: NaN, fn: function named() {}, sym: Symbol('s'), getter, proxy, set: new Set([1]) });
    expect(() => JSON.stringify(out)).not.toThrow();
    expect(out).toEqual({
      big: '1000000000000000000000000000000',
      buf: '[Buffer 1000000 bytes]',
      date: '1970-01-01T00:00:00.000Z',
      bad: 'Invalid Date',
      nan: 'NaN',
      fn: '[function named]',
      sym: 'Symbol(s)',
      getter: '[unreadable: no access]',
      proxy: '[unreadable: trap]',
      set: [1],
    });
  });
});
