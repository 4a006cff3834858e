import { describe, expect, it } from 'vitest';
import {
  decideCoordinator,
  emptyCoordinatorState,
  evolveCoordinator,
  listPipelines,
  resourcesAvailable,
  systemHealth,
  systemStatus,
  type CoordinatorDecision,
  type CoordinatorState,
} from './coordinator-model.js';

function run(state: CoordinatorState, ...commands: CoordinatorDecision[]): CoordinatorState {
  return commands.reduce((s, c, i) => {
    const result = decideCoordinator(s, c, 100 + i);
    if (!result.ok) throw result.error;
    return result.events.reduce(evolveCoordinator, s);
  }, state);
}

const reg = (id: string): CoordinatorDecision => ({ type: 'register', pipelineId: id, name: `name-${id}`, sourceType: 'file', sinkType: 'file' });
const status = (id: string, s: 'running' | 'failed' | 'stopped', total = 0): CoordinatorDecision => ({
  type: 'update-status',
  pipelineId: id,
  status: s,
  totalRecords: total,
  failedRecords: 0,
});

describe('coordinator', () => {
  it('keeps a registry, lists by status and derives health', () => {
    expect(systemHealth(emptyCoordinatorState)).toBe('idle');
    let state = run(emptyCoordinatorState, reg('a'), reg('b'), reg('c'), status('a', 'running', 10), status('b', 'running', 5), status('c', 'running'));
    expect(systemHealth(state)).toBe('healthy');
    expect(listPipelines(state, 'running').map((p) => p.pipelineId)).toEqual(['a', 'b', 'c']);
    state = run(state, status('c', 'failed'));
    expect(systemHealth(state)).toBe('degraded'); // 1 failed, 2 running
    state = run(state, status('b', 'failed'));
    expect(systemHealth(state)).toBe('critical'); // 2 failed > 50% of 1 running
    expect(listPipelines(state, 'failed').map((p) => p.pipelineId)).toEqual(['b', 'c']);
    expect(systemStatus(state)).toMatchObject({ pipelines: 3, byStatus: { running: 1, failed: 2 }, totalRecords: 10 });
    state = run(state, { type: 'unregister', pipelineId: 'b' }, { type: 'unregister', pipelineId: 'c' });
    expect(listPipelines(state).map((p) => p.pipelineId)).toEqual(['a']);
    expect(systemHealth(state)).toBe('healthy');
  });

  it('is idempotent on re-registration and refuses a taken name or unknown id', () => {
    const state = run(emptyCoordinatorState, reg('a'));
    expect(decideCoordinator(state, reg('a'), 5)).toEqual({ ok: true, events: [] });
    const clash = decideCoordinator(state, { type: 'register', pipelineId: 'z', name: 'name-a', sourceType: 'x', sinkType: 'y' }, 5);
    expect(clash.ok).toBe(false);
    const unknown = decideCoordinator(state, status('nope', 'running'), 5);
    expect(!unknown.ok && unknown.error.tag).toBe('coordinator/command-rejected');
    expect(decideCoordinator(state, status('a', 'configured' as 'running'), 5)).toEqual({ ok: true, events: [] });
  });

  it('updates the source and sink types of a changed definition, keeping status and totals', () => {
    const state = run(emptyCoordinatorState, reg('a'), status('a', 'stopped', 42));
    const changed = decideCoordinator(state, { type: 'register', pipelineId: 'a', name: 'name-a', sourceType: 'kafka', sinkType: 'postgres' }, 7);
    expect(changed).toEqual({ ok: true, events: [{ type: 'PipelineRegistrationUpdated', at: 7, pipelineId: 'a', sourceType: 'kafka', sinkType: 'postgres' }] });
    const after = changed.ok ? changed.events.reduce(evolveCoordinator, state) : state;
    expect(listPipelines(after)[0]).toMatchObject({ sourceType: 'kafka', sinkType: 'postgres', status: 'stopped', totalRecords: 42, updatedAt: 7 });
  });

  it('records the parallelism of a pipeline with tasks (left out when 1) and updates it with the definition', () => {
    const state = run(emptyCoordinatorState, { ...reg('a'), parallelism: 3 } as CoordinatorDecision, reg('b'));
    expect(listPipelines(state).map((p) => p.parallelism)).toEqual([3, undefined]);
    expect(decideCoordinator(state, { ...reg('a'), parallelism: 3 } as CoordinatorDecision, 5)).toEqual({ ok: true, events: [] });
    const changed = decideCoordinator(state, { ...reg('a'), parallelism: 1 } as CoordinatorDecision, 6);
    expect(changed).toEqual({ ok: true, events: [{ type: 'PipelineRegistrationUpdated', at: 6, pipelineId: 'a', sourceType: 'file', sinkType: 'file' }] });
    const after = changed.ok ? changed.events.reduce(evolveCoordinator, state) : state;
    expect(listPipelines(after)[0]?.parallelism).toBeUndefined();
  });

  it('checks resource availability against the limits', () => {
    const limits = { maxCpuPercent: 80, maxMemoryMb: 1024 };
    let state = run(emptyCoordinatorState, { type: 'report-resources', usage: { nodeId: 'n1', cpuPercent: 30, memoryMb: 200 } });
    expect(resourcesAvailable(state, limits)).toEqual({ available: true });
    state = run(state, { type: 'report-resources', usage: { nodeId: 'n2', cpuPercent: 85, memoryMb: 100 } });
    expect(resourcesAvailable(state, limits).available).toBe(false);
    state = run(state, { type: 'report-resources', usage: { nodeId: 'n2', cpuPercent: 10, memoryMb: 900 } });
    expect(resourcesAvailable(state, limits)).toMatchObject({ available: false, reason: expect.stringMatching(/memory/) as unknown });
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf'])('takes %s as a pipeline id and a node id like any other', (id) => {
    expect(decideCoordinator(emptyCoordinatorState, reg(id), 1)).toMatchObject({ ok: true, events: [{ type: 'PipelineRegistered', pipelineId: id }] });
    let state = run(emptyCoordinatorState, reg('plain'), reg(id), status(id, 'running', 3));
    expect(listPipelines(state).map((p) => [p.pipelineId, p.status, p.totalRecords])).toEqual([
      ['plain', 'configured', 0],
      [id, 'running', 3],
    ]);
    expect(systemStatus(state)).toMatchObject({ pipelines: 2, totalRecords: 3 });
    expect(Object.getPrototypeOf(state.pipelines)).toBe(Map.prototype);
    state = run(state, { type: 'report-resources', usage: { nodeId: id, cpuPercent: 10, memoryMb: 1 } });
    expect(systemStatus(state).resources.map((r) => r.nodeId)).toEqual([id]);
    state = run(state, { type: 'unregister', pipelineId: id });
    expect(listPipelines(state).map((p) => p.pipelineId)).toEqual(['plain']);
    // Unknown ids that name Object.prototype members are unknown, not "taken".
    const unknown = decideCoordinator(state, status(id, 'running'), 5);
    expect(!unknown.ok && unknown.error.message).toContain('it is not registered');
    expect(decideCoordinator(state, { type: 'unregister', pipelineId: id }, 5)).toEqual({ ok: true, events: [] });
  });
});
