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
    }
  | { readonly type: 'PipelineUnregistered'; readonly at: number; readonly pipelineId: string }
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

export interface CoordinatorState {
  readonly pipelines: Readonly<Record<string, RegisteredPipeline>>;
  /** Latest usage per node. */
  readonly resources: Readonly<Record<string, ResourceUsage>>;
}

export const emptyCoordinatorState: CoordinatorState = { pipelines: {}, resources: {} };

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

export function evolveCoordinator(state: CoordinatorState, event: CoordinatorEvent): CoordinatorState {
  switch (event.type) {
    case 'PipelineRegistered':
      return {
        ...state,
        pipelines: {
          ...state.pipelines,
          [event.pipelineId]: {
            pipelineId: event.pipelineId,
            name: event.name,
            status: 'configured',
            sourceType: event.sourceType,
            sinkType: event.sinkType,
            totalRecords: 0,
            failedRecords: 0,
            registeredAt: event.at,
            updatedAt: event.at,
          },
        },
      };
    case 'PipelineUnregistered': {
      const { [event.pipelineId]: _removed, ...rest } = state.pipelines;
      return { ...state, pipelines: rest };
    }
    case 'PipelineStatusUpdated': {
      const current = state.pipelines[event.pipelineId];
      if (current === undefined) return state;
      return {
        ...state,
        pipelines: {
          ...state.pipelines,
          [event.pipelineId]: {
            ...current,
            status: event.status,
            totalRecords: event.totalRecords,
            failedRecords: event.failedRecords,
            updatedAt: event.at,
          },
        },
      };
    }
    case 'ResourceUsageReported':
      return { ...state, resources: { ...state.resources, [event.usage.nodeId]: event.usage } };
  }
}

/**
 * Idle with no pipelines; critical when more than half of the running
 * pipelines have failed (failed > 50 % of running); degraded when any has
 * failed; healthy otherwise.
 */
export function systemHealth(state: CoordinatorState): SystemHealth {
  const all = Object.values(state.pipelines);
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
  for (const p of Object.values(state.pipelines)) {
    byStatus[p.status] = (byStatus[p.status] ?? 0) + 1;
    totalRecords += p.totalRecords;
    failedRecords += p.failedRecords;
  }
  return {
    health: systemHealth(state),
    pipelines: Object.keys(state.pipelines).length,
    byStatus,
    totalRecords,
    failedRecords,
    resources: Object.values(state.resources),
  };
}

/** Whether the cluster has room for more work: every node under the CPU limit and total memory within budget. */
export function resourcesAvailable(state: CoordinatorState, limits: ResourceLimits): { available: boolean; reason?: string } {
  const nodes = Object.values(state.resources);
  const hot = nodes.find((n) => n.cpuPercent >= limits.maxCpuPercent);
  if (hot !== undefined) return { available: false, reason: `node ${hot.nodeId} is at ${hot.cpuPercent}% CPU (limit ${limits.maxCpuPercent}%)` };
  const memory = nodes.reduce((sum, n) => sum + n.memoryMb, 0);
  if (memory >= limits.maxMemoryMb) return { available: false, reason: `memory in use ${memory} MB reaches the budget of ${limits.maxMemoryMb} MB` };
  return { available: true };
}

export function listPipelines(state: CoordinatorState, status?: PipelineStatus): RegisteredPipeline[] {
  return Object.values(state.pipelines)
    .filter((p) => status === undefined || p.status === status)
    .sort((a, b) => a.registeredAt - b.registeredAt || a.pipelineId.localeCompare(b.pipelineId));
}

export type CoordinatorDecision =
  | { readonly type: 'register'; readonly pipelineId: string; readonly name: string; readonly sourceType: string; readonly sinkType: string }
  | { readonly type: 'unregister'; readonly pipelineId: string }
  | { readonly type: 'update-status'; readonly pipelineId: string; readonly status: PipelineStatus; readonly totalRecords: number; readonly failedRecords: number }
  | { readonly type: 'report-resources'; readonly usage: Omit<ResourceUsage, 'at'> };

/** Events for `command`, or a typed refusal. Registering an existing id with the same name is idempotent. */
export function decideCoordinator(
  state: CoordinatorState,
  command: CoordinatorDecision,
  now: number,
): { ok: true; events: CoordinatorEvent[] } | { ok: false; error: CoordinatorCommandRejectedError } {
  switch (command.type) {
    case 'register': {
      const existing = state.pipelines[command.pipelineId];
      if (existing !== undefined) {
        if (existing.name === command.name) return { ok: true, events: [] };
        return { ok: false, error: new CoordinatorCommandRejectedError('register', command.pipelineId, `the id is taken by ${existing.name}`) };
      }
      const taken = Object.values(state.pipelines).find((p) => p.name === command.name);
      if (taken !== undefined) {
        return { ok: false, error: new CoordinatorCommandRejectedError('register', command.pipelineId, `the name ${command.name} is taken by ${taken.pipelineId}`) };
      }
      return { ok: true, events: [{ type: 'PipelineRegistered', at: now, pipelineId: command.pipelineId, name: command.name, sourceType: command.sourceType, sinkType: command.sinkType }] };
    }
    case 'unregister':
      if (state.pipelines[command.pipelineId] === undefined) return { ok: true, events: [] };
      return { ok: true, events: [{ type: 'PipelineUnregistered', at: now, pipelineId: command.pipelineId }] };
    case 'update-status': {
      const existing = state.pipelines[command.pipelineId];
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
