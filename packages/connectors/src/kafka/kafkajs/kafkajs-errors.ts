/**
 * Maps kafkajs failures onto the port's typed errors. kafkajs marks every
 * error `retriable` itself (connection problems, leader changes, timeouts,
 * coordinator moves, ...); that flag is kept. When kafkajs gave up after its
 * own retries (`KafkaJSNumberOfRetriesExceeded`, non-retriable as a wrapper),
 * the underlying condition decides: a broker that stayed unreachable for the
 * client's retry budget may well come back, so the error stays retriable.
 */
import { kafkaError, type KafkaOperationError, type KafkaProducerFencedError, type KafkaRebalanceError } from '../kafka-errors.js';

interface KafkaJsLikeError {
  readonly name?: unknown;
  readonly message?: unknown;
  readonly type?: unknown;
  readonly retriable?: unknown;
  readonly cause?: unknown;
  readonly originalError?: unknown;
  readonly errors?: unknown;
}

function asRecord(value: unknown): KafkaJsLikeError | undefined {
  return typeof value === 'object' && value !== null ? value : undefined;
}

/** The innermost error with a protocol `type` (or the innermost one at all). */
function rootOf(error: unknown): KafkaJsLikeError | undefined {
  let current = asRecord(error);
  for (let depth = 0; current !== undefined && depth < 8; depth++) {
    if (typeof current.type === 'string') return current;
    const next = asRecord(current.originalError) ?? asRecord(current.cause) ?? (Array.isArray(current.errors) ? asRecord(current.errors[0]) : undefined);
    if (next === undefined) return current;
    current = next;
  }
  return current;
}

/** Turns any kafkajs failure of `operation` into a typed port error. */
export function fromKafkaJs(operation: string, error: unknown): KafkaOperationError | KafkaProducerFencedError | KafkaRebalanceError {
  const top = asRecord(error);
  const root = rootOf(error);
  const code = typeof root?.type === 'string' ? root.type : typeof root?.name === 'string' ? root.name : 'UNKNOWN';
  const retriable = top?.retriable === true || root?.retriable === true;
  const message = typeof top?.message === 'string' ? top.message : String(error);
  return kafkaError({ adapter: 'kafkajs', operation, code, retriable, cause: error }, message);
}

/** Runs `fn`, rethrowing its failure as a typed port error. */
export async function kafkaJsCall<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw fromKafkaJs(operation, error);
  }
}
