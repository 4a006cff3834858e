import { describe, expect, it } from 'vitest';
import { parseExposition, SeriesCache, type ExpositionParseOptions } from './exposition-parser.js';
import { generateNodeExporterText } from './node-exporter-fixture.js';

const opts: ExpositionParseOptions = { job: 'node', instance: 'h:9100', scrapeTimestampMs: 1 };
const plain = (samples: readonly { metric_name: string; labels: object; value: number }[]): unknown[] => samples.map((s) => [s.metric_name, { ...s.labels }, s.value]);

describe('SeriesCache', () => {
  it('gives the same samples as an uncached parse on successive scrapes, reusing frozen label sets', () => {
    const cache = new SeriesCache();
    const first = generateNodeExporterText(1).text;
    const second = generateNodeExporterText(2).text;
    const a = parseExposition(first, { ...opts, seriesCache: cache });
    const b = parseExposition(second, { ...opts, seriesCache: cache });
    expect(plain(a.samples)).toEqual(plain(parseExposition(first, opts).samples));
    expect(plain(b.samples)).toEqual(plain(parseExposition(second, opts).samples));
    expect(b.samples[10]?.labels).toBe(a.samples[10]?.labels);
    expect(Object.isFrozen(b.samples[10]?.labels)).toBe(true);
  });

  it('misses instead of matching a longer name, extra labels, a changed label value or shifted positions', () => {
    const cache = new SeriesCache();
    parseExposition('m 1\nx{a="1"} 2\ny{a="1"} 3\n', { ...opts, seriesCache: cache });
    const next = parseExposition('mm 1\nx{a="1",b="2"} 2\ny{a="12"} 3\nm 4\n', { ...opts, seriesCache: cache });
    expect(next.errors).toEqual([]);
    expect(plain(next.samples)).toEqual([
      ['mm', {}, 1],
      ['x', { a: '1', b: '2' }, 2],
      ['y', { a: '12' }, 3],
      ['m', {}, 4],
    ]);
  });

  it('still reports a bad value on a cached series, and stays bounded', () => {
    const cache = new SeriesCache(2);
    parseExposition('a{x="1"} 1\nb 2\nc 3\n', { ...opts, seriesCache: cache });
    expect(cache.size).toBe(2);
    const next = parseExposition('a{x="1"} oops\n', { ...opts, seriesCache: cache });
    expect(next.errors.map((e) => [e.line, e.reason])).toEqual([[1, 'invalid value "oops"']]);
  });
});
