/**
 * An actor system wired to a test clock (Pekko's `ActorTestKit`): timers and
 * backoffs move only with `advance`, and each advance waits until the actors
 * have handled what the fired timers sent.
 */
import type { ActorSystem } from '../actor/actor-system.js';
import { createActorSystem } from '../actor/actor-system.js';
import type { Instrumentation, InstrumentationEvent } from '../instrumentation/instrumentation.js';
import { TestClock } from './test-clock.js';
import { createTestProbe, type TestProbe } from './test-probe.js';

/** Options of {@link createActorTestKit}. */
export interface ActorTestKitOptions {
  readonly name?: string;
  /** The random source for backoff jitter (default: always 0, so delays are exactly exponential). */
  readonly random?: () => number;
  readonly startAt?: number;
  readonly instrumentation?: Instrumentation<InstrumentationEvent>;
}

/** A test actor system, its clock, and helpers. */
export interface ActorTestKit {
  readonly system: ActorSystem;
  readonly clock: TestClock;
  createTestProbe<M>(name?: string): TestProbe<M>;
  /** Advances the clock by `ms`, firing due timers in order and letting the actors settle after each. */
  advance(ms: number): Promise<void>;
  /** Terminates the system. */
  shutdown(): Promise<void>;
}

let kitCount = 0;

/**
 * Creates an actor system on a {@link TestClock}.
 *
 * @example
 * ```ts
 * const kit = createActorTestKit();
 * const probe = kit.createTestProbe<string>();
 * kit.system.spawn(reminder(probe.ref), 'reminder');
 * await kit.advance(60_000);
 * await probe.expectMessage({ toEqual: 'ring' });
 * await kit.shutdown();
 * ```
 */
export function createActorTestKit(options: ActorTestKitOptions = {}): ActorTestKit {
  const clock = new TestClock(options.startAt === undefined ? {} : { startAt: options.startAt });
  const system = createActorSystem({
    name: options.name ?? `test-${++kitCount}`,
    clock,
    scheduler: clock,
    random: options.random ?? (() => 0),
    ...(options.instrumentation === undefined ? {} : { instrumentation: options.instrumentation }),
  });
  clock.settleWith(() => system.settled());
  return {
    system,
    clock,
    createTestProbe: <M>(name?: string) => (name === undefined ? createTestProbe<M>(system) : createTestProbe<M>(system, name)),
    advance: (ms) => clock.advanceAsync(ms),
    shutdown: () => system.terminate(),
  };
}
