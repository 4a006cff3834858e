/**
 * Keeps the parser benchmark runnable: on a few pages, the seed's regex
 * approach and the parser (alone and with a series cache) return every
 * sample with the same values (the bench throws otherwise). No timing is
 * asserted; the speed goal is checked by running the bench.
 */
import { describe, expect, it } from 'vitest';
import { parseWithRegex, runParserBench } from '../bench/exposition-parser.bench.js';
import { parseExposition } from '@dataflow/core';

describe('exposition parser benchmark', () => {
  it('runs with 0 samples dropped by either parser', () => {
    const r = runParserBench(3, 1);
    expect(r.regexDropped).toBe(0);
    expect(r.parserDropped).toBe(0);
    expect(r.samples).toBeGreaterThan(2_000);
  });

  it('has a baseline that, like the seed job, mishandles __proto__ labels (why the parser uses objects that inherit nothing)', () => {
    const text = 'm{__proto__="x",a="1"} 1\n';
    expect(Object.keys(parseWithRegex(text, 'j', 'i', 0).samples[0]?.labels ?? {})).toEqual(['a']);
    expect(Object.keys(parseExposition(text, { job: 'j', instance: 'i', scrapeTimestampMs: 0 }).samples[0]?.labels ?? {})).toEqual(['__proto__', 'a']);
  });
});
