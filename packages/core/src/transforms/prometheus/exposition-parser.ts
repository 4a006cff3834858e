/**
 * A parser of Prometheus exposition text: the text format 0.0.4 and
 * OpenMetrics 1.0. Pure (no I/O), single pass, scanning character codes of
 * the input in place instead of running a regular expression per line.
 *
 * Every sample becomes a record `{ metric_name, labels, value, timestamp,
 * job, instance }`; every line that cannot be read becomes an
 * `ExpositionError` with its line number and reason (for the dead-letter
 * queue) while the rest of the input is still parsed. Label sets inherit
 * nothing (their only prototype is an empty, frozen, null-prototype object),
 * so a label named `__proto__` or `constructor` is an ordinary label. Input
 * is bounded: lines longer than `maxLineLength` and samples with more than
 * `maxLabels` labels are rejected as errors.
 *
 * Speed (see `src/bench/exposition-parser.bench.ts`): consecutive lines
 * mostly repeat the previous metric and label names, which are compared in
 * place and their strings reused; label values end at the next quote found
 * by `indexOf` when the line has no backslash; values with up to 15
 * significant digits are computed without `Number()`; and with a
 * `SeriesCache`, series already seen in the previous scrape of the target
 * are not parsed again.
 */
import { checkSample, LineError, parseComment, resolveFamily, unescapeLabelValue, type FamilyState, type MetricFamily, type ResolvedFamily } from './exposition-families.js';
import { isNameContinue, isNameStart, isSpace, parseFloatToken, parseTimestampToken, type TimestampResult } from './exposition-lexer.js';
import type { SeriesCache } from './series-cache.js';

export { unescapeLabelValue, type MetricFamily, type MetricType } from './exposition-families.js';
export { SeriesCache } from './series-cache.js';

/** One sample. `labels` inherits nothing (no `Object.prototype` in its chain; see `Labels`). */
export interface PrometheusSample {
  readonly metric_name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** May be NaN or ±Infinity. */
  readonly value: number;
  /** Epoch milliseconds: the exposition timestamp when the line has one, else the scrape time. */
  readonly timestamp: number;
  readonly job: string;
  readonly instance: string;
}

/** A line that could not be parsed. */
export interface ExpositionError {
  /** 1-based line number. */
  readonly line: number;
  readonly reason: string;
  /** The line (at most the first 256 characters). */
  readonly text: string;
}

export interface ExpositionParseOptions {
  readonly job: string;
  readonly instance: string;
  /** Scrape time, epoch ms: the timestamp of samples without one. */
  readonly scrapeTimestampMs: number;
  /** `openmetrics` requires the `# EOF` line and reads timestamps as seconds; default: OpenMetrics when the input ends with `# EOF`. */
  readonly format?: 'text' | 'openmetrics';
  /** Longest line accepted, in characters. Default 65 536. */
  readonly maxLineLength?: number;
  /** Most labels on one sample. Default 128. */
  readonly maxLabels?: number;
  /** Errors kept in the result (later ones are only counted). Default 1 000. */
  readonly maxErrors?: number;
  /**
   * Series seen in earlier scrapes of the same target (see `SeriesCache`):
   * a line whose `name{labels}` text was parsed before reuses that name and
   * (frozen) label set instead of parsing them again.
   */
  readonly seriesCache?: SeriesCache;
}

export interface ExpositionParseResult {
  readonly samples: PrometheusSample[];
  readonly errors: ExpositionError[];
  /** Errors beyond `maxErrors`, counted but not kept. */
  readonly droppedErrors: number;
  readonly families: ReadonlyMap<string, MetricFamily>;
  readonly format: 'text' | 'openmetrics';
}

/**
 * Label sets: objects whose prototype chain holds nothing but one empty,
 * frozen, null-prototype object (never `Object.prototype`), so `__proto__`,
 * `constructor` or `toString` are ordinary own labels and nothing is
 * inherited. Unlike `Object.create(null)` objects, which V8 keeps as hash
 * tables, these get V8's fast shared layouts (label sets with the same names
 * share one), which makes building them several times cheaper.
 */
const Labels = function Labels(): void {} as unknown as new () => object;
Labels.prototype = Object.freeze(Object.create(null) as object);

/** Index of `search` in `text` from `from`, or the text's length when there is none. */
function indexOrEnd(text: string, search: string, from: number): number {
  const at = text.indexOf(search, from);
  return at < 0 ? text.length : at;
}

/**
 * Parses exposition text. Never throws for malformed input: bad lines are
 * returned in `errors`.
 *
 * @example
 * ```ts
 * const { samples, errors } = parseExposition('# TYPE up gauge\nup{job="node"} 1\n', { job: 'node', instance: 'host:9100', scrapeTimestampMs: Date.now() });
 * ```
 */
export function parseExposition(text: string, options: ExpositionParseOptions): ExpositionParseResult {
  const format = options.format ?? (/(^|\n)# EOF\s*$/.test(text.slice(-64)) ? 'openmetrics' : 'text');
  const openMetrics = format === 'openmetrics';
  const maxLineLength = options.maxLineLength ?? 65_536;
  const maxLabels = options.maxLabels ?? 128;
  const maxErrors = options.maxErrors ?? 1_000;
  const { job, instance, scrapeTimestampMs } = options;
  const samples: PrometheusSample[] = [];
  const errors: ExpositionError[] = [];
  let droppedErrors = 0;
  const families = new Map<string, FamilyState>();
  let eofLine = 0;
  let lineNo = 0;
  let pos = 0;
  const length = text.length;
  const ts: TimestampResult = { value: 0 };
  /** The previous sample's name, label names and family: most lines repeat them. */
  const prev: { name: string; labelNames: string[]; family: ResolvedFamily | undefined } = { name: '', labelNames: [], family: undefined };
  // Next backslash / quote at or after the scan position (searched lazily, so the input is searched once, not once per line).
  let nextBackslash = -1;
  let nextQuote = -1;
  const cache = options.seriesCache;
  let seriesPosition = 0;

  const fail = (start: number, end: number, reason: string): void => {
    if (errors.length < maxErrors) errors.push({ line: lineNo, reason, text: text.slice(start, Math.min(end, start + 256)) });
    else droppedErrors += 1;
  };

  while (pos < length) {
    lineNo += 1;
    let end = text.indexOf('\n', pos);
    if (end < 0) end = length;
    const start = pos;
    pos = end + 1;
    let lineEnd = end;
    if (lineEnd > start && text.charCodeAt(lineEnd - 1) === 13) lineEnd -= 1;
    if (lineEnd - start > maxLineLength) {
      fail(start, lineEnd, `line longer than ${maxLineLength} characters`);
      continue;
    }
    if (eofLine !== 0) {
      if (lineEnd > start) fail(start, lineEnd, `content after # EOF (line ${eofLine})`);
      continue;
    }
    let i = start;
    while (i < lineEnd && isSpace(text.charCodeAt(i))) i++;
    if (i === lineEnd) {
      if (openMetrics && end < length) fail(start, lineEnd, 'empty line (not allowed in OpenMetrics)');
      continue;
    }
    try {
      if (text.charCodeAt(i) === 35 /* # */) {
        if (openMetrics && lineEnd - i === 5 && text.startsWith('# EOF', i)) {
          eofLine = lineNo;
          continue;
        }
        prev.family = undefined;
        parseComment(text, i + 1, lineEnd, families, lineNo, openMetrics);
        continue;
      }
      // The series at this position in the previous scrape, if the line starts with exactly its text.
      const position = seriesPosition++;
      let cached = cache?.at(position);
      if (cached !== undefined) {
        const keyEnd = i + cached.key.length;
        if (keyEnd < lineEnd && isSpace(text.charCodeAt(keyEnd)) && text.slice(i, keyEnd) === cached.key) i = keyEnd;
        else cached = undefined;
      }
      let name: string;
      let labels: Record<string, string>;
      if (cached !== undefined) {
        name = cached.name;
        labels = cached.labels;
      } else {
        const seriesStart = i;
        // Metric name: consecutive samples usually repeat the previous name (a family's series, a histogram's
        // buckets), so try that first and reuse its string; otherwise scan and slice. (Comparing a slice with ===
        // is a memcmp; String.prototype.startsWith with a position is several times slower in V8.)
        const prevLen = prev.name.length;
        const after = text.charCodeAt(i + prevLen);
        if (prevLen > 0 && (after === 123 || after === 32 || after === 9) && text.slice(i, i + prevLen) === prev.name) {
          name = prev.name;
          i += prevLen;
        } else {
          const nameStart = i;
          if (!isNameStart(text.charCodeAt(i), true)) throw new LineError('expected a metric name');
          i++;
          while (i < lineEnd && isNameContinue(text.charCodeAt(i), true)) i++;
          name = text.slice(nameStart, i);
        }
        labels = new Labels() as Record<string, string>;
        const labelNames: string[] = [];
        if (i < lineEnd && text.charCodeAt(i) === 123 /* { */) {
          i++;
          // Escapes are rare: when the line has no backslash, a label value ends at the next quote.
          if (nextBackslash < i) nextBackslash = indexOrEnd(text, '\\', i);
          const backslash = nextBackslash < lineEnd ? nextBackslash : -1;
          for (;;) {
            while (i < lineEnd && isSpace(text.charCodeAt(i))) i++;
            if (i >= lineEnd) throw new LineError('unterminated label set');
            if (text.charCodeAt(i) === 125 /* } */) {
              i++;
              break;
            }
            let labelName: string;
            const k = labelNames.length;
            const known = k < prev.labelNames.length ? (prev.labelNames[k] as string) : '';
            if (known !== '' && text.charCodeAt(i + known.length) === 61 && text.slice(i, i + known.length) === known) {
              labelName = known;
              i += known.length;
            } else {
              const labelStart = i;
              if (!isNameStart(text.charCodeAt(i), false)) throw new LineError('expected a label name');
              i++;
              while (i < lineEnd && isNameContinue(text.charCodeAt(i), false)) i++;
              labelName = text.slice(labelStart, i);
              while (i < lineEnd && isSpace(text.charCodeAt(i))) i++;
            }
            if (text.charCodeAt(i) !== 61 /* = */) throw new LineError(`expected = after label ${labelName}`);
            i++;
            while (i < lineEnd && isSpace(text.charCodeAt(i))) i++;
            if (text.charCodeAt(i) !== 34 /* " */) throw new LineError(`expected a quoted value for label ${labelName}`);
            i++;
            const valueStart = i;
            let escaped = false;
            if (backslash < 0) {
              if (nextQuote < i) nextQuote = indexOrEnd(text, '"', i);
              i = nextQuote;
              if (i >= lineEnd) throw new LineError(`unterminated value of label ${labelName}`);
            } else {
              while (i < lineEnd) {
                const c = text.charCodeAt(i);
                if (c === 34) break;
                if (c === 92 /* \ */) {
                  escaped = true;
                  i += 2;
                } else i++;
              }
              if (i >= lineEnd) throw new LineError(`unterminated value of label ${labelName}`);
            }
            const raw = text.slice(valueStart, i);
            i++;
            if (labelName in labels) throw new LineError(`duplicate label ${labelName}`);
            if (labelNames.push(labelName) > maxLabels) throw new LineError(`more than ${maxLabels} labels`);
            labels[labelName] = escaped ? unescapeLabelValue(raw) : raw;
            while (i < lineEnd && isSpace(text.charCodeAt(i))) i++;
            const sep = text.charCodeAt(i);
            if (sep === 44 /* , */) i++;
            else if (sep !== 125) throw new LineError('expected , or } in the label set');
          }
        }
        prev.labelNames = labelNames;
        // The key is copied (structuredClone makes a string of its own): a slice would keep this whole scrape alive.
        if (cache !== undefined) cache.remember(position, { key: structuredClone(text.slice(seriesStart, i)), name, labels: Object.freeze(labels) });
      }
      // Value.
      if (i >= lineEnd || !isSpace(text.charCodeAt(i))) throw new LineError('expected a space and a value after the metric');
      while (i < lineEnd && isSpace(text.charCodeAt(i))) i++;
      const valueStart = i;
      while (i < lineEnd && !isSpace(text.charCodeAt(i))) i++;
      const value = parseFloatToken(text, valueStart, i);
      if (value === undefined) throw new LineError(`invalid value ${JSON.stringify(text.slice(valueStart, i))}`);
      // Optional timestamp, then (OpenMetrics) an optional exemplar.
      while (i < lineEnd && isSpace(text.charCodeAt(i))) i++;
      let timestamp = scrapeTimestampMs;
      if (i < lineEnd && text.charCodeAt(i) !== 35) {
        const tsStart = i;
        while (i < lineEnd && !isSpace(text.charCodeAt(i))) i++;
        const reason = parseTimestampToken(text, tsStart, i, openMetrics, ts);
        if (reason !== undefined) throw new LineError(reason);
        timestamp = ts.value;
        while (i < lineEnd && isSpace(text.charCodeAt(i))) i++;
      }
      if (i < lineEnd && !(openMetrics && text.charCodeAt(i) === 35)) throw new LineError('unexpected text after the value and timestamp');
      if (name !== prev.name || prev.family === undefined) {
        prev.family = resolveFamily(name, families);
        prev.name = name;
      }
      checkSample(name, labels, prev.family);
      samples.push({ metric_name: name, labels, value, timestamp, job, instance });
    } catch (error) {
      if (!(error instanceof LineError)) throw error;
      fail(start, lineEnd, error.message);
    }
  }
  if (openMetrics && eofLine === 0) {
    lineNo += 1;
    fail(length, length, 'missing # EOF at the end of OpenMetrics input');
  }
  const publicFamilies = new Map<string, MetricFamily>();
  for (const [name, f] of families) {
    publicFamilies.set(name, { type: f.type, ...(f.help === undefined ? {} : { help: f.help }), ...(f.unit === undefined ? {} : { unit: f.unit }) });
  }
  return { samples, errors, droppedErrors, families: publicFamilies, format };
}
