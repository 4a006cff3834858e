/**
 * Decides whether a failure is transient (retried with backoff) or permanent
 * (fails the pipeline or goes through the stage's error policy). DataFlow
 * errors say so themselves; for foreign errors (driver errors without a flag)
 * the known transient kinds of docs/domain.md are recognised by code and message.
 */
import { isDataflowError } from '../../errors/dataflow-error.js';
import type { FailureInfo } from './pipeline-events.js';

const TRANSIENT_CODES = new Set([
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '53300', // too_many_connections
  '57P03', // cannot_connect_now
]);

const TRANSIENT_MESSAGE =
  /time(d)?[ -]?out|connection (failed|refused|reset|closed)|service unavailable|\b503\b|rate[ -]?limit|\b429\b|too many requests|temporar(y|ily)|network error|deadlock|resource(s)? exhausted|unavailable/i;

/** Turns any thrown value into the failure recorded in events. */
export function classifyFailure(error: unknown): FailureInfo {
  if (isDataflowError(error)) return { message: error.message, tag: error.tag, retriable: error.retriable };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const retriable = (typeof code === 'string' && TRANSIENT_CODES.has(code)) || TRANSIENT_MESSAGE.test(error.message);
    return { message: error.message, retriable };
  }
  return { message: String(error), retriable: false };
}
