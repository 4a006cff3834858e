/**
 * A projection as a supervised actor: each incarnation runs the projection
 * (`runProjection`) until it is paused or the actor stops; a failure the
 * recovery strategy does not absorb fails the actor, and its supervisor
 * (`restartWithBackoff` by default) starts a new incarnation that resumes
 * from the stored offset.
 */
import { behavior, SupervisorStrategy, type ActorContext, type ActorRef, type ActorSystem, type Behavior, type BackoffOptions } from '@dataflow/core';
import { runProjection, type ProjectionRunDependencies } from './projection-runner.js';
import type { Projection } from './projection.js';

/** Messages of a projection actor. */
export type ProjectionMessage =
  | { readonly type: 'run-ended'; readonly outcome: { readonly ok: true; readonly value: 'aborted' | 'paused' } | { readonly ok: false; readonly error: unknown } }
  /** Starts the run again after a pause was lifted (`resume` in the store first). */
  | { readonly type: 'start' };

interface State {
  controller: AbortController | undefined;
  run: Promise<unknown> | undefined;
}

/** The behavior of a projection actor. */
export function projectionBehavior(projection: Projection, deps: ProjectionRunDependencies): Behavior<ProjectionMessage, State> {
  const start = (ctx: ActorContext<ProjectionMessage>): State => {
    const controller = new AbortController();
    const run = runProjection(projection, deps, controller.signal);
    ctx.pipeToSelf(run, (outcome) => ({ type: 'run-ended', outcome }));
    return { controller, run };
  };
  return behavior<ProjectionMessage, State>({
    initialState: () => ({ controller: undefined, run: undefined }),
    onStart: (_state, ctx) => start(ctx),
    onMessage: (state, message, ctx) => {
      if (message.type === 'start') return state.run === undefined ? start(ctx) : state;
      if (!message.outcome.ok) throw message.outcome.error;
      return { controller: undefined, run: undefined };
    },
    onStop: async (state) => {
      state.controller?.abort();
      // A failure of this run reaches the actor as its run-ended message; here it only has to be over.
      await state.run?.then(
        () => undefined,
        () => undefined,
      );
    },
  });
}

/** Default supervision of a projection: restart with backoff from 200 ms up to 30 s. */
export const DEFAULT_PROJECTION_BACKOFF: BackoffOptions = { minBackoffMs: 200, maxBackoffMs: 30_000 };

/**
 * Spawns a projection actor supervised with restart-with-backoff.
 *
 * @example
 * ```ts
 * const ref = spawnProjection(system, pipelineStatusProjection(), { queries, store, executor });
 * ```
 */
export function spawnProjection(system: ActorSystem, projection: Projection, deps: ProjectionRunDependencies, backoff: BackoffOptions = DEFAULT_PROJECTION_BACKOFF): ActorRef<ProjectionMessage> {
  return system.spawn(projectionBehavior(projection, deps), `projection-${projection.id.name}-${projection.id.key}`.replace(/[^A-Za-z0-9_-]/g, '_'), {
    supervise: SupervisorStrategy.restartWithBackoff(backoff),
  });
}
