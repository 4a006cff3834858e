/**
 * Given / when / then for event-sourced behaviors, without a journal or a
 * system (emmett's `DeciderSpecification`): given past events, when a
 * command arrives, then these events (or this state, or unhandled).
 */
import { deepStrictEqual } from 'node:assert/strict';
import type { Effect } from '../event-sourcing/effect.js';
import { applyEvents, decideCommand, type EventSourcedBehavior } from '../event-sourcing/event-sourced.js';

/** The outcome of `when`, with assertions that throw `AssertionError` on mismatch. */
export interface BehaviorOutcome<Evt, State> {
  readonly effect: Effect<Evt, State>;
  readonly events: readonly Evt[];
  /** The state after the command's events. */
  readonly state: State;
  expectEvents(expected: readonly Evt[]): BehaviorOutcome<Evt, State>;
  expectState(expected: State): BehaviorOutcome<Evt, State>;
  expectUnhandled(): BehaviorOutcome<Evt, State>;
}

/**
 * Starts a specification of `behavior`.
 *
 * @example
 * ```ts
 * BehaviorSpec.for(counter)
 *   .given([{ type: 'added', n: 1 }])
 *   .when({ type: 'add', n: 2 })
 *   .expectEvents([{ type: 'added', n: 2 }])
 *   .expectState({ total: 3 });
 * ```
 */
export const BehaviorSpec = {
  for<Cmd, Evt, State>(behavior: EventSourcedBehavior<Cmd, Evt, State>) {
    return {
      given(events: readonly Evt[] = []) {
        const before = applyEvents(behavior, behavior.emptyState, events);
        const ctx = { entityId: 'spec', persistenceId: behavior.persistenceId('spec'), lastSequenceNr: events.length };
        return {
          when(command: Cmd): BehaviorOutcome<Evt, State> {
            return outcome(decideCommand(behavior, before, command, ctx));
          },
        };
      },
    };
  },
};

function outcome<Evt, State>(decision: { effect: Effect<Evt, State>; events: readonly Evt[]; state: State }): BehaviorOutcome<Evt, State> {
  const self: BehaviorOutcome<Evt, State> = {
    ...decision,
    expectEvents: (expected) => {
      deepStrictEqual(decision.events, expected);
      return self;
    },
    expectState: (expected) => {
      deepStrictEqual(decision.state, expected);
      return self;
    },
    expectUnhandled: () => {
      deepStrictEqual(decision.effect.kind, 'unhandled');
      return self;
    },
  };
  return self;
}
