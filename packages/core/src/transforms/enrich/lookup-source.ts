/**
 * The port an enrich stage reads from: a batched key → value lookup. The
 * in-memory implementation is beside it; Redis lives in @dataflow/connectors.
 */

import type { JsonValue } from '../../connector/data-record.js';

/**
 * A batched lookup. `get` returns an entry for each key that exists and omits
 * missing keys; it rejects only when the lookup itself fails (e.g. the store is
 * unreachable), never for a missing key.
 *
 * @example
 * ```ts
 * const customers: LookupSource = new InMemoryLookupSource({ c1: { name: 'Ada' } });
 * const found = await customers.get(['c1', 'c9']); // Map { 'c1' => { name: 'Ada' } }
 * ```
 */
export interface LookupSource {
  get(keys: readonly string[]): Promise<ReadonlyMap<string, JsonValue>>;
}

/**
 * A lookup over a fixed set of entries held in memory.
 *
 * @example
 * ```ts
 * const regions = new InMemoryLookupSource(new Map([['fr', { region: 'EU' }]]));
 * ```
 */
export class InMemoryLookupSource implements LookupSource {
  private readonly entries: ReadonlyMap<string, JsonValue>;

  constructor(entries: ReadonlyMap<string, JsonValue> | Readonly<Record<string, JsonValue>>) {
    this.entries = entries instanceof Map ? new Map(entries) : new Map(Object.entries(entries));
  }

  get(keys: readonly string[]): Promise<ReadonlyMap<string, JsonValue>> {
    const found = new Map<string, JsonValue>();
    for (const key of keys) {
      const value = this.entries.get(key);
      if (value !== undefined) found.set(key, value);
    }
    return Promise.resolve(found);
  }
}
