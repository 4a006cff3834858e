import { describe, expect, it } from 'vitest';
import { DataflowError, isDataflowError, isRetriable } from './dataflow-error.js';

class Flaky extends DataflowError<'test/flaky'> {
  constructor(cause?: unknown) {
    super('test/flaky', 'flaky', { retriable: true, cause });
  }
}

describe('DataflowError', () => {
  it('carries tag, retriable and cause', () => {
    const root = new Error('socket closed');
    const e = new Flaky(root);
    expect(e.tag).toBe('test/flaky');
    expect(e.retriable).toBe(true);
    expect(e.cause).toBe(root);
    expect(e.name).toBe('Flaky');
  });

  it('is recognised by tag, also across copies of the package (plain objects with the marker)', () => {
    expect(isDataflowError(new Flaky(), 'test/flaky')).toBe(true);
    expect(isDataflowError(new Flaky(), 'test/other')).toBe(false);
    const fromOtherCopy = { dataflowError: 'dataflow/v1', tag: 'test/flaky', retriable: true };
    expect(isDataflowError(fromOtherCopy, 'test/flaky')).toBe(true);
    expect(isDataflowError(new Error('x'))).toBe(false);
  });

  it('treats foreign errors as permanent', () => {
    expect(isRetriable(new Flaky())).toBe(true);
    expect(isRetriable(new Error('boom'))).toBe(false);
  });
});
