/**
 * Hosts an event-sourced behavior in an actor of the runtime. The actor hands
 * every command to an `EventSourcedEntity` without waiting on it, so the
 * entity's own bounded stash (not the unbounded mailbox) holds commands while
 * it recovers or writes. A failed write restarts the entity inside the actor
 * with backoff (recovering from the journal); a concurrency conflict or a
 * permanent recovery failure fails the actor (`actor.failed`, then it stops
 * with reason `failed`, or its `supervise` policy restarts it).
 */
import type { ActorContext, SpawnOptions } from '../actor/actor-context.js';
import type { SupervisionPolicy } from '../supervision/supervisor-strategy.js';
import type { ActorRef } from '../actor/actor-ref.js';
import type { Behavior } from '../actor/behavior.js';
import type { EventSourcedBehavior } from './event-sourced.js';
import { EventSourcedEntity } from './event-sourced-entity.js';
import type { EntityPersistence } from './recovery.js';

/** Anything that can spawn an actor: the actor system or an actor's context. */
export interface ActorSpawner {
  spawn<M, S>(behavior: Behavior<M, S>, name: string, options?: SpawnOptions): ActorRef<M>;
}

export interface SpawnEventSourcedOptions {
  /** Journal and snapshot store (a `PersistencePlugin` fits). */
  readonly persistence: EntityPersistence;
  /** Actor name (default: the persistence id). */
  readonly name?: string;
  /** Uniform random number in [0, 1) for backoff jitter (default `Math.random`). */
  readonly random?: () => number;
  /**
   * What to do when the entity fails for good (a concurrency conflict, a
   * permanent recovery failure): default stop, as for any actor. A restart
   * (e.g. `SupervisorStrategy.restartWithBackoff`) recovers a new entity from the journal.
   */
  readonly supervise?: SupervisionPolicy;
}

/**
 * Spawns the entity `entityId` of `behavior` and starts its recovery.
 *
 * @example
 * ```ts
 * const counter1 = spawnEventSourced(system, counter, '1', { persistence });
 * counter1.tell({ type: 'add', n: 2 });
 * const total = await ask(counter1, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 });
 * ```
 */
export function spawnEventSourced<Cmd, Evt, State>(
  parent: ActorSpawner,
  behavior: EventSourcedBehavior<Cmd, Evt, State>,
  entityId: string,
  options: SpawnEventSourcedOptions,
): ActorRef<Cmd> {
  const name = options.name ?? behavior.persistenceId(entityId);
  const host: Behavior<Cmd, EventSourcedEntity<Cmd, Evt, State> | undefined> = {
    initialState: undefined,
    onStart: (_state, ctx: ActorContext<Cmd>) => {
      const entity = new EventSourcedEntity(
        behavior,
        entityId,
        options.persistence,
        {
          scheduler: ctx.system.scheduler,
          clock: ctx.system.clock,
          events: ctx.system.events,
          path: ctx.path,
          ...(options.random === undefined ? {} : { random: options.random }),
          onTerminated: (lifecycle) => {
            if (lifecycle.status === 'stopped') {
              ctx.stopSelf();
              return;
            }
            // A failure must look like one: fail the actor (through its mailbox) under its supervision.
            const error = lifecycle.error;
            ctx.pipeToSelf(Promise.resolve(), (): Cmd => {
              throw error;
            });
          },
        },
        {
          self: ctx.self,
          timers: ctx.timers,
          spawn: (child, name, spawnOptions) => ctx.spawn(child, name, spawnOptions),
          child: <C>(name: string) => ctx.child<C>(name),
        },
      );
      entity.start();
      return entity;
    },
    onMessage: (entity, command) => {
      entity?.receive(command);
      return entity;
    },
    onStop: (entity) => {
      entity?.stop();
    },
  };
  return parent.spawn(host, name, options.supervise === undefined ? {} : { supervise: options.supervise });
}
