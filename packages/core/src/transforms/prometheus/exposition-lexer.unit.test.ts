import { describe, expect, it } from 'vitest';
import { parseFloatToken } from './exposition-lexer.js';

const read = (token: string): number | undefined => parseFloatToken(`x ${token} y`, 2, 2 + token.length);

/** Deterministic pseudo-random integers. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) % 2147483648);
}

describe('parseFloatToken', () => {
  it('equals Number() on many decimal spellings (the direct path rounds exactly like it)', () => {
    const next = lcg(42);
    for (let n = 0; n < 20_000; n++) {
      const intDigits = next() % 12;
      const fracDigits = next() % 12;
      const digits = (k: number): string => Array.from({ length: k }, () => String(next() % 10)).join('');
      let token = `${next() % 3 === 0 ? '-' : ''}${digits(intDigits)}${fracDigits > 0 || intDigits === 0 ? `.${digits(Math.max(1, fracDigits))}` : ''}`;
      if (next() % 4 === 0) token += `e${next() % 2 === 0 ? '-' : '+'}${next() % 30}`;
      expect(read(token), token).toBe(Number(token));
    }
  });

  it('reads long mantissas, big and tiny exponents through Number()', () => {
    for (const token of ['18446744073709551615', '0.1000000000000000055511151231257827', '1.7976931348623157e308', '5e-324', '123456789012345678e-40', '-0', '+.5', '7.']) {
      expect(read(token), token).toBe(Number(token));
    }
  });

  it('refuses what Prometheus refuses', () => {
    for (const token of ['', '.', '+', '1e', '1e+', '0x10', '1_000', '1.2.3', '--1', 'e5', '1e400', 'Infinite', 'nanx']) expect(read(token), token).toBeUndefined();
  });
});
