/**
 * Typed failures of the Kafka client port. Each adapter maps its client's
 * errors onto these, keeping the client's own "may succeed if retried"
 * classification in `retriable` and the client's error in `cause`.
 */
import { DataflowError } from '@dataflow/core';
import type { KafkaAdapterName } from './kafka-port.js';

/** What an adapter knows about a failed Kafka operation. */
export interface KafkaErrorDetails {
  readonly adapter: KafkaAdapterName;
  /** The operation, e.g. `producer.send`, `consumer.commit`. */
  readonly operation: string;
  /** Kafka's error name (`NOT_LEADER_OR_FOLLOWER`, ...) or the client's error class when there is none. */
  readonly code: string;
  readonly retriable: boolean;
  readonly cause: unknown;
}

/** A Kafka operation failed; `retriable` is the client's classification (broker unavailable, timeout, leader moved, ...). */
export class KafkaOperationError extends DataflowError<'kafka/operation-failed'> {
  readonly adapter: KafkaAdapterName;
  readonly operation: string;
  readonly code: string;
  constructor(details: KafkaErrorDetails, message: string) {
    super('kafka/operation-failed', `kafka (${details.adapter}) ${details.operation} failed [${details.code}]: ${message}`, {
      retriable: details.retriable,
      cause: details.cause,
    });
    this.adapter = details.adapter;
    this.operation = details.operation;
    this.code = details.code;
  }
}

/**
 * Another producer with the same transactional id took over (or the broker
 * expired this producer's epoch): this producer can never write again and
 * must be closed. Not retriable with the same producer; the owner of the id
 * decides whether to start a new one.
 */
export class KafkaProducerFencedError extends DataflowError<'kafka/producer-fenced'> {
  readonly adapter: KafkaAdapterName;
  readonly operation: string;
  readonly code: string;
  constructor(details: KafkaErrorDetails, message: string) {
    super('kafka/producer-fenced', `kafka (${details.adapter}) ${details.operation}: producer fenced [${details.code}]: ${message}`, {
      retriable: false,
      cause: details.cause,
    });
    this.adapter = details.adapter;
    this.operation = details.operation;
    this.code = details.code;
  }
}

/**
 * The consumer group is rebalancing or this member's generation is over
 * (commit with an old generation, unknown member): retriable once the member
 * has rejoined; the partitions may belong to another member by then.
 */
export class KafkaRebalanceError extends DataflowError<'kafka/rebalance'> {
  readonly adapter: KafkaAdapterName;
  readonly operation: string;
  readonly code: string;
  constructor(details: KafkaErrorDetails, message: string) {
    super('kafka/rebalance', `kafka (${details.adapter}) ${details.operation}: group rebalance [${details.code}]: ${message}`, {
      retriable: true,
      cause: details.cause,
    });
    this.adapter = details.adapter;
    this.operation = details.operation;
    this.code = details.code;
  }
}

/** The consumer or producer was used after `close()` or before it was ready (a programming error). */
export class KafkaClientStateError extends DataflowError<'kafka/client-state'> {
  constructor(adapter: KafkaAdapterName, message: string) {
    super('kafka/client-state', `kafka (${adapter}): ${message}`, { retriable: false });
  }
}

/** A `RebalanceListener` callback threw or rejected; the consumer stops and reports it from the next `poll`. */
export class KafkaRebalanceListenerError extends DataflowError<'kafka/rebalance-listener-failed'> {
  constructor(adapter: KafkaAdapterName, callback: 'onAssigned' | 'onRevoked', cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super('kafka/rebalance-listener-failed', `kafka (${adapter}): the rebalance listener's ${callback} failed: ${detail}`, { retriable: false, cause });
  }
}

/** Any of the Kafka port's errors. */
export type KafkaError = KafkaOperationError | KafkaProducerFencedError | KafkaRebalanceError | KafkaClientStateError | KafkaRebalanceListenerError;

/** Broker error names meaning "this producer is fenced". */
export const FENCED_CODES: ReadonlySet<string> = new Set(['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH', 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED']);
/** Broker error names meaning "the group moved on without this member's generation". */
export const REBALANCE_CODES: ReadonlySet<string> = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID']);

/** Builds the typed error for a classified failure. */
export function kafkaError(details: KafkaErrorDetails, message: string): KafkaOperationError | KafkaProducerFencedError | KafkaRebalanceError {
  if (FENCED_CODES.has(details.code)) return new KafkaProducerFencedError(details, message);
  if (REBALANCE_CODES.has(details.code)) return new KafkaRebalanceError(details, message);
  return new KafkaOperationError(details, message);
}
