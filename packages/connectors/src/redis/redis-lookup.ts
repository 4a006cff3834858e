/**
 * A `LookupSource` over Redis string keys, for enrich stages: one MGET per
 * chunk of keys, values stored as JSON (or as plain strings). Driver failures
 * become retriable `ConnectorError`s; a stored value that is not valid JSON is
 * a permanent one, since retrying cannot fix the data.
 */
import { ConnectorError, type JsonValue, type LookupSource } from '@dataflow/core';
import type { Redis } from 'ioredis';

/** How a `RedisLookupSource` reads its keys. */
export interface RedisLookupOptions {
  /** A connected ioredis client; the caller owns it and closes it. */
  readonly client: Redis;
  /** Prepended to every key, e.g. `customers:` (default: none). */
  readonly keyPrefix?: string;
  /** `json` (default): values are JSON text; `string`: values are used as strings. */
  readonly format?: 'json' | 'string';
  /** Keys per MGET (default 500), so a large batch does not block Redis with one huge command. */
  readonly chunkSize?: number;
}

/**
 * Looks up keys in Redis.
 *
 * @example
 * ```ts
 * const client = new Redis('redis://127.0.0.1:6379');
 * const customers = new RedisLookupSource({ client, keyPrefix: 'customers:' });
 * const stage = createTransform(enrichDefinition, { stage: 'transforms[1]', lookups: { customers } });
 * ```
 */
export class RedisLookupSource implements LookupSource {
  private readonly client: Redis;
  private readonly keyPrefix: string;
  private readonly format: 'json' | 'string';
  private readonly chunkSize: number;

  constructor(options: RedisLookupOptions) {
    this.client = options.client;
    this.keyPrefix = options.keyPrefix ?? '';
    this.format = options.format ?? 'json';
    this.chunkSize = options.chunkSize ?? 500;
    if (!Number.isSafeInteger(this.chunkSize) || this.chunkSize < 1) {
      throw new ConnectorError('redis', `chunkSize must be a positive integer, got ${this.chunkSize}`, { retriable: false });
    }
  }

  async get(keys: readonly string[]): Promise<ReadonlyMap<string, JsonValue>> {
    const found = new Map<string, JsonValue>();
    for (let start = 0; start < keys.length; start += this.chunkSize) {
      const chunk = keys.slice(start, start + this.chunkSize);
      let values: (string | null)[];
      try {
        values = await this.client.mget(chunk.map((key) => this.keyPrefix + key));
      } catch (error) {
        throw new ConnectorError('redis', `MGET of ${chunk.length} keys failed: ${(error as Error).message}`, { retriable: true, cause: error });
      }
      chunk.forEach((key, i) => {
        const value = values[i];
        if (value !== null && value !== undefined) found.set(key, this.decode(key, value));
      });
    }
    return found;
  }

  private decode(key: string, value: string): JsonValue {
    if (this.format === 'string') return value;
    try {
      return JSON.parse(value) as JsonValue;
    } catch (error) {
      throw new ConnectorError('redis', `Value of ${this.keyPrefix}${key} is not valid JSON: ${(error as Error).message}`, {
        retriable: false,
        cause: error,
      });
    }
  }
}
