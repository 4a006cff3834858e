import { describe, expect, it } from 'vitest';
import { platformaticRetryDelay } from './platformatic-client.js';

describe('platformatic client retry backoff', () => {
  it('starts at 20 ms and doubles up to 1 s instead of the library default of a fixed second', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((attempt) => platformaticRetryDelay(undefined, 'produce', attempt))).toEqual([20, 40, 80, 160, 320, 640, 1000, 1000]);
  });
});
