/**
 * CQL column types and the conversion of record values (JSON) to the values
 * the Cassandra driver binds for them (contract C6): a `double` takes a
 * number or "NaN" / "+Inf" / "-Inf", a `timestamp` epoch milliseconds or an
 * ISO-8601 string, a `map<text, text>` an object of strings. A value that
 * does not fit its column raises `CassandraValueError` with the reason; the
 * sink sends that record to the dead-letter queue.
 */
import type { JsonValue } from '@dataflow/core';
import { types } from 'cassandra-driver';

/** A parsed CQL type: `frozen<...>` is kept as a flag, since a frozen collection binds like a plain one. */
export type CqlType =
  | { readonly kind: 'scalar'; readonly name: ScalarName }
  | { readonly kind: 'list' | 'set'; readonly element: CqlType; readonly frozen: boolean }
  | { readonly kind: 'map'; readonly key: CqlType; readonly value: CqlType; readonly frozen: boolean };

const SCALARS = [
  'ascii', 'bigint', 'blob', 'boolean', 'date', 'decimal', 'double', 'float', 'inet', 'int', 'smallint', 'text', 'timestamp',
  'timeuuid', 'tinyint', 'uuid', 'varchar', 'varint',
] as const;
export type ScalarName = (typeof SCALARS)[number];
const SCALAR_SET: ReadonlySet<string> = new Set(SCALARS);
const TEXT_TYPES: ReadonlySet<string> = new Set(['text', 'varchar', 'ascii']);
const MAX_TYPE_DEPTH = 8;

/** The type text is not a CQL type the sink can bind. */
export class UnsupportedCqlTypeError extends Error {
  constructor(readonly typeText: string, reason: string) {
    super(`unsupported CQL type "${typeText.slice(0, 100)}": ${reason}`);
    this.name = 'UnsupportedCqlTypeError';
  }
}

/** A record value does not fit its column; the message is the reason given to the dead-letter queue. */
export class CassandraValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CassandraValueError';
  }
}

/**
 * Parses a CQL type as `system_schema.columns.type` spells it (`map<text, text>`,
 * `frozen<list<int>>`, `double`). Tuples, UDTs, counters and durations are refused.
 *
 * @example
 * ```ts
 * parseCqlType('frozen<map<text, text>>'); // { kind: 'map', key: text, value: text, frozen: true }
 * ```
 */
export function parseCqlType(text: string): CqlType {
  const tokens = text.toLowerCase().match(/[a-z_][a-z0-9_]*|[<>,]|\S/g) ?? [];
  let index = 0;
  const next = (): string | undefined => tokens[index++];
  const expect = (token: string): void => {
    if (next() !== token) throw new UnsupportedCqlTypeError(text, `expected "${token}"`);
  };
  const parse = (depth: number, frozen: boolean): CqlType => {
    if (depth > MAX_TYPE_DEPTH) throw new UnsupportedCqlTypeError(text, `nested deeper than ${MAX_TYPE_DEPTH}`);
    const name = next();
    if (name === undefined) throw new UnsupportedCqlTypeError(text, 'a type name is missing');
    if (name === 'frozen') {
      expect('<');
      const inner = parse(depth + 1, true);
      expect('>');
      return inner;
    }
    if (name === 'list' || name === 'set') {
      expect('<');
      const element = parse(depth + 1, false);
      expect('>');
      return { kind: name, element, frozen };
    }
    if (name === 'map') {
      expect('<');
      const key = parse(depth + 1, false);
      expect(',');
      const value = parse(depth + 1, false);
      expect('>');
      if (key.kind !== 'scalar' || !TEXT_TYPES.has(key.name)) {
        throw new UnsupportedCqlTypeError(text, 'map keys must be text, varchar or ascii (record objects have string keys)');
      }
      return { kind: 'map', key, value, frozen };
    }
    if (!SCALAR_SET.has(name)) throw new UnsupportedCqlTypeError(text, `"${name}" is not a supported type`);
    return { kind: 'scalar', name: name as ScalarName };
  };
  const type = parse(0, false);
  if (index !== tokens.length) throw new UnsupportedCqlTypeError(text, 'unexpected text after the type');
  return type;
}

/**
 * The CQL text of a parsed type, as used in `CREATE TABLE`.
 *
 * @example
 * ```ts
 * formatCqlType(parseCqlType('frozen< map<text,text> >')); // 'frozen<map<text, text>>'
 * ```
 */
export function formatCqlType(type: CqlType): string {
  if (type.kind === 'scalar') return type.name;
  const body = type.kind === 'map' ? `map<${formatCqlType(type.key)}, ${formatCqlType(type.value)}>` : `${type.kind}<${formatCqlType(type.element)}>`;
  return type.frozen ? `frozen<${body}>` : body;
}

const INT_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  tinyint: [-128, 127],
  smallint: [-32_768, 32_767],
  int: [-2_147_483_648, 2_147_483_647],
};
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const MAX_EPOCH_MS = 8.64e15;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;

/** A short description of a value for a reason text (never the whole of a huge value). */
export function describeValue(value: JsonValue | undefined): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return value.length > 40 ? `a string of ${value.length} characters` : `string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

/** The bound value and about how many bytes it takes on the wire. */
export interface Converted {
  readonly value: unknown;
  readonly bytes: number;
}

/**
 * Converts one record value for a column of `type`; throws `CassandraValueError` when it does not fit.
 *
 * @example
 * ```ts
 * convertValue(parseCqlType('double'), '+Inf').value;        // Infinity
 * convertValue(parseCqlType('timestamp'), 1700000000000).value; // Date
 * ```
 */
export function convertValue(type: CqlType, value: JsonValue): Converted {
  if (type.kind === 'scalar') return convertScalar(type.name, value);
  if (type.kind === 'map') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new CassandraValueError(`expected an object for ${formatCqlType(type)}, got ${describeValue(value)}`);
    }
    // Built on a null prototype, so a key such as `__proto__` stays a plain entry.
    const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    let bytes = 4;
    for (const [key, entry] of Object.entries(value)) {
      const convertedKey = convertScalar((type.key as { name: ScalarName }).name, key);
      if (entry === null) throw new CassandraValueError(`map entry ${JSON.stringify(key.slice(0, 40))} is null; Cassandra collections cannot hold nulls`);
      const converted = convertNested(type.value, entry, `map entry ${JSON.stringify(key.slice(0, 40))}`);
      out[key] = converted.value;
      bytes += convertedKey.bytes + converted.bytes + 8;
    }
    return { value: { ...out }, bytes };
  }
  if (!Array.isArray(value)) throw new CassandraValueError(`expected an array for ${formatCqlType(type)}, got ${describeValue(value)}`);
  const out: unknown[] = [];
  let bytes = 4;
  value.forEach((element: JsonValue, i) => {
    if (element === null) throw new CassandraValueError(`element ${i} is null; Cassandra collections cannot hold nulls`);
    const converted = convertNested(type.element, element, `element ${i}`);
    out.push(converted.value);
    bytes += converted.bytes + 4;
  });
  return { value: out, bytes };
}

function convertNested(type: CqlType, value: JsonValue, where: string): Converted {
  try {
    return convertValue(type, value);
  } catch (error) {
    if (error instanceof CassandraValueError) throw new CassandraValueError(`${where}: ${error.message}`);
    throw error;
  }
}

function convertScalar(name: ScalarName, value: JsonValue): Converted {
  const refuse = (expected: string): never => {
    throw new CassandraValueError(`expected ${expected} for ${name}, got ${describeValue(value)}`);
  };
  switch (name) {
    case 'text':
    case 'varchar':
    case 'ascii': {
      if (typeof value !== 'string') return refuse('a string');
      if (name === 'ascii' && !/^[\x00-\x7f]*$/.test(value)) throw new CassandraValueError('expected ASCII characters only for ascii');
      return { value, bytes: Buffer.byteLength(value) };
    }
    case 'boolean':
      return typeof value === 'boolean' ? { value, bytes: 1 } : refuse('a boolean');
    case 'tinyint':
    case 'smallint':
    case 'int': {
      const [min, max] = INT_RANGES[name] as readonly [number, number];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) return refuse(`an integer from ${min} to ${max}`);
      return { value, bytes: 4 };
    }
    case 'bigint':
    case 'varint': {
      const text = integerText(value);
      if (text === undefined) return refuse('an integer (a safe-integer number or a string of digits)');
      if (name === 'bigint') {
        const big = BigInt(text);
        if (big < INT64_MIN || big > INT64_MAX) return refuse('an integer within 64 bits');
        return { value: types.Long.fromString(big.toString()), bytes: 8 };
      }
      if (text.length > 1000) return refuse('an integer of at most 1000 digits');
      return { value: types.Integer.fromString(text), bytes: text.length };
    }
    case 'double':
    case 'float': {
      if (typeof value === 'number') return { value, bytes: 8 };
      // A Prometheus stale marker (remote-write source with staleMarkers: 'keep') is a NaN to a double column.
      if (value === 'NaN' || value === 'StaleNaN') return { value: Number.NaN, bytes: 8 };
      if (value === '+Inf') return { value: Number.POSITIVE_INFINITY, bytes: 8 };
      if (value === '-Inf') return { value: Number.NEGATIVE_INFINITY, bytes: 8 };
      return refuse('a number or one of "NaN", "+Inf", "-Inf"');
    }
    case 'decimal': {
      const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : typeof value === 'string' && value.length <= 1000 && DECIMAL.test(value) ? value : undefined;
      if (text === undefined) return refuse('a finite number or a decimal string');
      return { value: types.BigDecimal.fromString(text), bytes: text.length };
    }
    case 'timestamp': {
      if (typeof value === 'number') {
        if (!Number.isInteger(value) || Math.abs(value) > MAX_EPOCH_MS) return refuse('epoch milliseconds (an integer)');
        return { value: new Date(value), bytes: 8 };
      }
      if (typeof value === 'string' && value.length <= 40 && ISO_TIMESTAMP.test(value)) {
        const ms = Date.parse(value);
        if (!Number.isNaN(ms)) return { value: new Date(ms), bytes: 8 };
      }
      return refuse('epoch milliseconds or an ISO-8601 string');
    }
    case 'date': {
      if (typeof value !== 'string' || !/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(value))) return refuse('a date "YYYY-MM-DD"');
      return { value: types.LocalDate.fromString(value), bytes: 4 };
    }
    case 'uuid':
    case 'timeuuid': {
      if (typeof value !== 'string' || !UUID.test(value)) return refuse('a UUID string');
      if (name === 'timeuuid' && value[14] !== '1') return refuse('a version 1 (time-based) UUID');
      return { value: name === 'uuid' ? types.Uuid.fromString(value) : types.TimeUuid.fromString(value), bytes: 16 };
    }
    case 'blob': {
      if (typeof value !== 'string' || !BASE64.test(value)) return refuse('a base64 string');
      const buffer = Buffer.from(value, 'base64');
      return { value: buffer, bytes: buffer.length };
    }
    case 'inet': {
      if (typeof value !== 'string' || value.length > 45) return refuse('an IP address string');
      try {
        return { value: types.InetAddress.fromString(value), bytes: 16 };
      } catch {
        return refuse('an IP address string');
      }
    }
  }
}

function integerText(value: JsonValue): string | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? String(value) : undefined;
  if (typeof value === 'string' && value.length <= 1000 && INTEGER.test(value)) return value.replace(/^\+/, '');
  return undefined;
}

/**
 * A string that is equal for equal bound values, used to find rows of one
 * partition and rows with the same primary key.
 *
 * @example
 * ```ts
 * valueKey({ b: '1', a: '2' }) === valueKey({ a: '2', b: '1' }); // true
 * ```
 */
export function valueKey(value: unknown): string {
  if (value === null || value === undefined) return 'n';
  if (value instanceof Date) return `d${value.getTime()}`;
  if (Buffer.isBuffer(value)) return `b${value.toString('hex')}`;
  if (Array.isArray(value)) return `[${value.map(valueKey).join(',')}]`;
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto === Object.prototype || proto === null) {
      const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${valueKey(v)}`).join(',')}}`;
    }
    // Driver value types (Long, Uuid, BigDecimal, LocalDate, InetAddress) print their value.
    return `o${(value as { toString(): string }).toString()}`;
  }
  return `${typeof value}${JSON.stringify(value)}`;
}
