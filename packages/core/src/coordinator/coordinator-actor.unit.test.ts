/**
 * The coordinator actor against the in-memory persistence: every command with
 * its reply, tags and snapshots in the journal, and recovery in a new system.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ActorRef } from '../actor/actor-ref.js';
import { askWithStatus } from '../actor/status-reply.js';
import { isDataflowError } from '../errors/dataflow-error.js';
import { createInMemoryPersistence, type InMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';
import type { PersistedEvent } from '../persistence/journal.js';
import type { PipelineStatus } from '../pipeline/model/pipeline-state.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import { PersistenceTestKit } from '../testing/persistence-test-kit.js';
import { spawnCoordinator, type CoordinatorCommand, type CoordinatorReply, type ResourceCheck } from './coordinator-actor.js';
import type { RegisteredPipeline, SystemStatus } from './coordinator-model.js';

const kits: ActorTestKit[] = [];
afterEach(async () => {
  for (const kit of kits.splice(0)) await kit.shutdown();
});

function start(persistence: InMemoryPersistence, startAt = 1_000): { kit: ActorTestKit; coordinator: ActorRef<CoordinatorCommand> } {
  const kit = createActorTestKit({ startAt });
  kits.push(kit);
  const coordinator = spawnCoordinator(kit.system, { persistence, now: () => kit.system.clock.now(), limits: { maxCpuPercent: 80, maxMemoryMb: 1000 } });
  return { kit, coordinator };
}

const timeout = { timeoutMs: 5_000 };
const call = (c: ActorRef<CoordinatorCommand>, build: (replyTo: ActorRef<CoordinatorReply>) => CoordinatorCommand) =>
  askWithStatus<CoordinatorCommand, RegisteredPipeline | undefined>(c, build, timeout);
/** The error a command is answered with (askWithStatus rejects with it). */
const refusal = (answer: Promise<unknown>): Promise<unknown> => answer.then(() => Promise.reject(new Error('expected an error reply')), (error: unknown) => error);
const register = (c: ActorRef<CoordinatorCommand>, id: string, name = `name-${id}`) =>
  call(c, (replyTo) => ({ type: 'register', pipelineId: id, name, sourceType: 'generator', sinkType: 'file', replyTo }));
const update = (c: ActorRef<CoordinatorCommand>, id: string, status: PipelineStatus, totalRecords = 0, failedRecords = 0) =>
  call(c, (replyTo) => ({ type: 'update-status', pipelineId: id, status, totalRecords, failedRecords, replyTo }));
const list = (c: ActorRef<CoordinatorCommand>, status?: PipelineStatus) =>
  askWithStatus<CoordinatorCommand, readonly RegisteredPipeline[]>(
    c,
    (replyTo) => (status === undefined ? { type: 'list-pipelines', replyTo } : { type: 'list-pipelines', status, replyTo }),
    timeout,
  );
const statusOf = (c: ActorRef<CoordinatorCommand>) => askWithStatus<CoordinatorCommand, SystemStatus>(c, (replyTo) => ({ type: 'get-system-status', replyTo }), timeout);
const pipeline = (c: ActorRef<CoordinatorCommand>, id: string) =>
  askWithStatus<CoordinatorCommand, RegisteredPipeline | undefined>(c, (replyTo) => ({ type: 'get-pipeline', pipelineId: id, replyTo }), timeout);

async function journal(persistence: InMemoryPersistence): Promise<PersistedEvent[]> {
  const events: PersistedEvent[] = [];
  for await (const e of persistence.journal.replay('coordinator', 1)) events.push(e);
  return events;
}

describe('coordinator actor', () => {
  it('registers, updates, lists by status and unregisters, tagging every event', async () => {
    const persistence = createInMemoryPersistence();
    const { kit, coordinator } = start(persistence);
    expect((await statusOf(coordinator)).health).toBe('idle');

    const registered = await register(coordinator, 'a');
    expect(registered).toMatchObject({ pipelineId: 'a', name: 'name-a', status: 'configured', registeredAt: 1_000 });
    await register(coordinator, 'b');
    await kit.advance(500);
    expect(await update(coordinator, 'a', 'running', 40, 2)).toMatchObject({ status: 'running', totalRecords: 40, updatedAt: 1_500 });
    await update(coordinator, 'b', 'failed');

    expect((await list(coordinator)).map((p) => p.pipelineId)).toEqual(['a', 'b']);
    expect((await list(coordinator, 'running')).map((p) => p.pipelineId)).toEqual(['a']);
    expect(await pipeline(coordinator, 'b')).toMatchObject({ status: 'failed' });
    expect(await pipeline(coordinator, 'nope')).toBeUndefined();
    expect(await statusOf(coordinator)).toMatchObject({ health: 'critical', pipelines: 2, byStatus: { running: 1, failed: 1 }, totalRecords: 40, failedRecords: 2 });

    expect(await call(coordinator, (replyTo) => ({ type: 'unregister', pipelineId: 'b', replyTo }))).toBeUndefined();
    expect((await statusOf(coordinator)).health).toBe('healthy');

    const events = await journal(persistence);
    expect(events.map((e) => e.eventType)).toEqual([
      'PipelineRegistered',
      'PipelineRegistered',
      'PipelineStatusUpdated',
      'PipelineStatusUpdated',
      'PipelineUnregistered',
    ]);
    expect(events.every((e) => e.tags.length === 1 && e.tags[0] === 'coordinator')).toBe(true);
  });

  it('answers a refused command with the typed error and persists nothing for it', async () => {
    const persistence = createInMemoryPersistence();
    const { coordinator } = start(persistence);
    await register(coordinator, 'a', 'orders');
    const clash = await refusal(register(coordinator, 'z', 'orders'));
    expect(isDataflowError(clash, 'coordinator/command-rejected')).toBe(true);
    expect((clash as Error).message).toContain('the name orders is taken by a');
    const unknown = await refusal(update(coordinator, 'ghost', 'running'));
    expect(isDataflowError(unknown, 'coordinator/command-rejected') && unknown.retriable).toBe(false);
    // Idempotent: the same registration and the same status again write nothing.
    expect(await register(coordinator, 'a', 'orders')).toMatchObject({ pipelineId: 'a' });
    await update(coordinator, 'a', 'running', 5);
    await update(coordinator, 'a', 'running', 5);
    expect((await journal(persistence)).map((e) => e.eventType)).toEqual(['PipelineRegistered', 'PipelineStatusUpdated']);
  });

  it('reports resources and checks them against the limits', async () => {
    const { coordinator } = start(createInMemoryPersistence());
    const check = () => askWithStatus<CoordinatorCommand, ResourceCheck>(coordinator, (replyTo) => ({ type: 'check-resources', replyTo }), timeout);
    expect(await check()).toEqual({ available: true });
    await call(coordinator, (replyTo) => ({ type: 'report-resources', nodeId: 'n1', cpuPercent: 30, memoryMb: 600, replyTo }));
    expect(await check()).toEqual({ available: true });
    await call(coordinator, (replyTo) => ({ type: 'report-resources', nodeId: 'n2', cpuPercent: 20, memoryMb: 500, replyTo }));
    expect(await check()).toEqual({ available: false, reason: 'memory in use 1100 MB reaches the budget of 1000 MB' });
    await call(coordinator, (replyTo) => ({ type: 'report-resources', nodeId: 'n2', cpuPercent: 85, memoryMb: 100, replyTo }));
    expect(await check()).toEqual({ available: false, reason: 'node n2 is at 85% CPU (limit 80%)' });
    expect((await statusOf(coordinator)).resources.map((r) => r.nodeId)).toEqual(['n1', 'n2']);
  });

  it('recovers its registry in a new system', async () => {
    const persistence = createInMemoryPersistence();
    const first = start(persistence);
    await register(first.coordinator, 'a');
    await register(first.coordinator, 'b');
    await update(first.coordinator, 'a', 'running', 100);
    await update(first.coordinator, 'b', 'stopped', 7);
    await first.kit.shutdown();

    const second = start(persistence, 9_000);
    expect((await list(second.coordinator, 'running')).map((p) => [p.pipelineId, p.totalRecords])).toEqual([['a', 100]]);
    expect(await pipeline(second.coordinator, 'b')).toMatchObject({ status: 'stopped', totalRecords: 7 });
    // It goes on writing after the recovered history.
    expect(await update(second.coordinator, 'b', 'running', 8)).toMatchObject({ updatedAt: 9_000 });
    expect(await persistence.journal.highestSequenceNr('coordinator')).toBe(5);
  });

  it('snapshots every 50 events keeping 2, deletes what they cover, and recovers from them', async () => {
    const persistence = createInMemoryPersistence();
    const first = start(persistence);
    await register(first.coordinator, 'a');
    for (let n = 1; n <= 159; n++) await update(first.coordinator, 'a', 'running', n);
    await first.kit.system.settled();
    expect(await persistence.journal.highestSequenceNr('coordinator')).toBe(160);
    expect((await persistence.snapshots.loadLatest('coordinator'))?.metadata.sequenceNr).toBe(150);
    expect(await persistence.snapshots.loadLatest('coordinator', { maxSequenceNr: 149 })).toMatchObject({ metadata: { sequenceNr: 100 } });
    expect(await persistence.snapshots.loadLatest('coordinator', { maxSequenceNr: 99 })).toBeUndefined();
    const remaining = await journal(persistence);
    expect(remaining[0]?.sequenceNr).toBe(101);
    await first.kit.shutdown();

    const second = start(persistence);
    expect(await pipeline(second.coordinator, 'a')).toMatchObject({ status: 'running', totalRecords: 159 });
  });

  it('answers a command whose events the journal refuses with that error, and goes on working', async () => {
    const persistence = PersistenceTestKit.wrap(createInMemoryPersistence());
    const kit = createActorTestKit({ startAt: 1_000 });
    kits.push(kit);
    const coordinator = spawnCoordinator(kit.system, { persistence, now: () => kit.system.clock.now() });
    await register(coordinator, 'a');
    persistence.rejectNextWrites(1);
    const refused = await refusal(register(coordinator, 'b'));
    expect(isDataflowError(refused, 'journal/write-failed')).toBe(true);
    expect(await pipeline(coordinator, 'b')).toBeUndefined();
    expect(await register(coordinator, 'b')).toMatchObject({ pipelineId: 'b' });
    expect((await list(coordinator)).map((p) => p.pipelineId)).toEqual(['a', 'b']);
  });

  const objectMemberIds = ['constructor', '__proto__', 'toString', 'hasOwnProperty'];
  /** The order `list-pipelines` gives for ids registered at the same time. */
  const listed = [...objectMemberIds].sort((a, b) => a.localeCompare(b));

  it('takes ids that name Object.prototype members end to end: register, get, update, list, status, unregister', async () => {
    const persistence = createInMemoryPersistence();
    const { coordinator } = start(persistence);
    for (const id of objectMemberIds) {
      // Before the Map registry, `constructor` was refused as "the id is taken by Object".
      expect(await register(coordinator, id)).toMatchObject({ pipelineId: id, name: `name-${id}`, status: 'configured' });
      expect(await pipeline(coordinator, id)).toMatchObject({ pipelineId: id });
    }
    expect(await pipeline(coordinator, 'valueOf')).toBeUndefined();
    expect(isDataflowError(await refusal(update(coordinator, 'valueOf', 'running')), 'coordinator/command-rejected')).toBe(true);
    for (const [n, id] of objectMemberIds.entries()) expect(await update(coordinator, id, 'running', n + 1)).toMatchObject({ totalRecords: n + 1 });
    expect((await list(coordinator, 'running')).map((p) => p.pipelineId)).toEqual(listed);
    await call(coordinator, (replyTo) => ({ type: 'report-resources', nodeId: '__proto__', cpuPercent: 5, memoryMb: 10, replyTo }));
    expect(await statusOf(coordinator)).toMatchObject({ pipelines: 4, totalRecords: 10, resources: [{ nodeId: '__proto__' }] });
    expect(await call(coordinator, (replyTo) => ({ type: 'unregister', pipelineId: 'constructor', replyTo }))).toBeUndefined();
    expect(await pipeline(coordinator, 'constructor')).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect((await journal(persistence)).filter((e) => e.eventType === 'PipelineRegistered')).toHaveLength(4);
  });

  it('snapshots the Map registry as readable arrays of entries and recovers those ids from the snapshot', async () => {
    const persistence = createInMemoryPersistence();
    const first = start(persistence);
    for (const id of objectMemberIds) await register(first.coordinator, id);
    await call(first.coordinator, (replyTo) => ({ type: 'report-resources', nodeId: 'constructor', cpuPercent: 5, memoryMb: 10, replyTo }));
    for (let n = 1; n <= 45; n++) await update(first.coordinator, 'toString', 'running', n);
    await first.kit.system.settled();
    const stored = await persistence.snapshots.loadLatest('coordinator');
    expect(stored?.metadata.sequenceNr).toBe(50);
    expect(stored?.schemaVersion).toBe(2);
    const state = stored?.state as { pipelines: [string, RegisteredPipeline][]; resources: [string, unknown][] };
    expect(state.pipelines.map(([id, p]) => [id, p.pipelineId])).toEqual(objectMemberIds.map((id) => [id, id]));
    expect(state.resources).toEqual([['constructor', { nodeId: 'constructor', cpuPercent: 5, memoryMb: 10, at: 1_000 }]]);
    await first.kit.shutdown();

    // Recovery has to go through the snapshot: the events it covers are gone.
    await persistence.journal.deleteTo('coordinator', 50);
    const second = start(persistence);
    expect((await list(second.coordinator)).map((p) => p.pipelineId)).toEqual(listed);
    expect(await pipeline(second.coordinator, 'toString')).toMatchObject({ status: 'running', totalRecords: 45 });
    expect((await statusOf(second.coordinator)).resources.map((r) => r.nodeId)).toEqual(['constructor']);
    expect(await update(second.coordinator, '__proto__', 'running', 1)).toMatchObject({ pipelineId: '__proto__', status: 'running' });
  });

  it('recovers from a snapshot of the old shape (schema version 1, objects keyed by id)', async () => {
    const persistence = createInMemoryPersistence();
    const first = start(persistence);
    await register(first.coordinator, 'a');
    await register(first.coordinator, 'b');
    await first.kit.shutdown();
    const registered = (id: string): RegisteredPipeline => ({
      pipelineId: id,
      name: `name-${id}`,
      status: id === 'a' ? 'running' : 'stopped',
      sourceType: 'generator',
      sinkType: 'file',
      totalRecords: 7,
      failedRecords: 0,
      registeredAt: 1_000,
      updatedAt: 1_000,
    });
    await persistence.snapshots.save(
      { persistenceId: 'coordinator', sequenceNr: 2, timestamp: 1_000 },
      { pipelines: { a: registered('a'), b: registered('b') }, resources: { n1: { nodeId: 'n1', cpuPercent: 1, memoryMb: 2, at: 1_000 } } },
      1,
    );
    await persistence.journal.deleteTo('coordinator', 2);

    const second = start(persistence, 5_000);
    expect((await list(second.coordinator, 'running')).map((p) => p.pipelineId)).toEqual(['a']);
    expect(await pipeline(second.coordinator, 'b')).toMatchObject({ status: 'stopped', totalRecords: 7 });
    expect((await statusOf(second.coordinator)).resources).toEqual([{ nodeId: 'n1', cpuPercent: 1, memoryMb: 2, at: 1_000 }]);
    expect(await update(second.coordinator, 'b', 'running', 8)).toMatchObject({ updatedAt: 5_000 });
  });
});
