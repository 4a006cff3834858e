/**
 * Request-response with an actor: the request carries a one-shot `replyTo`
 * ref, and the answer (or a timeout) settles a promise.
 */
import { AskTimeoutError } from './actor-errors.js';
import type { ActorRef } from './actor-ref.js';
import { runtimeOf } from './actor-runtime.js';

/** Options of {@link ask}. */
export interface AskOptions {
  /** Measured on the system's scheduler, so a test clock controls it. */
  readonly timeoutMs: number;
}

/**
 * Sends the message built around a one-shot `replyTo` ref and waits for the
 * first reply. Rejects with {@link AskTimeoutError} (retriable) when no reply
 * comes within `timeoutMs`; a reply after that goes to dead letters.
 *
 * TypeScript cannot infer the reply type from an inline object literal, so
 * name both types, or pass a message factory with a declared return type:
 *
 * @example
 * ```ts
 * const total = await ask<CounterMsg, number>(counter, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 });
 * const getTotal = (replyTo: ActorRef<number>): CounterMsg => ({ type: 'get', replyTo });
 * const same = await ask(counter, getTotal, { timeoutMs: 1_000 });
 * ```
 */
export function ask<M, R>(target: ActorRef<M>, build: (replyTo: ActorRef<R>) => NoInfer<M>, options: AskOptions): Promise<R> {
  const runtime = runtimeOf(target);
  if (runtime === undefined) return Promise.reject(new TypeError(`${target.path} is not an actor of an actor system`));
  return new Promise<R>((resolve, reject) => {
    let done = false;
    const path = runtime.nextAskPath(target.path);
    const timeout = runtime.scheduler.schedule(options.timeoutMs, () => {
      if (done) return;
      done = true;
      reject(new AskTimeoutError(target.path, options.timeoutMs));
    });
    const replyTo: ActorRef<R> = {
      path,
      tell(reply: R) {
        if (done) {
          runtime.deadLetter(path, reply, 'ask-completed');
          return;
        }
        done = true;
        timeout.cancel();
        resolve(reply);
      },
    };
    let request: M;
    try {
      request = build(replyTo);
    } catch (error) {
      done = true;
      timeout.cancel();
      reject(error instanceof Error ? error : new Error('ask: building the request failed', { cause: error }));
      return;
    }
    target.tell(request);
  });
}
