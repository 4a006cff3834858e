/**
 * Live throughput per pipeline shared by all nodes: each node adds the
 * records it processed to one-second buckets in a Redis hash
 * (`HINCRBY <prefix>rate:<pipeline> <epoch second> n`, the hash kept 2 minutes
 * after its last write) and reads records/s as the sum of the last N full
 * seconds divided by N. Counts are gathered in memory and written once per
 * flush in one pipelined round trip, never per record; a flush that fails
 * drops its counts and says how many (`dropped`).
 */
import type { Redis } from 'ioredis';
import { InvalidRedisArgumentError, RedisUnavailableError } from './redis-errors.js';

/** How long a pipeline's bucket hash lives after its last write, seconds. */
export const RATE_KEY_TTL_SECONDS = 120;

/** The counters of `createThroughputCounters`. */
export interface ThroughputCounters {
  /** Adds `records` to the pipeline's count for the current second (in memory until `flush`). */
  count(pipelineId: string, records: number): void;
  /** Writes the counts gathered so far in one round trip; never rejects. */
  flush(): Promise<void>;
  /** Records per second over the last `seconds` full seconds, from all nodes; undefined when Redis cannot answer. */
  recordsPerSecond(pipelineId: string, seconds?: number): Promise<number | undefined>;
  /** Records counted here but not written because Redis was down. */
  readonly dropped: number;
}

/**
 * Returns counters writing through `client`; `onFailure` hears each failed
 * flush or read.
 *
 * @example
 * ```ts
 * const counters = createThroughputCounters(client, 'dataflow:', report);
 * node.events.on('pipeline.batch.completed', (e) => counters.count(e.pipelineId, e.records));
 * setInterval(() => void counters.flush(), 1_000);
 * ```
 */
export function createThroughputCounters(client: Redis, keyPrefix: string, onFailure: (error: RedisUnavailableError) => void, now: () => number = Date.now): ThroughputCounters {
  // Counts per second and pipeline, so a late flush still lands in the right bucket.
  let pending = new Map<number, Map<string, number>>();
  let dropped = 0;
  const key = (pipelineId: string) => `${keyPrefix}rate:${pipelineId}`;
  return {
    count: (pipelineId, records) => {
      if (!(records > 0)) return;
      const second = Math.floor(now() / 1000);
      let bucket = pending.get(second);
      if (bucket === undefined) {
        bucket = new Map<string, number>();
        pending.set(second, bucket);
      }
      bucket.set(pipelineId, (bucket.get(pipelineId) ?? 0) + records);
    },
    flush: async () => {
      if (pending.size === 0) return;
      const batch = pending;
      pending = new Map();
      const multi = client.pipeline();
      for (const [second, counts] of batch) {
        for (const [pipelineId, records] of counts) multi.hincrby(key(pipelineId), String(second), records).expire(key(pipelineId), RATE_KEY_TTL_SECONDS);
      }
      let error: unknown;
      try {
        // A pipeline resolves with an error per command instead of rejecting.
        const results = await multi.exec();
        error = results === null ? new Error('pipeline discarded') : (results.find(([e]) => e !== null)?.[0] ?? undefined);
      } catch (e) {
        error = e ?? new Error('pipeline failed');
      }
      if (error !== undefined) {
        for (const counts of batch.values()) for (const records of counts.values()) dropped += records;
        onFailure(new RedisUnavailableError('flush counters', error));
      }
    },
    recordsPerSecond: async (pipelineId, seconds = 10) => {
      if (!(Number.isInteger(seconds) && seconds >= 1 && seconds <= RATE_KEY_TTL_SECONDS)) {
        throw new InvalidRedisArgumentError('seconds', `must be an integer from 1 to ${RATE_KEY_TTL_SECONDS} (got ${seconds})`);
      }
      const current = Math.floor(now() / 1000);
      const fields = Array.from({ length: seconds }, (_, i) => String(current - 1 - i));
      try {
        const values = await client.hmget(key(pipelineId), ...fields);
        return values.reduce((sum, v) => sum + (v === null ? 0 : Number(v)), 0) / seconds;
      } catch (error) {
        onFailure(new RedisUnavailableError('read records/s', error));
        return undefined;
      }
    },
    get dropped() {
      return dropped;
    },
  };
}
