/**
 * The coordinator actor: the cluster's registry of pipelines as an
 * event-sourced behavior (persistence id `coordinator`, every event tagged
 * `coordinator`). It judges commands with the pure model of
 * `coordinator-model.ts` and is how a starting node learns which pipelines
 * exist and which were running (remember entities).
 */
import type { ActorRef } from '../actor/actor-ref.js';
import type { ActorSpawner } from '../event-sourcing/spawn-event-sourced.js';
import { spawnEventSourced } from '../event-sourcing/spawn-event-sourced.js';
import { none, persist, reply, type Effect } from '../event-sourcing/effect.js';
import { eventSourced, type EventSourcedBehavior } from '../event-sourcing/event-sourced.js';
import type { EntityPersistence } from '../event-sourcing/recovery.js';
import { every } from '../event-sourcing/snapshot-policy.js';
import type { PipelineStatus } from '../pipeline/model/pipeline-state.js';
import {
  COORDINATOR_TAG,
  decideCoordinator,
  emptyCoordinatorState,
  evolveCoordinator,
  listPipelines,
  resourcesAvailable,
  systemStatus,
  type CoordinatorCommandRejectedError,
  type CoordinatorDecision,
  type CoordinatorEvent,
  type CoordinatorState,
  type RegisteredPipeline,
  type ResourceLimits,
  type SystemStatus,
} from './coordinator-model.js';
import { COORDINATOR_STATE_SCHEMA_VERSION, coordinatorPersistence, fromStoredCoordinatorState } from './coordinator-snapshot.js';

/** The persistence id (and entity id) of the one coordinator of a cluster. */
export const COORDINATOR_PERSISTENCE_ID = 'coordinator';

/** The answer to a command that changes the registry. */
export type CoordinatorReply =
  | { readonly ok: true; readonly pipeline: RegisteredPipeline | undefined }
  | { readonly ok: false; readonly error: CoordinatorCommandRejectedError };

/** Whether the cluster has room for more work, and why not. */
export interface ResourceCheck {
  readonly available: boolean;
  readonly reason?: string;
}

/** What the coordinator accepts. */
export type CoordinatorCommand =
  | {
      readonly type: 'register';
      readonly pipelineId: string;
      readonly name: string;
      readonly sourceType: string;
      readonly sinkType: string;
      readonly replyTo: ActorRef<CoordinatorReply>;
    }
  | { readonly type: 'unregister'; readonly pipelineId: string; readonly replyTo: ActorRef<CoordinatorReply> }
  | {
      readonly type: 'update-status';
      readonly pipelineId: string;
      readonly status: PipelineStatus;
      readonly totalRecords: number;
      readonly failedRecords: number;
      readonly replyTo: ActorRef<CoordinatorReply>;
    }
  | {
      readonly type: 'report-resources';
      readonly nodeId: string;
      readonly cpuPercent: number;
      readonly memoryMb: number;
      readonly replyTo: ActorRef<CoordinatorReply>;
    }
  | { readonly type: 'get-system-status'; readonly replyTo: ActorRef<SystemStatus> }
  | { readonly type: 'get-pipeline'; readonly pipelineId: string; readonly replyTo: ActorRef<RegisteredPipeline | undefined> }
  | { readonly type: 'list-pipelines'; readonly status?: PipelineStatus; readonly replyTo: ActorRef<readonly RegisteredPipeline[]> }
  | { readonly type: 'check-resources'; readonly replyTo: ActorRef<ResourceCheck> };

/** Default limits of `check-resources`: 80 % CPU on every node, 4 GiB of memory in total. */
export const DEFAULT_RESOURCE_LIMITS: ResourceLimits = { maxCpuPercent: 80, maxMemoryMb: 4096 };

export interface CoordinatorBehaviorOptions {
  /** Epoch milliseconds stamped on events (pass the actor system's clock). */
  readonly now: () => number;
  /** Limits of `check-resources` (default {@link DEFAULT_RESOURCE_LIMITS}). */
  readonly limits?: ResourceLimits;
}

type Mutation = Extract<CoordinatorCommand, { type: 'register' | 'unregister' | 'update-status' | 'report-resources' }>;

function decisionOf(command: Mutation): CoordinatorDecision {
  switch (command.type) {
    case 'register':
      return { type: 'register', pipelineId: command.pipelineId, name: command.name, sourceType: command.sourceType, sinkType: command.sinkType };
    case 'unregister':
      return { type: 'unregister', pipelineId: command.pipelineId };
    case 'update-status':
      return {
        type: 'update-status',
        pipelineId: command.pipelineId,
        status: command.status,
        totalRecords: command.totalRecords,
        failedRecords: command.failedRecords,
      };
    case 'report-resources':
      return { type: 'report-resources', usage: { nodeId: command.nodeId, cpuPercent: command.cpuPercent, memoryMb: command.memoryMb } };
  }
}

/**
 * The coordinator as a behavior value: snapshots every 50 events keeping 2
 * (and deleting the events they cover, as status updates arrive with every
 * batch of every pipeline). Its state holds `Map`s, which snapshots store as
 * entries: run it with {@link coordinatorPersistence} around the persistence
 * (as `spawnCoordinator` does), or its snapshots fail to serialize.
 * Snapshots of schema version 1 (objects keyed by id) are upcast.
 *
 * @example
 * ```ts
 * const coordinator = spawnEventSourced(system, coordinatorBehavior({ now: () => system.clock.now() }), 'coordinator', {
 *   persistence: coordinatorPersistence(persistence),
 * });
 * ```
 */
export function coordinatorBehavior(options: CoordinatorBehaviorOptions): EventSourcedBehavior<CoordinatorCommand, CoordinatorEvent, CoordinatorState> {
  const limits = options.limits ?? DEFAULT_RESOURCE_LIMITS;
  return eventSourced<CoordinatorCommand, CoordinatorEvent, CoordinatorState>({
    persistenceId: () => COORDINATOR_PERSISTENCE_ID,
    emptyState: emptyCoordinatorState,
    onCommand: (state, command): Effect<CoordinatorEvent, CoordinatorState> => {
      switch (command.type) {
        case 'get-system-status':
          return reply(command.replyTo, systemStatus(state));
        case 'get-pipeline':
          return reply(command.replyTo, state.pipelines.get(command.pipelineId));
        case 'list-pipelines':
          return reply(command.replyTo, listPipelines(state, command.status));
        case 'check-resources':
          return reply(command.replyTo, resourcesAvailable(state, limits));
        default: {
          const result = decideCoordinator(state, decisionOf(command), options.now());
          if (!result.ok) return reply(command.replyTo, { ok: false, error: result.error });
          const pipelineId = command.type === 'report-resources' ? undefined : command.pipelineId;
          const answer = (after: CoordinatorState): CoordinatorReply => ({
            ok: true,
            pipeline: pipelineId === undefined ? undefined : after.pipelines.get(pipelineId),
          });
          if (result.events.length === 0) return none<CoordinatorEvent, CoordinatorState>().thenReply(command.replyTo, () => answer(state));
          return persist<CoordinatorEvent, CoordinatorState>(result.events).thenReply(command.replyTo, answer);
        }
      }
    },
    onEvent: evolveCoordinator,
    tagger: () => [COORDINATOR_TAG],
    snapshot: every(50, { keep: 2, deleteEvents: true }),
    stateSchemaVersion: COORDINATOR_STATE_SCHEMA_VERSION,
    snapshotUpcasters: { 1: (stored) => fromStoredCoordinatorState(stored, 1) },
  });
}

export interface SpawnCoordinatorOptions {
  readonly persistence: EntityPersistence;
  /** Epoch milliseconds stamped on events (default: the wall clock). */
  readonly now?: () => number;
  readonly limits?: ResourceLimits;
  /** Actor name (default `coordinator`). */
  readonly name?: string;
}

/**
 * Spawns the coordinator; it recovers its registry from the journal.
 *
 * @example
 * ```ts
 * const coordinator = spawnCoordinator(system, { persistence, now: () => system.clock.now() });
 * const running = await ask<CoordinatorCommand, readonly RegisteredPipeline[]>(
 *   coordinator, (replyTo) => ({ type: 'list-pipelines', status: 'running', replyTo }), { timeoutMs: 5_000 });
 * ```
 */
export function spawnCoordinator(parent: ActorSpawner, options: SpawnCoordinatorOptions): ActorRef<CoordinatorCommand> {
  const behavior = coordinatorBehavior({
    now: options.now ?? Date.now,
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  });
  return spawnEventSourced(parent, behavior, COORDINATOR_PERSISTENCE_ID, {
    persistence: coordinatorPersistence(options.persistence),
    name: options.name ?? 'coordinator',
  });
}
