/**
 * The tasks of a parallel pipeline that run on other nodes (ADR 0013): each
 * task is placed by the shard of its own id, so the node that owns the
 * pipeline (task 0, where the API sends requests about it) reaches the other
 * tasks through their nodes' admin API, with the task id in the path
 * (`/api/v1/pipelines/<id>.<k>/...`). Requests go straight to the owner of
 * the task's shard and carry `x-dataflow-forwarded-by`, so the owner never
 * forwards them on: a task moving meanwhile answers 503 (retriable), as a
 * forwarded API request does. Answers other than success become the API's
 * own error (`ApiError` with the owner's status, code and message), so the
 * caller's client sees the task's 404, 409 or 503 as is.
 */
import type { ConfiguredPipelineState, PipelineDefinition, PipelineState } from '@dataflow/core';
import { ApiError } from '../api/api-errors.js';
import type { RemoteTasks, TaskAction } from '../node/dataflow-node.js';
import type { PipelineOwner } from './pipeline-routing.js';

export interface RemoteTasksOptions {
  readonly nodeId: string;
  /** The owner of a task's shard now. */
  readonly ownerOf: (taskId: string) => PipelineOwner;
  /** The cluster's shared API token. */
  readonly authToken?: string;
  /** Per request (default 15 000 ms). */
  readonly timeoutMs?: number;
  /** How long a command waits for a task that is not there yet (default 5 000 ms). */
  readonly retryMs?: number;
}

/**
 * Builds the node hook that reaches tasks on other nodes.
 *
 * @example
 * ```ts
 * const hooks = { hosts, remoteCoordinator, remoteTasks: remoteTasks({ nodeId, ownerOf: (id) => runtime.ownerOf(id) }) };
 * ```
 */
export function remoteTasks(options: RemoteTasksOptions): RemoteTasks {
  /**
   * A command retried while the task is not there yet (404: its node has not
   * adopted it since the pipeline was created or resized; 503: it moves), for
   * at most `retryMs`; then the last answer is the error.
   */
  const retrying = async <T>(work: () => Promise<T>): Promise<T> => {
    const deadline = Date.now() + (options.retryMs ?? 5_000);
    for (;;) {
      try {
        return await work();
      } catch (error) {
        if (!(error instanceof ApiError) || (error.status !== 404 && error.status !== 503) || Date.now() >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  };
  const call = async (taskId: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE', suffix: string, body?: unknown): Promise<{ status: number; body: unknown }> => {
    const owner = options.ownerOf(taskId);
    if (owner === undefined) throw new ApiError(503, 'unavailable', `Task ${taskId} has no live node right now (it is moving to another node); retry`);
    if (owner.self) throw new ApiError(503, 'unavailable', `Task ${taskId} belongs to this node but does not run here yet; retry`);
    const headers: Record<string, string> = { 'x-dataflow-forwarded-by': options.nodeId };
    if (options.authToken !== undefined) headers['authorization'] = `Bearer ${options.authToken}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${owner.url}/api/v1/pipelines/${encodeURIComponent(taskId)}${suffix}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
      });
    } catch (error) {
      const failure = new ApiError(503, 'unavailable', `The node running task ${taskId} (${owner.url}) cannot be reached: ${error instanceof Error ? error.message : String(error)}; retry`);
      throw Object.assign(failure, { cause: error });
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = { message: text };
    }
    if (response.ok) return { status: response.status, body: parsed };
    const answer = (parsed ?? {}) as { error?: unknown; message?: unknown; details?: unknown };
    throw new ApiError(
      response.status,
      typeof answer.error === 'string' ? answer.error : 'remote-task',
      `task ${taskId} on ${owner.nodeId}: ${typeof answer.message === 'string' ? answer.message : `answered ${response.status}`}`,
      Array.isArray(answer.details) ? (answer.details as ApiError['details']) : [],
    );
  };
  return {
    state: async (taskId) => {
      // Not found is an answer here (the caller decides); only a move (503) is waited out.
      const answer = await retrying(async () => {
        try {
          return await call(taskId, 'GET', '');
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) return undefined;
          throw error;
        }
      });
      return answer === undefined ? undefined : stateOfView(answer.body);
    },
    command: async (taskId: string, action: TaskAction) => stateOfView((await retrying(() => call(taskId, 'POST', `/${action}`))).body),
    update: async (taskId: string, definition: PipelineDefinition) => stateOfView((await retrying(() => call(taskId, 'PUT', '', { definition }))).body),
    resetOffsets: async (taskId) => {
      await retrying(() => call(taskId, 'DELETE', '/offsets'));
    },
    delete: async (taskId) => {
      await retrying(() => call(taskId, 'DELETE', ''));
    },
  };
}

/** A pipeline state from the API's view of one task (`pipelineView`): what aggregation and fan-out read. */
export function stateOfView(body: unknown): PipelineState {
  const view = body as Record<string, unknown>;
  const base = {
    pipelineId: String(view['id']),
    definition: view['definition'] as PipelineDefinition,
    checkpoint: (view['checkpoint'] ?? null) as ConfiguredPipelineState['checkpoint'],
    metrics: view['metrics'] as ConfiguredPipelineState['metrics'],
    recentBatchIds: [],
    retry: null,
    createdAt: Date.parse(String(view['createdAt'])),
    updatedAt: Date.parse(String(view['updatedAt'])),
  };
  switch (view['status']) {
    case 'paused':
    case 'stopped':
      return { ...base, status: view['status'], reason: typeof view['reason'] === 'string' ? view['reason'] : '' };
    case 'failed':
      return { ...base, status: 'failed', error: view['error'] } as PipelineState;
    default:
      return { ...base, status: view['status'] } as PipelineState;
  }
}
