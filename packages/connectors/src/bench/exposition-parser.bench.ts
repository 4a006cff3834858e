/**
 * Benchmark of the Prometheus exposition parser against the seed's approach:
 * the old job parsed each scraped page with one regular expression per line
 * (name, optional `{...}`, value, optional timestamp) and a second global
 * regular expression over the label text, skipping `#` lines. That baseline
 * is re-implemented here (`parseWithRegex`) so both run in the same process
 * on the same input: node_exporter-sized pages generated deterministically
 * (`generateNodeExporterText`, ~1 000 samples each). Reports lines per second
 * of each, and the ratio as the median of alternating measured pairs (the
 * machine is shared; one pair is noisy). Both must return every sample
 * (0 dropped) and the same values, or the run fails.
 *
 *   npx tsx --conditions=@dataflow/source src/bench/exposition-parser.bench.ts [pages] [rounds]
 */
import { pathToFileURL } from 'node:url';
import { parseExposition, SeriesCache, type PrometheusSample } from '@dataflow/core';
import { generateNodeExporterText, type GeneratedPage } from '@dataflow/core/testing';

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+(-?\d+))?\s*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;
const ESCAPE = /\\(["\\n])/g;
const SPECIAL = new Map([
  ['NaN', Number.NaN],
  ['+Inf', Number.POSITIVE_INFINITY],
  ['-Inf', Number.NEGATIVE_INFINITY],
]);

/** The seed's approach: split into lines, one regex per line, a global regex for the labels. Returns samples and the count of lines it could not read. */
export function parseWithRegex(text: string, job: string, instance: string, scrapeTimestampMs: number): { samples: PrometheusSample[]; dropped: number } {
  const samples: PrometheusSample[] = [];
  let dropped = 0;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (m === null) {
      dropped++;
      continue;
    }
    const labels: Record<string, string> = {};
    if (m[2] !== undefined) for (const l of m[2].matchAll(LABEL)) labels[l[1] as string] = (l[2] as string).replace(ESCAPE, (_, c: string) => (c === 'n' ? '\n' : c));
    const raw = m[3] as string;
    const value = SPECIAL.get(raw) ?? Number(raw);
    samples.push({ metric_name: m[1] as string, labels, value, timestamp: m[4] === undefined ? scrapeTimestampMs : Number(m[4]), job, instance });
  }
  return { samples, dropped };
}

export interface ParserBenchResult {
  readonly pages: number;
  readonly lines: number;
  readonly samples: number;
  readonly regexLinesPerSecond: number;
  /** Each page parsed on its own (a first scrape). */
  readonly parserLinesPerSecond: number;
  /** Pages parsed as successive scrapes of one target, sharing a `SeriesCache` (how the scrape source parses). */
  readonly cachedParserLinesPerSecond: number;
  /** Medians over the rounds of parser / regex throughput. */
  readonly ratio: number;
  readonly cachedRatio: number;
  readonly regexDropped: number;
  readonly parserDropped: number;
  readonly rounds: number;
}

function sameSample(a: PrometheusSample, b: PrometheusSample): boolean {
  const sameValue = Object.is(a.value, b.value) || (Number.isNaN(a.value) && Number.isNaN(b.value));
  return a.metric_name === b.metric_name && sameValue && a.timestamp === b.timestamp && JSON.stringify({ ...a.labels }) === JSON.stringify({ ...b.labels });
}

/** Runs the benchmark (see the module comment); throws when a parser drops or changes samples. */
export function runParserBench(pageCount = 100, rounds = 7): ParserBenchResult {
  const pages: GeneratedPage[] = Array.from({ length: pageCount }, (_, i) => generateNodeExporterText(i + 1));
  const lines = pages.reduce((n, p) => n + p.lines, 0);
  const expected = pages.reduce((n, p) => n + p.samples, 0);
  const scrape = 1_733_300_000_000;

  let regexDropped = 0;
  let parserDropped = 0;
  const cache = new SeriesCache();
  const timed = (parse: (p: GeneratedPage) => { count: number; dropped: number }, drop: (n: number) => void): number => {
    const t0 = process.hrtime.bigint();
    let count = 0;
    for (const p of pages) {
      const r = parse(p);
      count += r.count;
      drop(r.dropped);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    drop(expected - count);
    return lines / seconds;
  };
  const dropRegex = (n: number): void => {
    regexDropped = Math.max(regexDropped, n);
  };
  const dropParser = (n: number): void => {
    parserDropped = Math.max(parserDropped, n);
  };
  const runRegex = (): number =>
    timed((p) => {
      const r = parseWithRegex(p.text, 'node', 'host:9100', scrape);
      return { count: r.samples.length, dropped: r.dropped };
    }, dropRegex);
  const runParser = (seriesCache?: SeriesCache): number =>
    timed((p) => {
      const r = parseExposition(p.text, { job: 'node', instance: 'host:9100', scrapeTimestampMs: scrape, format: 'text', ...(seriesCache === undefined ? {} : { seriesCache }) });
      return { count: r.samples.length, dropped: r.errors.length + r.droppedErrors };
    }, dropParser);

  // Same output from all three on every page (values, labels, timestamps), before anything is timed.
  const check = new SeriesCache();
  for (let round = 0; round < 2; round++) {
    for (const p of pages) {
      const a = parseWithRegex(p.text, 'node', 'host:9100', scrape).samples;
      const b = parseExposition(p.text, { job: 'node', instance: 'host:9100', scrapeTimestampMs: scrape }).samples;
      const c = parseExposition(p.text, { job: 'node', instance: 'host:9100', scrapeTimestampMs: scrape, seriesCache: check }).samples;
      if (a.length !== p.samples || b.length !== p.samples || c.length !== p.samples || a.some((s, i) => !sameSample(s, b[i] as PrometheusSample) || !sameSample(s, c[i] as PrometheusSample))) {
        throw new Error(`the parsers disagree on a page: regex ${a.length}, parser ${b.length}, cached ${c.length}, expected ${p.samples} samples`);
      }
    }
  }
  runRegex();
  runParser();
  runParser(cache);
  const regexRates: number[] = [];
  const parserRates: number[] = [];
  const cachedRates: number[] = [];
  const ratios: number[] = [];
  const cachedRatios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate the order so drift on the shared machine does not favour one side.
    const order = r % 2 === 0 ? ['regex', 'parser', 'cached'] : ['cached', 'parser', 'regex'];
    const rate = new Map<string, number>();
    for (const which of order) rate.set(which, which === 'regex' ? runRegex() : which === 'parser' ? runParser() : runParser(cache));
    const regex = rate.get('regex') as number;
    regexRates.push(regex);
    parserRates.push(rate.get('parser') as number);
    cachedRates.push(rate.get('cached') as number);
    ratios.push((rate.get('parser') as number) / regex);
    cachedRatios.push((rate.get('cached') as number) / regex);
  }
  const median = (xs: number[]): number => {
    const s = [...xs].sort((x, y) => x - y);
    return s[Math.floor(s.length / 2)] as number;
  };
  if (regexDropped !== 0 || parserDropped !== 0) throw new Error(`samples dropped: regex ${regexDropped}, parser ${parserDropped}`);
  return {
    pages: pageCount,
    lines,
    samples: expected,
    regexLinesPerSecond: median(regexRates),
    parserLinesPerSecond: median(parserRates),
    cachedParserLinesPerSecond: median(cachedRates),
    ratio: median(ratios),
    cachedRatio: median(cachedRatios),
    regexDropped,
    parserDropped,
    rounds,
  };
}

function main(): void {
  const pages = Number(process.argv[2] ?? 100);
  const rounds = Number(process.argv[3] ?? 7);
  const r = runParserBench(pages, rounds);
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
  const out = [
    `exposition parser: ${r.pages} node_exporter-sized pages, ${fmt(r.lines)} lines, ${fmt(r.samples)} samples, median of ${r.rounds} rounds`,
    '| parser | lines/s | samples dropped |',
    '|---|---:|---:|',
    `| seed regex per line | ${fmt(r.regexLinesPerSecond)} | ${r.regexDropped} |`,
    `| exposition parser, each page alone | ${fmt(r.parserLinesPerSecond)} | ${r.parserDropped} |`,
    `| exposition parser, successive scrapes (series cache) | ${fmt(r.cachedParserLinesPerSecond)} | ${r.parserDropped} |`,
    `ratio to regex: each page alone ${r.ratio.toFixed(2)}x, successive scrapes ${r.cachedRatio.toFixed(2)}x (goal >= 3x)`,
    JSON.stringify({ bench: 'exposition-parser', ...r }),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
