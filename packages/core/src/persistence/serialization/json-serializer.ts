/**
 * The default serializer: JSON in UTF-8, extended so that values plain JSON
 * would silently change survive a round trip.
 */
import { isDataflowError } from '../../errors/dataflow-error.js';
import { SerializationError } from '../persistence-errors.js';
import { formatManifest, type Manifest, type Serializer } from './serializer.js';

/** Key that marks an encoded non-JSON value: `{ "$df": kind, "v": ... }`. */
const TAG = '$df';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * JSON serializer (id `json`), the default for every event type.
 *
 * Besides JSON values it round-trips:
 * - `Uint8Array` (and Node `Buffer`, read back as `Uint8Array`), stored as base64;
 * - `bigint`; `Date` (as its epoch milliseconds; an invalid date fails);
 * - `NaN`, `Infinity`, `-Infinity` and `-0`, which plain JSON turns into `null` or `0`;
 * - objects that themselves have a `$df` key (escaped).
 *
 * Strings keep every code point, including emoji, right-to-left text and NUL.
 * `undefined` object members are dropped and `undefined` array items become
 * `null`, as in JSON. Values without a faithful JSON form are refused with
 * `SerializationError` at write time instead of being stored as something
 * else (`{}`, nothing at all): `undefined` as the whole payload (it would be
 * stored as 0 bytes that no replay can read), functions, symbols, `Error`s,
 * `RegExp`s, promises, weak collections, `Map`, `Set`, other typed arrays and
 * cyclic values.
 *
 * @example
 * ```ts
 * const json = new JsonSerializer();
 * const manifest = { eventType: 'Blob', schemaVersion: 1 };
 * const bytes = json.serialize({ data: new Uint8Array([1, 2]) }, manifest);
 * json.deserialize(bytes, manifest); // { data: Uint8Array [1, 2] }
 * ```
 */
export class JsonSerializer implements Serializer {
  readonly id = 'json';

  serialize(payload: unknown, manifest: Manifest): Uint8Array {
    if (payload === undefined) {
      throw new SerializationError(formatManifest(manifest), 'undefined cannot be stored; use null or an object');
    }
    let text: string | undefined;
    try {
      text = JSON.stringify(encodeValue(payload, manifest, new Set()));
    } catch (error) {
      if (isDataflowError(error, 'serialization/failed')) throw error;
      throw new SerializationError(formatManifest(manifest), 'not serializable as JSON', { cause: error });
    }
    return encoder.encode(text);
  }

  deserialize(bytes: Uint8Array, manifest: Manifest): unknown {
    try {
      return decodeValue(JSON.parse(decoder.decode(bytes)) as unknown, manifest);
    } catch (error) {
      if (isDataflowError(error, 'serialization/failed')) throw error;
      throw new SerializationError(formatManifest(manifest), 'invalid JSON payload', { cause: error });
    }
  }
}

function tagged(kind: string, v: unknown): Record<string, unknown> {
  return { [TAG]: kind, v };
}

/** Objects JSON would turn into `{}` (or worse) although they hold data: refused, with what to do instead. */
const UNSUPPORTED_OBJECTS: readonly [new (...args: never[]) => object, string][] = [
  [Error, 'store its name and message as strings instead'],
  [RegExp, 'store its source and flags as strings instead'],
  [Promise, 'await it first'],
  [WeakMap, 'it cannot be enumerated'],
  [WeakSet, 'it cannot be enumerated'],
];

/** `ancestors`: the objects being encoded above this value, to refuse cycles instead of overflowing the stack. */
function encodeValue(value: unknown, manifest: Manifest, ancestors: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (Number.isNaN(value) || !Number.isFinite(value)) return tagged('number', String(value));
      if (Object.is(value, -0)) return tagged('number', '-0');
      return value;
    case 'bigint':
      return tagged('bigint', value.toString());
    case 'undefined':
      return undefined;
    case 'function':
    case 'symbol':
      throw new SerializationError(formatManifest(manifest), `a ${typeof value} cannot be serialized`);
    case 'object':
      break;
  }
  if (value === null) return null;
  for (const [type, advice] of UNSUPPORTED_OBJECTS) {
    if (value instanceof type) throw new SerializationError(formatManifest(manifest), `a ${value.constructor.name} cannot be serialized as JSON; ${advice}`);
  }
  if (ancestors.has(value)) throw new SerializationError(formatManifest(manifest), 'a cyclic value cannot be serialized as JSON');
  if (value instanceof Uint8Array) return tagged('bytes', Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'));
  if (value instanceof Date) {
    const ms = value.getTime();
    if (Number.isNaN(ms)) throw new SerializationError(formatManifest(manifest), 'an invalid Date cannot be serialized');
    return tagged('date', ms);
  }
  if (value instanceof Map || value instanceof Set || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    throw new SerializationError(formatManifest(manifest), `a ${value.constructor.name} cannot be serialized as JSON; convert it first`);
  }
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((item: unknown) => (item === undefined ? null : encodeValue(item, manifest, ancestors)));
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue;
      setOwn(out, key, encodeValue(item, manifest, ancestors));
    }
    return Object.hasOwn(out, TAG) ? tagged('object', out) : out;
  } finally {
    ancestors.delete(value);
  }
}

function decodeValue(value: unknown, manifest: Manifest): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map((item: unknown) => decodeValue(item, manifest));
  const record = value as Record<string, unknown>;
  if (Object.hasOwn(record, TAG)) {
    const kind = record[TAG];
    const v = record['v'];
    switch (kind) {
      case 'bytes':
        return new Uint8Array(Buffer.from(expectString(v, manifest), 'base64'));
      case 'bigint':
        return BigInt(expectString(v, manifest));
      case 'date':
        return new Date(typeof v === 'number' ? v : Number.NaN);
      case 'number':
        return Number(expectString(v, manifest));
      case 'object':
        return decodeObject(v, manifest);
      default:
        throw new SerializationError(formatManifest(manifest), `unknown tagged value kind ${String(kind)}`);
    }
  }
  return decodeObject(record, manifest);
}

function decodeObject(value: unknown, manifest: Manifest): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SerializationError(formatManifest(manifest), 'malformed escaped object');
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) setOwn(out, key, decodeValue(item, manifest));
  return out;
}

/** Assigns an own property, also for the key `__proto__` (plain assignment would change the prototype). */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}

function expectString(v: unknown, manifest: Manifest): string {
  if (typeof v !== 'string') throw new SerializationError(formatManifest(manifest), 'malformed tagged value');
  return v;
}
