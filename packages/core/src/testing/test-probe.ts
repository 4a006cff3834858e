/**
 * A test probe (Pekko's `TestProbe`): an actor that records what it receives,
 * with expectations that wait for messages. Waits are bounded by real time so
 * a broken test fails instead of hanging; actor timers still run on the
 * system's injected clock.
 */
import { isDeepStrictEqual } from 'node:util';
import type { ActorRef } from '../actor/actor-ref.js';
import type { ActorSystem } from '../actor/actor-system.js';
import { receive } from '../actor/behavior.js';
import { DataflowError } from '../errors/dataflow-error.js';

/** An expectation of a probe was not met. */
export class TestProbeExpectationError extends DataflowError<'testing/probe-expectation'> {
  constructor(message: string) {
    super('testing/probe-expectation', message);
  }
}

/** What {@link TestProbe.expectMessage} checks. */
export interface MessageExpectation<M> {
  /** Real-time bound of the wait (default 3000 ms). */
  readonly withinMs?: number;
  /** The message must deep-equal this value. */
  readonly toEqual?: M;
  /** The message must satisfy this predicate. */
  readonly toSatisfy?: (message: M) => boolean;
}

/** A probe actor and its expectations. */
export interface TestProbe<M> {
  readonly ref: ActorRef<M>;
  /** Waits for the next message and returns it; rejects if none comes in time or it does not match. */
  expectMessage(expectation?: MessageExpectation<M>): Promise<M>;
  /**
   * Fails if a message arrives. Without `forMs`, waits until the system has
   * settled (deterministic with a test clock); with it, also waits `forMs` of
   * real time.
   */
  expectNoMessage(forMs?: number): Promise<void>;
  /** Waits for the next `count` messages. */
  receiveMessages(count: number, withinMs?: number): Promise<M[]>;
  /** Stops the probe actor. */
  stop(): Promise<void>;
}

const DEFAULT_WITHIN_MS = 3000;
let probeCount = 0;

/**
 * Creates a probe actor in `system`.
 *
 * @example
 * ```ts
 * const probe = createTestProbe<number>(system);
 * counter.tell({ type: 'get', replyTo: probe.ref });
 * await probe.expectMessage({ toEqual: 3 });
 * ```
 */
export function createTestProbe<M>(system: ActorSystem, name = `$probe-${++probeCount}`): TestProbe<M> {
  const inbox: M[] = [];
  let waiter: (() => void) | undefined;
  const ref = system.spawn(
    receive<M>((message) => {
      inbox.push(message);
      waiter?.();
    }),
    name,
  );

  const next = (withinMs: number): Promise<M> => {
    if (inbox.length > 0) return Promise.resolve(inbox.shift() as M);
    return new Promise<M>((resolve, reject) => {
      const timeout = setTimeout(() => {
        waiter = undefined;
        reject(new TestProbeExpectationError(`${ref.path} received no message within ${withinMs} ms`));
      }, withinMs);
      waiter = () => {
        waiter = undefined;
        clearTimeout(timeout);
        resolve(inbox.shift() as M);
      };
    });
  };

  return {
    ref,
    async expectMessage(expectation = {}) {
      const message = await next(expectation.withinMs ?? DEFAULT_WITHIN_MS);
      if ('toEqual' in expectation && !isDeepStrictEqual(message, expectation.toEqual)) {
        throw new TestProbeExpectationError(
          `${ref.path} expected ${JSON.stringify(expectation.toEqual)} but received ${JSON.stringify(message)}`,
        );
      }
      if (expectation.toSatisfy !== undefined && !expectation.toSatisfy(message)) {
        throw new TestProbeExpectationError(`${ref.path} received ${JSON.stringify(message)}, which does not satisfy the predicate`);
      }
      return message;
    },
    async expectNoMessage(forMs) {
      await system.settled();
      if (forMs !== undefined) {
        await new Promise((resolve) => setTimeout(resolve, forMs));
        await system.settled();
      }
      if (inbox.length > 0) {
        throw new TestProbeExpectationError(`${ref.path} expected no message but received ${JSON.stringify(inbox[0])}`);
      }
    },
    async receiveMessages(count, withinMs = DEFAULT_WITHIN_MS) {
      const messages: M[] = [];
      for (let i = 0; i < count; i++) messages.push(await next(withinMs));
      return messages;
    },
    stop: () => system.stop(ref),
  };
}
