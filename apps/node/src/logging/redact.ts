/**
 * Makes any value safe to put in a log line before a transport sees it:
 * values of secret-named fields are masked (any depth, any case), and
 * hostile input cannot crash or stall the logger: cycles, `__proto__` keys,
 * deep nesting, huge strings, arrays and objects, BigInts, buffers, getters
 * or `toJSON` that throw are all cut or described.
 */

/** Field names whose values never reach a log line (password, token, secret, authorization, apiKey, credentials, ...). */
export const SECRET_FIELD = /password|passwd|passphrase|pass$|^pwd$|secret|token|authori[sz]ation|api[-_]?key|credential|private[-_]?key|cookie/i;

/** Limits of one redacted value. */
export interface RedactLimits {
  /** Nesting kept (default 8); deeper values become `[too deep]`. */
  readonly maxDepth?: number;
  /** Characters kept of one string (default 8 192). */
  readonly maxStringChars?: number;
  /** Items kept of one array or keys of one object (default 100). */
  readonly maxItems?: number;
}

const MASK = '***';

/**
 * A copy of `value` that is safe to serialize: secret fields masked, limits applied.
 *
 * @example
 * ```ts
 * redact({ user: 'ann', db: { Password: 'pw' } }); // { user: 'ann', db: { Password: '***' } }
 * ```
 */
export function redact(value: unknown, limits: RedactLimits = {}): unknown {
  const max = { depth: limits.maxDepth ?? 8, chars: limits.maxStringChars ?? 8_192, items: limits.maxItems ?? 100 };
  const seen = new WeakSet<object>();

  const walk = (v: unknown, depth: number): unknown => {
    switch (typeof v) {
      case 'string':
        return v.length > max.chars ? `${v.slice(0, max.chars)}... (${v.length} chars)` : v;
      case 'bigint':
        return v.toString();
      case 'symbol':
        return v.toString();
      case 'function':
        return `[function ${v.name}]`;
      case 'number':
        return Number.isFinite(v) ? v : String(v);
      case 'object':
        break;
      default:
        return v;
    }
    if (v === null) return null;
    if (seen.has(v)) return '[Circular]';
    if (depth >= max.depth) return '[too deep]';
    try {
      if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString();
      if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return `[${v.constructor.name} ${v.byteLength} bytes]`;
      seen.add(v);
      if (v instanceof Error) return errorShape(v, depth);
      if (v instanceof Map) return entries([...v.entries()].slice(0, max.items + 1).map(([k, x]) => [String(k), x]), v.size, depth);
      if (v instanceof Set) return list([...v].slice(0, max.items + 1), v.size, depth);
      if (Array.isArray(v)) return list(v.slice(0, max.items + 1), v.length, depth);
      const json = (v as { toJSON?: unknown }).toJSON;
      if (typeof json === 'function') return walk(json.call(v), depth + 1);
      const keys = Object.keys(v);
      return entries(keys.slice(0, max.items + 1).map((k) => [k, (v as Record<string, unknown>)[k]]), keys.length, depth);
    } catch (error) {
      // A getter, proxy or toJSON that throws: the line says so instead of failing.
      return `[unreadable: ${error instanceof Error ? error.message.slice(0, max.chars) : "thrown"}]`;
    } finally {
      seen.delete(v);
    }
  };

  const list = (items: unknown[], length: number, depth: number): unknown[] => {
    const out = items.slice(0, max.items).map((x) => walk(x, depth + 1));
    if (length > max.items) out.push(`... (${length - max.items} more)`);
    return out;
  };

  const entries = (pairs: [string, unknown][], size: number, depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [key, x] of pairs.slice(0, max.items)) {
      // defineProperty: a "__proto__" field stays an ordinary field of the copy.
      Object.defineProperty(out, key, { value: SECRET_FIELD.test(key) ? MASK : walk(x, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    if (size > max.items) out['...'] = `${size - max.items} more keys`;
    return out;
  };

  const errorShape = (error: Error, depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = { name: walk(error.name, depth + 1), message: walk(error.message, depth + 1) };
    const tagged = error as Error & { tag?: unknown; retriable?: unknown; code?: unknown };
    if (typeof tagged.tag === 'string') out['tag'] = tagged.tag;
    if (typeof tagged.retriable === 'boolean') out['retriable'] = tagged.retriable;
    if (typeof tagged.code === 'string' || typeof tagged.code === 'number') out['code'] = tagged.code;
    if (error.cause !== undefined) out['cause'] = walk(error.cause, depth + 1);
    return out;
  };

  return walk(value, 0);
}
