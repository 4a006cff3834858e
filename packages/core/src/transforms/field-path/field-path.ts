/**
 * Field paths (`a.b.c`, `a["x-y"]`, `items[0]`) and safe, copy-on-write access
 * to record fields by path.
 *
 * Lookups read own properties only (`Object.hasOwn`), so a path such as
 * `__proto__`, `constructor` or `constructor.prototype` never reaches
 * `Object.prototype`; writes define `__proto__` as a plain data property
 * instead of changing an object's prototype.
 */
import type { DataRecord, JsonValue } from '../../connector/data-record.js';

/** A record under construction: transforms build new records in these, never changing their input. */
export type MutableRecord = { [key: string]: JsonValue };

/**
 * True for a JSON object (not null, not an array): the shape a record or a nested object has.
 *
 * @example
 * ```ts
 * isJsonObject({ a: 1 }); // true
 * isJsonObject([1]);      // false
 * ```
 */
export function isJsonObject(value: unknown): value is DataRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A parsed field path: string segments select object keys, number segments
 * select array elements. Parse text with `parseFieldPath`.
 *
 * @example
 * ```ts
 * const path: FieldPath = ['order', 'items', 0, 'sku']; // order.items[0].sku
 * ```
 */
export type FieldPath = readonly (string | number)[];

/**
 * The value at `path` in `record`, or `undefined` when any segment is missing.
 * String segments match own keys of plain objects only, number segments
 * match elements of arrays only.
 *
 * @example
 * ```ts
 * getPath({ a: { b: [10, 20] } }, ['a', 'b', 1]); // 20
 * getPath({}, ['constructor']);                    // undefined
 * ```
 */
export function getPath(record: unknown, path: FieldPath): JsonValue | undefined {
  let current: JsonValue | undefined = record as JsonValue;
  for (const segment of path) {
    current = getSegment(current, segment);
    if (current === undefined) return undefined;
  }
  return current;
}

function getSegment(container: JsonValue, segment: string | number): JsonValue | undefined {
  if (typeof segment === 'number') {
    return Array.isArray(container) && segment < container.length ? (container as readonly JsonValue[])[segment] : undefined;
  }
  return isJsonObject(container) && Object.hasOwn(container, segment) ? container[segment] : undefined;
}

/**
 * A copy of `record` with `value` at `path`; objects and arrays along the path
 * are copied, everything else is shared. Missing intermediate containers are
 * created (an array before a number segment, an object otherwise); a scalar in
 * the way is replaced.
 *
 * @example
 * ```ts
 * withPath({ a: 1 }, ['b', 'c'], 2); // { a: 1, b: { c: 2 } }
 * ```
 */
export function withPath(record: DataRecord, path: FieldPath, value: JsonValue): DataRecord {
  if (path.length === 0) return isJsonObject(value) ? value : record;
  return setIn(record, path, 0, value) as DataRecord;
}

function setIn(container: JsonValue | undefined, path: FieldPath, index: number, value: JsonValue): JsonValue {
  const segment = path[index] as string | number;
  const isLast = index === path.length - 1;
  if (typeof segment === 'number') {
    const copy: JsonValue[] = Array.isArray(container) ? [...(container as readonly JsonValue[])] : [];
    while (copy.length < segment) copy.push(null);
    copy[segment] = isLast ? value : setIn(copy[segment], path, index + 1, value);
    return copy;
  }
  const copy: MutableRecord = isJsonObject(container) ? { ...container } : {};
  const child = Object.hasOwn(copy, segment) ? copy[segment] : undefined;
  defineField(copy, segment, isLast ? value : setIn(child, path, index + 1, value));
  return copy;
}

/**
 * A copy of `record` without the field at `path` (the same record when the
 * field does not exist). Removing an array element leaves a shorter array.
 *
 * @example
 * ```ts
 * withoutPath({ a: { b: 1, c: 2 } }, ['a', 'b']); // { a: { c: 2 } }
 * ```
 */
export function withoutPath(record: DataRecord, path: FieldPath): DataRecord {
  if (path.length === 0 || getPath(record, path) === undefined) return record;
  return removeIn(record, path, 0) as DataRecord;
}

function removeIn(container: JsonValue, path: FieldPath, index: number): JsonValue {
  // Only called when the whole path exists, so every container on the way has the segment.
  const segment = path[index] as string | number;
  const isLast = index === path.length - 1;
  if (typeof segment === 'number') {
    const copy = [...(container as readonly JsonValue[])];
    if (isLast) copy.splice(segment, 1);
    else copy[segment] = removeIn(copy[segment] as JsonValue, path, index + 1);
    return copy;
  }
  const source = container as DataRecord;
  if (isLast) {
    // Copy all other keys instead of `delete`, which would turn the copy into a slow dictionary-mode object.
    const copy: MutableRecord = {};
    for (const key of Object.keys(source)) if (key !== segment) defineField(copy, key, source[key] as JsonValue);
    return copy;
  }
  const copy: MutableRecord = { ...source };
  defineField(copy, segment, removeIn(copy[segment] as JsonValue, path, index + 1));
  return copy;
}

/** Sets an own data property, also for the key `__proto__` (whose assignment would change the prototype). */
export function defineField(target: MutableRecord, key: string, value: JsonValue): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
/** Words the expression language reserves; a top-level field with such a name is written `["and"]`. */
const RESERVED_WORDS = new Set(['and', 'or', 'not', 'true', 'false', 'null']);

/**
 * The text form of a path, as `parseFieldPath` reads it back.
 *
 * @example
 * ```ts
 * formatFieldPath(['a', 'x-y', 0]); // 'a["x-y"][0]'
 * ```
 */
export function formatFieldPath(path: FieldPath): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (IDENTIFIER.test(segment) && text !== '') text += `.${segment}`;
    else if (IDENTIFIER.test(segment) && !RESERVED_WORDS.has(segment.toLowerCase())) text += segment;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}
