/**
 * Metric families of the exposition formats: what `# HELP`, `# TYPE` and
 * `# UNIT` say, which sample names belong to a family (`_bucket`, `_sum`,
 * `_count`, `_total`, ...), the structural checks on histogram and summary
 * samples, and the unescaping of label values and HELP text.
 */
import { isNameContinue, isNameStart, isSpace } from './exposition-lexer.js';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'gaugehistogram' | 'summary' | 'untyped' | 'unknown' | 'info' | 'stateset';

/** What HELP / TYPE / UNIT said about a metric family. */
export interface MetricFamily {
  readonly type: MetricType;
  readonly help?: string;
  readonly unit?: string;
}

const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'gaugehistogram', 'summary', 'untyped', 'unknown', 'info', 'stateset']);
const TEXT_TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
/** Sample-name suffixes that belong to a family of the given type. */
const SUFFIXES: ReadonlyMap<string, readonly string[]> = new Map([
  ['counter', ['_total', '_created']],
  ['histogram', ['_bucket', '_sum', '_count', '_created']],
  ['gaugehistogram', ['_bucket', '_gsum', '_gcount']],
  ['summary', ['_sum', '_count', '_created']],
  ['info', ['_info']],
]);

/** A malformed line; the parser turns it into an `ExpositionError`. */
export class LineError extends Error {}

/** Mutable per-family state while parsing. */
export interface FamilyState {
  type: MetricType;
  help?: string;
  unit?: string;
  typeLine: number;
  helpLine: number;
  sawSample: boolean;
}

/** `# HELP`, `# TYPE`, `# UNIT` or a plain comment (ignored). `i` is just after the `#`. */
export function parseComment(text: string, i: number, end: number, families: Map<string, FamilyState>, lineNo: number, openMetrics: boolean): void {
  if (i >= end || !isSpace(text.charCodeAt(i))) {
    if (openMetrics) throw new LineError('a comment must be # HELP, # TYPE, # UNIT or # EOF in OpenMetrics');
    return;
  }
  while (i < end && isSpace(text.charCodeAt(i))) i++;
  const kwStart = i;
  while (i < end && !isSpace(text.charCodeAt(i))) i++;
  const keyword = text.slice(kwStart, i);
  if (keyword !== 'HELP' && keyword !== 'TYPE' && keyword !== 'UNIT') {
    if (openMetrics) throw new LineError(`unknown comment # ${keyword} in OpenMetrics`);
    return;
  }
  if (keyword === 'UNIT' && !openMetrics) return;
  while (i < end && isSpace(text.charCodeAt(i))) i++;
  const nameStart = i;
  if (i >= end || !isNameStart(text.charCodeAt(i), true)) throw new LineError(`# ${keyword} without a metric name`);
  while (i < end && isNameContinue(text.charCodeAt(i), true)) i++;
  const name = text.slice(nameStart, i);
  if (i < end && !isSpace(text.charCodeAt(i))) throw new LineError(`invalid metric name in # ${keyword}`);
  if (i < end) i++;
  const rest = text.slice(i, end);
  let family = families.get(name);
  if (family === undefined) {
    family = { type: openMetrics ? 'unknown' : 'untyped', typeLine: 0, helpLine: 0, sawSample: false };
    families.set(name, family);
  }
  if (keyword === 'HELP') {
    if (family.helpLine !== 0) throw new LineError(`second # HELP for ${name} (first on line ${family.helpLine})`);
    family.helpLine = lineNo;
    family.help = openMetrics ? unescapeLabelValue(rest) : unescapeHelp(rest);
  } else if (keyword === 'TYPE') {
    const type = rest.trim();
    if (!(openMetrics ? TYPES : TEXT_TYPES).has(type)) throw new LineError(`unknown metric type ${JSON.stringify(type)} for ${name}`);
    if (family.typeLine !== 0) throw new LineError(`second # TYPE for ${name} (first on line ${family.typeLine})`);
    if (family.sawSample) throw new LineError(`# TYPE for ${name} after its samples`);
    family.typeLine = lineNo;
    family.type = type as MetricType;
  } else {
    family.unit = rest.trim();
  }
}

/** The family a sample name belongs to (directly, or by a suffix of its type), and that suffix. */
export interface ResolvedFamily {
  readonly state: FamilyState;
  readonly suffix: string;
}

/** Finds (or, for an undeclared name, records as untyped) the family of a sample name. */
export function resolveFamily(name: string, families: Map<string, FamilyState>): ResolvedFamily {
  const direct = families.get(name);
  if (direct !== undefined && (direct.type === 'counter' || direct.type === 'gauge' || direct.type === 'untyped' || direct.type === 'unknown' || direct.type === 'stateset')) {
    return { state: direct, suffix: '' };
  }
  const cut = name.lastIndexOf('_');
  if (cut > 0) {
    const base = families.get(name.slice(0, cut));
    const suffix = name.slice(cut);
    if (base !== undefined && (SUFFIXES.get(base.type) ?? []).includes(suffix)) return { state: base, suffix };
  }
  if (direct !== undefined) return { state: direct, suffix: '' };
  // An undeclared family: remember it, so a # TYPE for it later is reported as coming after its samples.
  const state: FamilyState = { type: 'untyped', typeLine: 0, helpLine: 0, sawSample: false };
  families.set(name, state);
  return { state, suffix: '' };
}

/** Checks histogram / summary samples carry `le` / `quantile`, and marks the family as having samples. */
export function checkSample(name: string, labels: Readonly<Record<string, string>>, family: ResolvedFamily): void {
  const { state, suffix } = family;
  state.sawSample = true;
  if (state.type === 'histogram' || state.type === 'gaugehistogram') {
    if (suffix === '_bucket' && labels.le === undefined) throw new LineError(`histogram bucket ${name} without an le label`);
    if (suffix === '') throw new LineError(`histogram ${name} sample must be _bucket, _sum or _count`);
  } else if (state.type === 'summary' && suffix === '' && labels.quantile === undefined) {
    throw new LineError(`summary ${name} sample without a quantile label`);
  }
}

/**
 * Label values (and OpenMetrics HELP): `\\`, `\"` and `\n` are escapes; a
 * backslash before any other character is kept with it, as Prometheus does.
 */
export function unescapeLabelValue(raw: string): string {
  let out = '';
  let from = 0;
  for (let i = raw.indexOf('\\'); i >= 0; i = raw.indexOf('\\', from)) {
    const next = raw.charCodeAt(i + 1);
    out += raw.slice(from, i);
    if (next === 110 /* n */) out += '\n';
    else if (next === 92 || next === 34) out += raw[i + 1];
    else out += raw.slice(i, i + 2);
    from = i + 2;
    if (from >= raw.length) break;
  }
  return from >= raw.length ? out : out + raw.slice(from);
}

/** Text-format HELP: only `\\` and `\n` are escapes. */
function unescapeHelp(raw: string): string {
  return raw.replace(/\\([\\n])/g, (_, c: string) => (c === 'n' ? '\n' : '\\'));
}
