/**
 * A reply that is either a value or an error (Pekko's `StatusReply`). Actors
 * answer every command with one, so a caller never waits for an answer that
 * will not come, and never mistakes an error object for a value.
 */
import { DataflowError, isDataflowError } from '../errors/dataflow-error.js';
import type { ActorRef } from './actor-ref.js';
import type { AskOptions } from './ask.js';
import { ask } from './ask.js';

export type StatusReply<T> =
  | { readonly status: 'success'; readonly value: T }
  | { readonly status: 'error'; readonly error: Error };

export const StatusReply = {
  success<T>(value: T): StatusReply<T> {
    return { status: 'success', value };
  },
  /** An error reply; a non-`Error` is wrapped so the caller always gets an `Error` with the original as `cause`. */
  error<T = never>(error: unknown): StatusReply<T> {
    return { status: 'error', error: error instanceof Error ? error : new StatusReplyError(error) };
  },
  /** A success of `undefined`: the command was done and there is nothing to return. */
  ack(): StatusReply<void> {
    return { status: 'success', value: undefined };
  },
  isStatusReply(value: unknown): value is StatusReply<unknown> {
    if (typeof value !== 'object' || value === null) return false;
    const status = (value as { status?: unknown }).status;
    return (status === 'success' && 'value' in value) || (status === 'error' && (value as { error?: unknown }).error instanceof Error);
  },
} as const;

/** An actor replied with an error that was not an `Error` instance. */
export class StatusReplyError extends DataflowError<'actor/status-reply-error'> {
  constructor(cause: unknown) {
    super('actor/status-reply-error', `The actor replied with an error: ${describe(cause)}`, { retriable: false, cause });
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * {@link ask} for actors that answer with a {@link StatusReply}: resolves with
 * the value of a success, rejects with the error of an error reply (its
 * `retriable` flag intact), and with `AskTimeoutError` when no reply comes.
 *
 * @example
 * ```ts
 * const seq = await askWithStatus<EntityCommand, number>(entity, (replyTo) => ({ type: 'record', replyTo }), { timeoutMs: 5_000 });
 * ```
 */
export async function askWithStatus<M, T>(
  target: ActorRef<M>,
  build: (replyTo: ActorRef<StatusReply<T>>) => NoInfer<M>,
  options: AskOptions,
): Promise<T> {
  const reply = await ask<M, StatusReply<T>>(target, build, options);
  if (reply.status === 'success') return reply.value;
  throw reply.error;
}

/** True when `error` came from an actor's error reply that carried no `Error`. */
export function isStatusReplyError(error: unknown): error is StatusReplyError {
  return isDataflowError(error, 'actor/status-reply-error');
}
