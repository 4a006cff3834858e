/**
 * Character classes and number tokens of the Prometheus exposition formats,
 * working on character codes of the input in place (no substrings unless a
 * token is valid).
 */

/** Space or tab (the separators of the exposition formats). */
export function isSpace(c: number): boolean {
  return c === 32 || c === 9;
}

/** First character of a metric name (`[a-zA-Z_:]`) or, with `metric` false, of a label name (`[a-zA-Z_]`). */
export function isNameStart(c: number, metric: boolean): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || (metric && c === 58);
}

/** Later characters of a metric name (`[a-zA-Z0-9_:]`) or label name (`[a-zA-Z0-9_]`). */
export function isNameContinue(c: number, metric: boolean): boolean {
  return isNameStart(c, metric) || (c >= 48 && c <= 57);
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

const POWERS_OF_TEN = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * Reads `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?` spanning
 * exactly [start, end). Returns undefined when the token is not that. With at
 * most 15 significant digits and a decimal exponent within ±22 the value is
 * computed directly (an exact integer times or divided by an exact power of
 * ten rounds correctly: Clinger's fast path); otherwise `Number` reads it.
 */
function readDecimal(text: string, start: number, end: number): number | undefined {
  let i = start;
  let negative = false;
  const first = text.charCodeAt(i);
  if (first === 43 || first === 45) {
    negative = first === 45;
    i++;
  }
  let mantissa = 0;
  let digits = 0;
  let significant = 0;
  let scale = 0;
  while (i < end) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) break;
    if (significant > 0 || d !== 0) significant++;
    mantissa = mantissa * 10 + d;
    digits++;
    i++;
  }
  if (i < end && text.charCodeAt(i) === 46 /* . */) {
    i++;
    while (i < end) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      if (significant > 0 || d !== 0) significant++;
      mantissa = mantissa * 10 + d;
      scale--;
      digits++;
      i++;
    }
  }
  if (digits === 0) return undefined;
  if (i < end && (text.charCodeAt(i) | 32) === 101 /* e/E */) {
    i++;
    let expNegative = false;
    const sign = text.charCodeAt(i);
    if (sign === 43 || sign === 45) {
      expNegative = sign === 45;
      i++;
    }
    let exp = 0;
    let expDigits = 0;
    while (i < end) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      exp = exp < 1e6 ? exp * 10 + d : exp;
      expDigits++;
      i++;
    }
    if (expDigits === 0) return undefined;
    scale += expNegative ? -exp : exp;
  }
  if (i !== end) return undefined;
  if (significant <= 15 && scale >= -22 && scale <= 22) {
    const value = scale >= 0 ? mantissa * (POWERS_OF_TEN[scale] as number) : mantissa / (POWERS_OF_TEN[-scale] as number);
    return negative ? -value : value;
  }
  return Number(text.slice(start, end));
}

/** Whether [start, end) is a decimal number token (see `readDecimal`). */
function isDecimal(text: string, start: number, end: number): boolean {
  return readDecimal(text, start, end) !== undefined;
}

const SPECIAL = new Map<string, number>([
  ['nan', Number.NaN],
  ['+nan', Number.NaN],
  ['-nan', Number.NaN],
  ['inf', Number.POSITIVE_INFINITY],
  ['+inf', Number.POSITIVE_INFINITY],
  ['-inf', Number.NEGATIVE_INFINITY],
  ['infinity', Number.POSITIVE_INFINITY],
  ['+infinity', Number.POSITIVE_INFINITY],
  ['-infinity', Number.NEGATIVE_INFINITY],
]);

/**
 * A sample value, as Go's `strconv.ParseFloat` reads it for Prometheus:
 * decimal floats, and NaN / Inf / Infinity with an optional sign in any
 * letter case. A decimal literal beyond the double range (`1e400`) is refused,
 * as Go reports it out of range. Returns undefined for anything else.
 */
export function parseFloatToken(text: string, start: number, end: number): number | undefined {
  if (end <= start) return undefined;
  const value = readDecimal(text, start, end);
  if (value !== undefined) return Number.isFinite(value) ? value : undefined;
  if (end - start > 9) return undefined;
  return SPECIAL.get(text.slice(start, end).toLowerCase());
}

/** Where `parseTimestampToken` puts the timestamp (reused to avoid an allocation per sample). */
export interface TimestampResult {
  value: number;
}

/**
 * An exposition timestamp, converted to epoch milliseconds into `out.value`:
 * an integer of milliseconds in the text format, a float of seconds in
 * OpenMetrics. Returns the reason when the token is not one.
 */
export function parseTimestampToken(text: string, start: number, end: number, openMetrics: boolean, out: TimestampResult): string | undefined {
  const token = text.slice(start, end);
  if (openMetrics) {
    if (!isDecimal(text, start, end)) return `invalid timestamp ${JSON.stringify(token)}`;
    const seconds = Number(token);
    const ms = seconds * 1000;
    if (!Number.isFinite(ms) || Math.abs(ms) > Number.MAX_SAFE_INTEGER) return `timestamp ${token} out of range`;
    out.value = ms;
    return undefined;
  }
  let i = start;
  const first = text.charCodeAt(i);
  if (first === 45 || first === 43) i++;
  if (i === end) return `invalid timestamp ${JSON.stringify(token)}`;
  for (; i < end; i++) if (!isDigit(text.charCodeAt(i))) return `invalid timestamp ${JSON.stringify(token)} (milliseconds as an integer)`;
  const ms = Number(token);
  if (!Number.isSafeInteger(ms)) return `timestamp ${token} out of range`;
  out.value = ms;
  return undefined;
}
