/**
 * The errors of the node's Redis features: Redis could not be reached (the
 * cause of a `degraded` state, retriable: it reconnects by itself) and an
 * argument that cannot be used (names the field). Guards check the tag with
 * `isDataflowError(error, tag)`.
 */
import { DataflowError } from '@dataflow/core';

/**
 * A Redis command failed because Redis is down or the connection was lost;
 * the features degrade (see `docs-redis.md`) and this is the reported cause.
 *
 * @example
 * ```ts
 * const s = redis.state();
 * if (s.state === 'degraded' && isDataflowError(s.cause, 'redis/unavailable')) logger.warn(s.detail);
 * ```
 */
export class RedisUnavailableError extends DataflowError<'redis/unavailable'> {
  constructor(
    /** What was being done: `connect`, `flush counters`, `acquire`, ... */
    readonly operation: string,
    cause: unknown,
  ) {
    super('redis/unavailable', `redis unavailable during ${operation}: ${cause instanceof Error ? cause.message : String(cause)}`, { retriable: true, cause });
  }
}

/**
 * An argument given to a Redis feature cannot be used; `field` names it.
 *
 * @example
 * ```ts
 * if (isDataflowError(error, 'redis/invalid-argument')) reply.code(400).send({ field: error.field });
 * ```
 */
export class InvalidRedisArgumentError extends DataflowError<'redis/invalid-argument'> {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super('redis/invalid-argument', `${field}: ${message}`, { retriable: false });
  }
}
