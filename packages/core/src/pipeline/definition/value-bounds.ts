/**
 * Bounds on what a user may send: how deeply a value nests and how large it
 * is. Checked at the edges (pipeline definitions on validation, records where
 * a source or `ingest` takes them in) before anything recursive touches the
 * value, so a definition nested 3 000 levels deep or a record of a gigabyte is
 * answered with a field-level issue instead of a `RangeError: Maximum call
 * stack size exceeded` or an exhausted heap.
 *
 * The walk is iterative (its own stack, no recursion), stops at the first
 * issue, and costs at most one visit per value within the bounds: a value
 * beyond them is rejected after reading about `maxBytes` worth of it.
 */
import type { DefinitionIssue } from './invalid-pipeline-definition-error.js';
import { formatIssuePath } from './issue-path.js';

/** Limits of {@link checkValueBounds}. */
export interface ValueBounds {
  /** Deepest nesting of objects and arrays; the outermost container is level 1. */
  readonly maxDepth: number;
  /** Largest size in bytes of the value's JSON text (UTF-8), estimated without building it. */
  readonly maxBytes: number;
  /**
   * Whether a key named `__proto__` is data (records: a JSON source may carry
   * one, and transforms keep it as an own key) or an issue (definitions: no
   * option is called that, and some code would change a prototype with it).
   */
  readonly allowProtoKeys: boolean;
}

/** One mebibyte. */
const MiB = 1024 * 1024;

/** Bounds of a pipeline definition: 64 levels, 1 MiB, no `__proto__` keys. */
export const DEFINITION_BOUNDS: ValueBounds = { maxDepth: 64, maxBytes: MiB, allowProtoKeys: false };

/** Default bounds of a record: 64 levels, 1 MiB; `__proto__` keys are data. */
export const RECORD_BOUNDS: ValueBounds = { maxDepth: 64, maxBytes: MiB, allowProtoKeys: true };

/** A value on the walk; the path is rebuilt from the parents only when there is an issue. */
interface Visit {
  readonly value: unknown;
  readonly parent: Visit | undefined;
  readonly key: PropertyKey | undefined;
  /** Containers enclosing the value. */
  readonly depth: number;
}

/** Marks the end of a container's children: it is no longer an ancestor. */
interface Leave {
  readonly leave: object;
}

/**
 * The first place where `value` exceeds `bounds`, as a field-level issue, or
 * undefined when it is within them. Also reports a cycle (a value that
 * contains itself) and a value whose properties cannot be read (a throwing
 * getter or proxy). `subject` starts the message (`'The definition'`).
 *
 * @example
 * ```ts
 * checkValueBounds({ a: { b: 'x'.repeat(2_000_000) } }, DEFINITION_BOUNDS, 'The definition');
 * // { path: 'a.b', message: 'The definition is larger than 1048576 bytes (as JSON); it passes the limit here' }
 * ```
 */
export function checkValueBounds(value: unknown, bounds: ValueBounds, subject = 'The value'): DefinitionIssue | undefined {
  const { maxDepth, maxBytes } = bounds;
  const tooLarge = (at: Visit, key?: PropertyKey): DefinitionIssue =>
    issueAt(at, key, `${subject} is larger than ${maxBytes} bytes (as JSON); it passes the limit here`);
  const ancestors = new Set<object>();
  const stack: (Visit | Leave)[] = [{ value, parent: undefined, key: undefined, depth: 0 }];
  let bytes = 0;
  let current: Visit | undefined;
  /** The child of `current` being read, for a getter or proxy that throws. */
  let reading: PropertyKey | undefined;
  try {
    while (stack.length > 0) {
      const task = stack.pop() as Visit | Leave;
      if ('leave' in task) {
        ancestors.delete(task.leave);
        continue;
      }
      current = task;
      const item = task.value;
      if (typeof item !== 'object' || item === null) {
        bytes += leafBytes(item, maxBytes);
        if (bytes > maxBytes) return tooLarge(task);
        continue;
      }
      if (ancestors.has(item)) return issueAt(task, undefined, `${subject} contains a cycle: this field holds an object that contains it`);
      if (task.depth >= maxDepth) return issueAt(task, undefined, `${subject} is nested deeper than ${maxDepth} levels`);
      if (ArrayBuffer.isView(item) || item instanceof Date) {
        // Stored as base64 text, and a date as its epoch milliseconds.
        bytes += item instanceof Date ? 24 : Math.ceil((item.byteLength * 4) / 3) + 2;
        if (bytes > maxBytes) return tooLarge(task);
        continue;
      }
      ancestors.add(item);
      stack.push({ leave: item });
      const depth = task.depth + 1;
      if (Array.isArray(item)) {
        // Brackets and commas first, so a huge (even sparse) array is refused before its items are queued.
        bytes += 2 + Math.max(0, item.length - 1);
        if (bytes > maxBytes) return tooLarge(task);
        const containers: Visit[] = [];
        for (let index = 0; index < item.length; index++) {
          reading = index;
          const child = item[index] as unknown;
          // Primitives are counted here; only containers go on the stack.
          if (typeof child === 'object' && child !== null) containers.push({ value: child, parent: task, key: index, depth });
          else if ((bytes += leafBytes(child, maxBytes)) > maxBytes) return tooLarge(task, index);
        }
        reading = undefined;
        pushReversed(stack, containers);
        continue;
      }
      const keys = Object.keys(item);
      bytes += 2 + Math.max(0, keys.length - 1);
      for (const key of keys) {
        if (key === '__proto__' && !bounds.allowProtoKeys) return issueAt(task, key, 'A key named __proto__ is not allowed');
        bytes += stringBytes(key, maxBytes) + 1;
        if (bytes > maxBytes) return tooLarge(task, key);
      }
      const containers: Visit[] = [];
      for (const key of keys) {
        reading = key;
        const child = (item as Readonly<Record<string, unknown>>)[key];
        if (typeof child === 'object' && child !== null) containers.push({ value: child, parent: task, key, depth });
        else if ((bytes += leafBytes(child, maxBytes)) > maxBytes) return tooLarge(task, key);
      }
      reading = undefined;
      pushReversed(stack, containers);
    }
  } catch (error) {
    return issueAt(current, reading, `${subject} cannot be read here: ${error instanceof Error ? error.message : String(error)}`);
  }
  return undefined;
}

/**
 * Checks a record a source produced or `ingest` received against `bounds`
 * (default {@link RECORD_BOUNDS}, any of them overridable); the issue names
 * the field. A source or ingest path refuses the record with it, or sends it
 * to dead letters, instead of passing it on to transforms and the journal.
 *
 * @example
 * ```ts
 * const issue = checkRecordBounds(record, { maxBytes: 256 * 1024 });
 * if (issue !== undefined) return deadLetter(record, `${issue.path}: ${issue.message}`);
 * ```
 */
export function checkRecordBounds(record: unknown, bounds: Partial<ValueBounds> = {}): DefinitionIssue | undefined {
  return checkValueBounds(record, { ...RECORD_BOUNDS, ...bounds }, 'The record');
}

/** Pushes `items` so that the first is popped first: fields are visited in their order. */
function pushReversed<T>(stack: T[], items: readonly T[]): void {
  for (let index = items.length - 1; index >= 0; index--) stack.push(items[index] as T);
}

function issueAt(visit: Visit | undefined, key: PropertyKey | undefined, message: string): DefinitionIssue {
  const path: PropertyKey[] = key === undefined ? [] : [key];
  for (let at = visit; at !== undefined && at.key !== undefined; at = at.parent) path.unshift(at.key);
  return { path: formatIssuePath(path), message };
}

/** Bytes of a JSON string literal (quotes included, escapes not counted), capped just past `cap`. */
function stringBytes(text: string, cap: number): number {
  // UTF-8 takes at least one byte per UTF-16 code unit: a string this long is over the cap anyway.
  if (text.length > cap) return cap + 1;
  return Buffer.byteLength(text, 'utf8') + 2;
}

function leafBytes(value: unknown, cap: number): number {
  switch (typeof value) {
    case 'string':
      return stringBytes(value, cap);
    case 'number':
      return String(value).length;
    case 'bigint':
      return value.toString().length;
    case 'boolean':
      return value ? 4 : 5;
    default:
      // null, and undefined (null in an array, dropped in an object), functions, symbols.
      return 4;
  }
}
