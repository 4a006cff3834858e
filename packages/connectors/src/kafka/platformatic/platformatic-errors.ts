/**
 * Maps @platformatic/kafka failures onto the port's typed errors. The client
 * marks broker errors with `canRetry` (its table of retriable Kafka error
 * codes) and reports network failures and timeouts as `PLT_KFK_NETWORK` /
 * `PLT_KFK_TIMEOUT`; those are the retriable ones. Errors are often nested
 * (`MultipleErrors` holding a `ResponseError` holding `ProtocolError`s), so the
 * whole tree is searched.
 */
import { kafkaError, type KafkaOperationError, type KafkaProducerFencedError, type KafkaRebalanceError } from '../kafka-errors.js';

interface PlatformaticLikeError {
  readonly code?: unknown;
  readonly apiId?: unknown;
  readonly canRetry?: unknown;
  readonly message?: unknown;
  readonly errors?: unknown;
  readonly cause?: unknown;
}

const RETRIABLE_CLIENT_CODES = new Set(['PLT_KFK_NETWORK', 'PLT_KFK_TIMEOUT']);

function children(e: PlatformaticLikeError): unknown[] {
  const list: unknown[] = Array.isArray(e.errors) ? [...(e.errors as unknown[])] : [];
  if (e.cause !== undefined) list.push(e.cause);
  return list;
}

/** Every error object in the tree, breadth first (bounded). */
function flatten(error: unknown): PlatformaticLikeError[] {
  const out: PlatformaticLikeError[] = [];
  const queue: unknown[] = [error];
  while (queue.length > 0 && out.length < 64) {
    const next = queue.shift();
    if (typeof next !== 'object' || next === null) continue;
    const e = next as PlatformaticLikeError;
    out.push(e);
    queue.push(...children(e));
  }
  return out;
}

/** Turns any @platformatic/kafka failure of `operation` into a typed port error. */
export function fromPlatformatic(operation: string, error: unknown): KafkaOperationError | KafkaProducerFencedError | KafkaRebalanceError {
  const all = flatten(error);
  const protocol = all.find((e) => typeof e.apiId === 'string');
  const clientCode = all.map((e) => e.code).find((c): c is string => typeof c === 'string' && c !== 'PLT_KFK_MULTIPLE' && c !== 'PLT_KFK_RESPONSE');
  const code = typeof protocol?.apiId === 'string' ? protocol.apiId : (clientCode ?? 'UNKNOWN');
  const retriable = protocol !== undefined ? all.some((e) => e.canRetry === true) : all.some((e) => typeof e.code === 'string' && RETRIABLE_CLIENT_CODES.has(e.code));
  const top = all[0];
  const message = typeof top?.message === 'string' ? top.message : String(error);
  const detail = protocol !== undefined && typeof protocol.message === 'string' && protocol !== top ? `${message} (${protocol.message})` : message;
  return kafkaError({ adapter: 'platformatic', operation, code, retriable, cause: error }, detail);
}

/** Runs `fn`, rethrowing its failure as a typed port error. */
export async function platformaticCall<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw fromPlatformatic(operation, error);
  }
}
