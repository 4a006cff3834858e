/**
 * `@dataflow/connectors`.
 */
export { RedisLookupSource, type RedisLookupOptions } from './redis/redis-lookup.js';
