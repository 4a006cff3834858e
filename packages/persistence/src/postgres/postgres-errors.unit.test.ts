import { describe, expect, it } from 'vitest';
import { errorCode, isRetriableDbError } from './postgres-errors.js';

const withCode = (code: string): Error => Object.assign(new Error(`failed with ${code}`), { code });

describe('isRetriableDbError', () => {
  it.each(['40001', '40P01', '08006', '08001', '57P01', '53300', 'ECONNREFUSED', 'ECONNRESET'])('treats %s as retriable', (code) => {
    expect(isRetriableDbError(withCode(code))).toBe(true);
  });

  it.each(['23505', '42P01', '22P02', '42601'])('treats %s as permanent', (code) => {
    expect(isRetriableDbError(withCode(code))).toBe(false);
  });

  it('treats a connection pg reports as terminated as retriable, other plain errors as permanent', () => {
    expect(isRetriableDbError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isRetriableDbError(new Error('something else'))).toBe(false);
    expect(isRetriableDbError('not an error')).toBe(false);
  });

  it('reads the code only when it is a string', () => {
    expect(errorCode({ code: 42 })).toBeUndefined();
    expect(errorCode(null)).toBeUndefined();
    expect(errorCode(withCode('40001'))).toBe('40001');
  });
});
