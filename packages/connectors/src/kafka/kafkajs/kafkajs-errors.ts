/**
 * Maps kafkajs failures onto the port's typed errors. kafkajs marks every
 * error `retriable` itself (connection problems, leader changes, timeouts,
 * coordinator moves, ...); that flag is kept. When kafkajs gave up after its
 * own retries (`KafkaJSNumberOfRetriesExceeded`, non-retriable as a wrapper),
 * the underlying condition decides: a broker that stayed unreachable for the
 * client's retry budget may well come back, so the error stays retriable.
 */
import { kafkaError, KafkaOperationError, type KafkaProducerFencedError, type KafkaRebalanceError } from '../kafka-errors.js';

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

/** Protocol errors that mean the group's coordinator is moving or loading (a broker just started, a leader changed). */
const COORDINATOR_MOVING = new Set(['NOT_COORDINATOR_FOR_GROUP', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'GROUP_LOAD_IN_PROGRESS']);
const COORDINATOR_ATTEMPTS = 6;

/**
 * `kafkaJsCall` for an admin request to a group's coordinator. kafkajs'
 * admin looks the coordinator up once per call and does not retry when it
 * moved (its consumer does); on a broker that just started that is the
 * first answer for a few hundred ms. Retried here with a short backoff
 * (100 ms doubling, 6 attempts, about 3 s) before the error reaches the
 * caller, typed and retriable as before.
 */
export async function coordinatorCall<T>(operation: string, fn: () => Promise<T>, backoffMs = 100): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await kafkaJsCall(operation, fn);
    } catch (error) {
      if (attempt >= COORDINATOR_ATTEMPTS || !(error instanceof KafkaOperationError) || !COORDINATOR_MOVING.has(error.code)) throw error;
      await new Promise((done) => setTimeout(done, backoffMs * 2 ** (attempt - 1)));
    }
  }
}
