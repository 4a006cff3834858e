/**
 * The coordinator's domain as pure functions: the registry of pipelines, their
 * last reported status, the cluster's resource usage and the system health
 * derived from them. One coordinator exists per cluster; it is event-sourced
 * (tag `coordinator`) and its registry is how a starting node knows which
 * pipelines were running before (remember entities).
 */
import { DataflowError } from '../errors/dataflow-error.js';
import type { PipelineStatus } from '../pipeline/model/pipeline-state.js';

export interface RegisteredPipeline {
  readonly pipelineId: string;
  readonly name: string;
  readonly status: PipelineStatus;
  readonly sourceType: string;
  readonly sinkType: string;
  /** Tasks of the pipeline (ADR 0013): `pipelineTaskIds(pipelineId, parallelism)`; absent: 1. */
  readonly parallelism?: number;
  readonly totalRecords: number;
  readonly failedRecords: number;
  readonly registeredAt: number;
  readonly updatedAt: number;
}

export interface ResourceUsage {
  readonly nodeId: string;
  readonly cpuPercent: number;
  readonly memoryMb: number;
  readonly at: number;
}

export type CoordinatorEvent =
  | {
      readonly type: 'PipelineRegistered';
      readonly at: number;
      readonly pipelineId: string;
      readonly name: string;
      readonly sourceType: string;
      readonly sinkType: string;
      /** Absent: 1 (events written before parallel tasks existed have none). */
      readonly parallelism?: number;
    }
  | { readonly type: 'PipelineUnregistered'; readonly at: number; readonly pipelineId: string }
  /** A registered pipeline's definition changed its source or sink type or its parallelism (its name never changes). */
  | {
      readonly type: 'PipelineRegistrationUpdated';
      readonly at: number;
      readonly pipelineId: string;
      readonly sourceType: string;
      readonly sinkType: string;
      readonly parallelism?: number;
    }
  | {
      readonly type: 'PipelineStatusUpdated';
      readonly at: number;
      readonly pipelineId: string;
      readonly status: PipelineStatus;
      readonly totalRecords: number;
      readonly failedRecords: number;
    }
  | { readonly type: 'ResourceUsageReported'; readonly at: number; readonly usage: ResourceUsage };

export const COORDINATOR_TAG = 'coordinator';

/**
 * The registry. Ids are keys of `Map`s, never of plain objects: a pipeline or
 * node may be called `constructor`, `__proto__` or `toString`. Snapshots store
 * the maps as arrays of entries (see `coordinator-snapshot.ts`).
 */
export interface CoordinatorState {
  /** Registered pipelines by pipeline id. */
  readonly pipelines: ReadonlyMap<string, RegisteredPipeline>;
  /** Latest usage per node id. */
  readonly resources: ReadonlyMap<string, ResourceUsage>;
}

export const emptyCoordinatorState: CoordinatorState = { pipelines: new Map(), resources: new Map() };

/** `map` with `key` set to `value`, leaving `map` untouched. */
function withEntry<V>(map: ReadonlyMap<string, V>, key: string, value: V): ReadonlyMap<string, V> {
  return new Map(map).set(key, value);
}

/** `map` without `key`, leaving `map` untouched. */
function withoutEntry<V>(map: ReadonlyMap<string, V>, key: string): ReadonlyMap<string, V> {
  const copy = new Map(map);
  copy.delete(key);
  return copy;
}

export type SystemHealth = 'idle' | 'healthy' | 'degraded' | 'critical';

export interface ResourceLimits {
  /** Default 80. */
  readonly maxCpuPercent: number;
  readonly maxMemoryMb: number;
}

export class CoordinatorCommandRejectedError extends DataflowError<'coordinator/command-rejected'> {
  constructor(
    readonly command: string,
    readonly pipelineId: string,
    reason: string,
  ) {
    super('coordinator/command-rejected', `Coordinator: cannot ${command} ${pipelineId}: ${reason}`, { retriable: false });
  }
}

/** `{ parallelism }` when above 1, else nothing (1 is left out, as before parallel tasks). */
function parallelismOf(parallelism: number | undefined): { parallelism?: number } {
  return parallelism !== undefined && parallelism > 1 ? { parallelism } : {};
}

export function evolveCoordinator(state: CoordinatorState, event: CoordinatorEvent): CoordinatorState {
  switch (event.type) {
    case 'PipelineRegistered':
      return {
        ...state,
        pipelines: withEntry(state.pipelines, event.pipelineId, {
          pipelineId: event.pipelineId,
          name: event.name,
          status: 'configured',
          sourceType: event.sourceType,
          sinkType: event.sinkType,
          ...parallelismOf(event.parallelism),
          totalRecords: 0,
          failedRecords: 0,
          registeredAt: event.at,
          updatedAt: event.at,
        }),
      };
    case 'PipelineRegistrationUpdated': {
      const current = state.pipelines.get(event.pipelineId);
      if (current === undefined) return state;
      const { parallelism: _previous, ...rest } = current;
      return {
        ...state,
        pipelines: withEntry(state.pipelines, event.pipelineId, { ...rest, sourceType: event.sourceType, sinkType: event.sinkType, ...parallelismOf(event.parallelism), updatedAt: event.at }),
      };
    }
    case 'PipelineUnregistered':
      if (!state.pipelines.has(event.pipelineId)) return state;
      return { ...state, pipelines: withoutEntry(state.pipelines, event.pipelineId) };
    case 'PipelineStatusUpdated': {
      const current = state.pipelines.get(event.pipelineId);
      if (current === undefined) return state;
      return {
        ...state,
        pipelines: withEntry(state.pipelines, event.pipelineId, {
          ...current,
          status: event.status,
          totalRecords: event.totalRecords,
          failedRecords: event.failedRecords,
          updatedAt: event.at,
        }),
      };
    }
    case 'ResourceUsageReported':
      return { ...state, resources: withEntry(state.resources, event.usage.nodeId, event.usage) };
  }
}

/**
 * Idle with no pipelines; critical when more than half of the running
 * pipelines have failed (failed > 50 % of running); degraded when any has
 * failed; healthy otherwise.
 */
export function systemHealth(state: CoordinatorState): SystemHealth {
  const all = [...state.pipelines.values()];
  if (all.length === 0) return 'idle';
  const failed = all.filter((p) => p.status === 'failed').length;
  const running = all.filter((p) => p.status === 'running').length;
  if (failed > 0 && failed > running * 0.5) return 'critical';
  if (failed > 0) return 'degraded';
  return 'healthy';
}

export interface SystemStatus {
  readonly health: SystemHealth;
  readonly pipelines: number;
  readonly byStatus: Readonly<Partial<Record<PipelineStatus, number>>>;
  readonly totalRecords: number;
  readonly failedRecords: number;
  readonly resources: readonly ResourceUsage[];
}

export function systemStatus(state: CoordinatorState): SystemStatus {
  const byStatus: Partial<Record<PipelineStatus, number>> = {};
  let totalRecords = 0;
  let failedRecords = 0;
  for (const p of state.pipelines.values()) {
    byStatus[p.status] = (byStatus[p.status] ?? 0) + 1;
    totalRecords += p.totalRecords;
    failedRecords += p.failedRecords;
  }
  return {
    health: systemHealth(state),
    pipelines: state.pipelines.size,
    byStatus,
    totalRecords,
    failedRecords,
    resources: [...state.resources.values()],
  };
}

/** Whether the cluster has room for more work: every node under the CPU limit and total memory within budget. */
export function resourcesAvailable(state: CoordinatorState, limits: ResourceLimits): { available: boolean; reason?: string } {
  const nodes = [...state.resources.values()];
  const hot = nodes.find((n) => n.cpuPercent >= limits.maxCpuPercent);
  if (hot !== undefined) return { available: false, reason: `node ${hot.nodeId} is at ${hot.cpuPercent}% CPU (limit ${limits.maxCpuPercent}%)` };
  const memory = nodes.reduce((sum, n) => sum + n.memoryMb, 0);
  if (memory >= limits.maxMemoryMb) return { available: false, reason: `memory in use ${memory} MB reaches the budget of ${limits.maxMemoryMb} MB` };
  return { available: true };
}

export function listPipelines(state: CoordinatorState, status?: PipelineStatus): RegisteredPipeline[] {
  return [...state.pipelines.values()]
    .filter((p) => status === undefined || p.status === status)
    .sort((a, b) => a.registeredAt - b.registeredAt || a.pipelineId.localeCompare(b.pipelineId));
}

export type CoordinatorDecision =
  | { readonly type: 'register'; readonly pipelineId: string; readonly name: string; readonly sourceType: string; readonly sinkType: string; readonly parallelism?: number }
  | { readonly type: 'unregister'; readonly pipelineId: string }
  | { readonly type: 'update-status'; readonly pipelineId: string; readonly status: PipelineStatus; readonly totalRecords: number; readonly failedRecords: number }
  | { readonly type: 'report-resources'; readonly usage: Omit<ResourceUsage, 'at'> };

/**
 * Events for `command`, or a typed refusal. Registering an existing id with
 * the same name is idempotent; with other source or sink types it updates them
 * (a changed definition).
 */
export function decideCoordinator(
  state: CoordinatorState,
  command: CoordinatorDecision,
  now: number,
): { ok: true; events: CoordinatorEvent[] } | { ok: false; error: CoordinatorCommandRejectedError } {
  switch (command.type) {
    case 'register': {
      const existing = state.pipelines.get(command.pipelineId);
      if (existing !== undefined) {
        if (existing.name === command.name) {
          const parallelism = parallelismOf(command.parallelism);
          if (existing.sourceType === command.sourceType && existing.sinkType === command.sinkType && (existing.parallelism ?? 1) === (command.parallelism ?? 1)) {
            return { ok: true, events: [] };
          }
          return {
            ok: true,
            events: [{ type: 'PipelineRegistrationUpdated', at: now, pipelineId: command.pipelineId, sourceType: command.sourceType, sinkType: command.sinkType, ...parallelism }],
          };
        }
        return { ok: false, error: new CoordinatorCommandRejectedError('register', command.pipelineId, `the id is taken by ${existing.name}`) };
      }
      const taken = [...state.pipelines.values()].find((p) => p.name === command.name);
      if (taken !== undefined) {
        return { ok: false, error: new CoordinatorCommandRejectedError('register', command.pipelineId, `the name ${command.name} is taken by ${taken.pipelineId}`) };
      }
      return {
        ok: true,
        events: [
          {
            type: 'PipelineRegistered',
            at: now,
            pipelineId: command.pipelineId,
            name: command.name,
            sourceType: command.sourceType,
            sinkType: command.sinkType,
            ...parallelismOf(command.parallelism),
          },
        ],
      };
    }
    case 'unregister':
      if (!state.pipelines.has(command.pipelineId)) return { ok: true, events: [] };
      return { ok: true, events: [{ type: 'PipelineUnregistered', at: now, pipelineId: command.pipelineId }] };
    case 'update-status': {
      const existing = state.pipelines.get(command.pipelineId);
      if (existing === undefined) {
        return { ok: false, error: new CoordinatorCommandRejectedError('update the status of', command.pipelineId, 'it is not registered') };
      }
      if (existing.status === command.status && existing.totalRecords === command.totalRecords && existing.failedRecords === command.failedRecords) {
        return { ok: true, events: [] };
      }
      return { ok: true, events: [{ type: 'PipelineStatusUpdated', at: now, pipelineId: command.pipelineId, status: command.status, totalRecords: command.totalRecords, failedRecords: command.failedRecords }] };
    }
    case 'report-resources':
      return { ok: true, events: [{ type: 'ResourceUsageReported', at: now, usage: { ...command.usage, at: now } }] };
  }
}
