/**
 * Settings of the Cassandra persistence plugin, with their defaults, and the
 * mapping of driver failures to the persistence SPI's errors.
 */
import { randomUUID } from 'node:crypto';
import { errors, policies, types } from 'cassandra-driver';
import { isDataflowError, JournalReadError, JournalWriteError, type SerializerRegistry } from '@dataflow/core';
import type { KeyspaceReplication } from './cassandra-schema.js';

/** Consistency level names accepted in settings. */
export type ConsistencyName = 'ONE' | 'TWO' | 'THREE' | 'QUORUM' | 'LOCAL_QUORUM' | 'EACH_QUORUM' | 'ALL' | 'LOCAL_ONE';

/** Something that happened inside the plugin that an operator may want to see. */
export type CassandraPersistenceEvent =
  | { readonly type: 'tag-write.failed'; readonly persistenceId: string; readonly error: unknown }
  | { readonly type: 'tag-write.restamped'; readonly rows: number; readonly latencyMs: number }
  | { readonly type: 'tag-views.repaired'; readonly persistenceId: string; readonly fromSequenceNr: number; readonly toSequenceNr: number }
  /**
   * Conditional mode: a writer claimed sequence numbers up to `claimedTo` for a
   * move into a new partition and never wrote them (it failed or timed out
   * between the two steps). The claim was fenced off; the id goes on from
   * `highestSequenceNr` without a hole.
   */
  /** A stored snapshot could not be loaded (for example it does not deserialize); recovery falls back to an older one. */
  | { readonly type: 'snapshot.load-failed'; readonly persistenceId: string; readonly sequenceNr: number; readonly error: unknown }
  /**
   * `deleteTo` deleted less than asked: the id has snapshots, and events after
   * the newest one readable at the journal's consistency stay (no event is
   * deleted that no durable snapshot covers).
   */
  | { readonly type: 'delete.limited'; readonly persistenceId: string; readonly requestedTo: number; readonly deletedTo: number }
  /** A background renewal of a writer lease failed; the lease lapses unless the next write renews it. */
  | { readonly type: 'lease.renewal-failed'; readonly persistenceId: string; readonly error: unknown }
  | { readonly type: 'partition-claim.released'; readonly persistenceId: string; readonly claimedTo: number; readonly highestSequenceNr: number };

/**
 * How the journal keeps a second writer of a persistence id out (docs/adr/0002):
 * - `lease`: a writer takes a time-limited lease per persistence id with a
 *   conditional write, renews it while it writes, and writes plain batches;
 *   another writer is refused until the lease lapses (`leaseTtlMs` after the
 *   holder's last renewal, or at once when the holder closes). Fast; assumes a
 *   write is applied within `leaseSafetyMarginMs` of being sent.
 * - `conditional`: every append is a conditional (Paxos) batch on the expected
 *   sequence number. No timing assumption; about 3x slower writes.
 */
export type SingleWriterMode = 'lease' | 'conditional';

export interface CassandraPersistenceSettings {
  /** Keyspace of every table. */
  readonly keyspace: string;
  /** Default `lease`. */
  readonly singleWriter?: SingleWriterMode;
  /**
   * Lifetime of a writer lease on the server (a whole number of seconds is
   * used, rounded up); default 20 000 ms. Another process can take over an id
   * whose holder crashed after at most this long (a clean close releases at
   * once); the holder renews every half of its validity (a Paxos round), so a
   * shorter TTL costs write throughput: at 10 s, renewals were one Paxos write
   * per five event batches in the entity benchmark and cut its rate by 1.7x.
   */
  readonly leaseTtlMs?: number;
  /**
   * The holder sends no write later than this before its lease can lapse on the
   * server; default 4000 ms (Cassandra drops writes older than 2 s). At least
   * `2 * leaseSafetyMarginMs + 1000` must fit in `leaseTtlMs`.
   */
  readonly leaseSafetyMarginMs?: number;
  /**
   * Monotonic milliseconds that time the writer lease locally (how long ago it
   * was taken or renewed); defaults to `performance.now`. Wall-clock steps
   * (NTP, a changed system clock) must not stretch a lease. Injectable for tests.
   */
  readonly leaseClock?: () => number;
  /** Identifies this process as a lease holder; defaults to a random UUID. */
  readonly nodeId?: string;
  /**
   * Apply the missing schema migrations at start (development and tests).
   * Default false: the schema is only checked, and a keyspace that is not
   * current is refused with a `SchemaVersionError` naming
   * `dataflow migrate --journal cassandra` (or call `migrateCassandra()`).
   */
  readonly autoCreate?: boolean;
  /** Replication of a keyspace created by `autoCreate`; default SimpleStrategy with factor 1. */
  readonly replication?: KeyspaceReplication;
  /** Events per `messages` partition; default 500 000. An append never spans two partitions. */
  readonly targetPartitionSize?: number;
  /** Largest number of rows in one batch statement; default 100. */
  readonly maxBatchSize?: number;
  /** Most statements in flight at once, per plugin; default 64. */
  readonly maxInFlight?: number;
  /** Journal writes; default QUORUM. */
  readonly writeConsistency?: ConsistencyName;
  /** Journal and query reads; default QUORUM. */
  readonly readConsistency?: ConsistencyName;
  /**
   * Snapshot reads and writes; default `writeConsistency`. Events deleted
   * behind a snapshot (`deleteTo`, a snapshot policy with `deleteEvents`) are
   * only safe when the snapshot is as durable as the events were: lower it
   * (e.g. ONE) only where events are never deleted.
   */
  readonly snapshotConsistency?: ConsistencyName;
  /** Snapshots tried, newest first, when the newest cannot be loaded; default 3 (Pekko's load attempts). */
  readonly snapshotLoadAttempts?: number;
  /** Width of a `tag_views` time bucket in milliseconds; default one hour. */
  readonly timeBucketMs?: number;
  /**
   * `eventsByTag` delivers rows once they are this much older than now;
   * default 250 ms. It sets the latency of live tag streams (about this plus
   * half of `pollIntervalMs`); rows that land later than it (slow writes, writer
   * clocks behind) are still delivered by the backtracking re-read, only later.
   * A tag row whose write took longer than this is written again with a fresh
   * timestamp.
   */
  readonly eventualConsistencyDelayMs?: number;
  /**
   * How far a writer's clock may be behind the readers' (tag rows are
   * timestamped by the writer); default 1000 ms. Live `eventsByTag` re-reads
   * the last `eventualConsistencyDelayMs + maxClockSkewMs` behind its forward
   * read, so a row that lands late by up to that much is still delivered.
   */
  readonly maxClockSkewMs?: number;
  /** Most persistence ids an `eventsByTag` offset remembers (its `seen`); default 1000. */
  readonly maxOffsetSeen?: number;
  /** How often live queries look for new rows; default 500 ms. */
  readonly pollIntervalMs?: number;
  /** How long `eventsByTag` waits for a missing event before failing with `ReplayGapError`; default 10 000 ms. */
  readonly gapTimeoutMs?: number;
  /** Rows per page of a read; default 1000. */
  readonly fetchSize?: number;
  /** Serializers and payload size limit; default JSON with a 1 MiB limit. */
  readonly serializers?: SerializerRegistry;
  /** Epoch milliseconds; defaults to `Date.now`. */
  readonly now?: () => number;
  /** Receives operational events (a failed tag write that will be repaired, ...). */
  readonly onEvent?: (event: CassandraPersistenceEvent) => void;
}

/** Settings with every default applied. */
export interface ResolvedSettings {
  readonly keyspace: string;
  readonly singleWriter: SingleWriterMode;
  readonly leaseTtlMs: number;
  readonly leaseSafetyMarginMs: number;
  /**
   * How long after sending the request that took or renewed a lease the holder
   * may still send writes: the TTL in whole seconds, less one second (the
   * server counts a TTL from the start of its current second), less the margin.
   */
  readonly leaseValidityMs: number;
  readonly leaseClock: () => number;
  readonly nodeId: string;
  readonly targetPartitionSize: number;
  readonly maxBatchSize: number;
  readonly maxInFlight: number;
  readonly writeConsistency: types.consistencies;
  readonly readConsistency: types.consistencies;
  readonly snapshotConsistency: types.consistencies;
  readonly snapshotLoadAttempts: number;
  readonly timeBucketMs: number;
  readonly eventualConsistencyDelayMs: number;
  readonly maxClockSkewMs: number;
  readonly maxOffsetSeen: number;
  readonly pollIntervalMs: number;
  readonly gapTimeoutMs: number;
  readonly fetchSize: number;
  readonly now: () => number;
  readonly onEvent: (event: CassandraPersistenceEvent) => void;
}

const positive = (name: string, value: number): number => {
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
};

const nonNegative = (name: string, value: number): number => {
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
  return value;
};

/** Applies defaults and checks ranges. */
export function resolveSettings(settings: CassandraPersistenceSettings): ResolvedSettings {
  const maxBatchSize = positive('maxBatchSize', settings.maxBatchSize ?? 100);
  const targetPartitionSize = positive('targetPartitionSize', settings.targetPartitionSize ?? 500_000);
  if (targetPartitionSize < maxBatchSize) {
    throw new RangeError(`targetPartitionSize (${targetPartitionSize}) must be at least maxBatchSize (${maxBatchSize})`);
  }
  const leaseTtlMs = positive('leaseTtlMs', settings.leaseTtlMs ?? 20_000);
  const leaseSafetyMarginMs = positive('leaseSafetyMarginMs', settings.leaseSafetyMarginMs ?? 4000);
  const leaseValidityMs = Math.ceil(leaseTtlMs / 1000) * 1000 - 1000 - leaseSafetyMarginMs;
  if (leaseValidityMs < leaseSafetyMarginMs) {
    throw new RangeError(`leaseTtlMs (${leaseTtlMs}) must be at least 2 * leaseSafetyMarginMs (${leaseSafetyMarginMs}) + 1000`);
  }
  return {
    keyspace: settings.keyspace,
    singleWriter: settings.singleWriter ?? 'lease',
    leaseTtlMs,
    leaseSafetyMarginMs,
    leaseValidityMs,
    leaseClock: settings.leaseClock ?? (() => performance.now()),
    nodeId: settings.nodeId ?? randomUUID(),
    targetPartitionSize,
    maxBatchSize,
    maxInFlight: positive('maxInFlight', settings.maxInFlight ?? 64),
    writeConsistency: types.consistencies[toKey(settings.writeConsistency ?? 'QUORUM')],
    readConsistency: types.consistencies[toKey(settings.readConsistency ?? 'QUORUM')],
    snapshotConsistency: types.consistencies[toKey(settings.snapshotConsistency ?? settings.writeConsistency ?? 'QUORUM')],
    snapshotLoadAttempts: positive('snapshotLoadAttempts', settings.snapshotLoadAttempts ?? 3),
    timeBucketMs: positive('timeBucketMs', settings.timeBucketMs ?? 3_600_000),
    eventualConsistencyDelayMs: positive('eventualConsistencyDelayMs', settings.eventualConsistencyDelayMs ?? 250),
    maxClockSkewMs: nonNegative('maxClockSkewMs', settings.maxClockSkewMs ?? 1000),
    maxOffsetSeen: positive('maxOffsetSeen', settings.maxOffsetSeen ?? 1000),
    pollIntervalMs: positive('pollIntervalMs', settings.pollIntervalMs ?? 500),
    gapTimeoutMs: positive('gapTimeoutMs', settings.gapTimeoutMs ?? 10_000),
    fetchSize: positive('fetchSize', settings.fetchSize ?? 1000),
    now: settings.now ?? Date.now,
    onEvent: settings.onEvent ?? (() => undefined),
  };
}

type ConsistencyKey = keyof typeof types.consistencies;

function toKey(name: ConsistencyName): ConsistencyKey {
  const key = ({
    ONE: 'one',
    TWO: 'two',
    THREE: 'three',
    QUORUM: 'quorum',
    LOCAL_QUORUM: 'localQuorum',
    EACH_QUORUM: 'eachQuorum',
    ALL: 'all',
    LOCAL_ONE: 'localOne',
  } as const)[name];
  return key;
}

const RETRIABLE_CODES: ReadonlySet<number> = new Set([
  types.responseErrorCodes.unavailableException,
  types.responseErrorCodes.overloaded,
  types.responseErrorCodes.isBootstrapping,
  types.responseErrorCodes.writeTimeout,
  types.responseErrorCodes.readTimeout,
  types.responseErrorCodes.truncateError,
]);

/** The longest wait between the driver's attempts to reach a host that went down. */
export const CASSANDRA_RECONNECT_MAX_MS = 5_000;

/**
 * The reconnection policy of every Cassandra client DataFlow makes: from
 * 250 ms, doubling, at most `CASSANDRA_RECONNECT_MAX_MS`. The driver's own
 * default grows to 10 minutes: after a 60 s outage the journal came back
 * about 65 s after Cassandra did (measured), with this within seconds.
 *
 * @example
 * ```ts
 * new Client({ contactPoints, localDataCenter, policies: { reconnection: cassandraReconnection() } });
 * ```
 */
export function cassandraReconnection(): policies.reconnection.ReconnectionPolicy {
  return new policies.reconnection.ExponentialReconnectionPolicy(250, CASSANDRA_RECONNECT_MAX_MS, false);
}

/** Whether a driver failure may go away when tried again (timeouts, unavailable replicas, lost connections). */
export function isRetriableDriverError(error: unknown): boolean {
  if (error instanceof errors.ResponseError) return RETRIABLE_CODES.has(error.code);
  return (
    error instanceof errors.NoHostAvailableError ||
    error instanceof errors.OperationTimedOutError ||
    error instanceof errors.BusyConnectionError
  );
}

/** True for a timeout of a conditional (Paxos) write: it may or may not have been applied. */
export function isUnknownWriteOutcome(error: unknown): boolean {
  if (error instanceof errors.ResponseError) return error.code === (types.responseErrorCodes.writeTimeout as number);
  return error instanceof errors.OperationTimedOutError;
}

/** A driver failure as the SPI's `JournalWriteError`; DataFlow errors pass through. */
export function asWriteError(persistenceId: string, message: string, error: unknown): Error {
  if (isDataflowError(error)) return error;
  return new JournalWriteError(persistenceId, message, { retriable: isRetriableDriverError(error), cause: error });
}

/** A driver failure as the SPI's `JournalReadError`; DataFlow errors pass through. */
export function asReadError(message: string, error: unknown): Error {
  if (isDataflowError(error)) return error;
  return new JournalReadError(message, { retriable: isRetriableDriverError(error), cause: error });
}
