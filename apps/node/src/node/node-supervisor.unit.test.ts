/**
 * `NodeSupervisor` on a real actor system with a test clock: a top actor that
 * stops for a curable cause (or none reported) is spawned again after a
 * growing backoff, without bound, and the node is `degraded` meanwhile; a
 * concurrency conflict or a permanent error fails the node with a message
 * naming the component and the cause; actors retired or stopped at shutdown
 * are left alone.
 */
import { ConcurrencyConflictError, createActorSystem, JournalReadError, type ActorRef, type ActorSystem, type Behavior } from '@dataflow/core';
import { TestClock } from '@dataflow/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { LogFields, NodeLogger } from './node-logger.js';
import { NodeSupervisor } from './node-supervisor.js';

class RecordingLogger implements NodeLogger {
  readonly lines: { level: string; message: string; fields: LogFields | undefined }[] = [];
  debug(): void {}
  info(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  error(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'error', message, fields });
  }
}

const idle: Behavior<string, undefined> = { initialState: undefined, onMessage: () => undefined };

const systems: ActorSystem[] = [];
afterEach(async () => {
  for (const system of systems.splice(0)) await system.terminate();
});

function setup(): { clock: TestClock; system: ActorSystem; logger: RecordingLogger; supervisor: NodeSupervisor; spawned: () => number; ref: () => ActorRef<string> } {
  const clock = new TestClock({ startAt: 0 });
  const system = createActorSystem({ name: 'supervision', clock, scheduler: clock });
  systems.push(system);
  const logger = new RecordingLogger();
  const supervisor = new NodeSupervisor({ system, logger, backoff: { minBackoffMs: 1_000, maxBackoffMs: 8_000, randomFactor: 0 } });
  let ref = system.spawn(idle, 'worker');
  let count = 1;
  supervisor.watch({
    name: 'pipeline w',
    path: ref.path,
    persistenceIds: ['pipeline-w'],
    respawn: () => {
      ref = system.spawn(idle, 'worker');
      count++;
    },
  });
  supervisor.markStarted();
  return { clock, system, logger, supervisor, spawned: () => count, ref: () => ref };
}

describe('NodeSupervisor', () => {
  it('spawns a stopped top actor again with a growing backoff, without bound, and is ok once it works', async () => {
    const { clock, system, logger, supervisor, spawned, ref } = setup();
    expect(supervisor.health().state).toBe('ok');
    const outage = new JournalReadError('connect ECONNREFUSED', { retriable: true });
    const delays: number[] = [];
    for (let round = 0; round < 12; round++) {
      system.events.emit({ type: 'event-sourced.failed', persistenceId: 'pipeline-w', error: outage });
      await system.stop(ref());
      const before = spawned();
      expect(supervisor.health().state).toBe('degraded');
      let waited = 0;
      while (spawned() === before) {
        await clock.advanceAsync(500);
        waited += 500;
      }
      delays.push(waited);
    }
    // 1 s, 2 s, 4 s, then capped at 8 s: twelve stops, twelve respawns.
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 8_000, 8_000, 8_000, 8_000, 8_000, 8_000]);
    expect(supervisor.health().problems.get('pipeline w')).toMatch(/^stopped \(connect ECONNREFUSED\); spawning it again \(attempt 12\)$/);
    expect(logger.lines.filter((l) => l.level === 'warn' && /^pipeline w stopped \(.*ECONNREFUSED.*\); spawning it again in \d+ ms/.test(l.message))).toHaveLength(12);

    system.events.emit({ type: 'event-sourced.recovered', persistenceId: 'pipeline-w', sequenceNr: 3, snapshotSequenceNr: undefined, eventsReplayed: 3 });
    expect(supervisor.health()).toEqual({ state: 'ok', problems: new Map() });
    expect(logger.lines.map((l) => l.message)).toContain('node state degraded -> ok');
    // Working again resets the backoff.
    await system.stop(ref());
    const before = spawned();
    await clock.advanceAsync(1_000);
    expect(spawned()).toBe(before + 1);
  });

  it("keeps a pipeline whose batch is retried degraded until a batch completes: the retries it records in its journal do not count as working", () => {
    const clock = new TestClock({ startAt: 0 });
    const system = createActorSystem({ name: 'supervision-batches', clock, scheduler: clock });
    systems.push(system);
    const logger = new RecordingLogger();
    const supervisor = new NodeSupervisor({ system, logger });
    const ref = system.spawn(idle, 'pipeline-orders');
    supervisor.watch({ name: 'pipeline orders', path: ref.path, persistenceIds: ['pipeline-orders'], respawn: () => undefined });
    supervisor.markStarted();
    const missingTopic = new Error('the brokers have no topic "orders"');
    for (let attempt = 1; attempt <= 3; attempt++) {
      system.events.emit({ type: 'pipeline.batch.failed', pipelineId: 'orders', batchId: undefined, error: missingTopic, retriable: true, stage: 'connectors' });
      // The pipeline records the retry: its journal works, its batches still do not.
      system.events.emit({ type: 'event-sourced.persisted', persistenceId: 'pipeline-orders', sequenceNr: attempt, events: 1 });
      expect(supervisor.health().state).toBe('degraded');
    }
    expect(logger.lines.filter((l) => l.message === 'pipeline orders works again')).toEqual([]);
    expect(logger.lines.filter((l) => l.message.startsWith('node state ok -> degraded'))).toHaveLength(1);
    system.events.emit({ type: 'pipeline.batch.completed', pipelineId: 'orders', batchId: 'orders:1', records: 1, succeeded: 1, failed: 0, failedByStage: {}, deadLettered: 0, durationMs: 1 });
    expect(supervisor.health().state).toBe('ok');
    expect(logger.lines.filter((l) => l.message === 'pipeline orders works again')).toHaveLength(1);

    // Stopped while its batch is retried: nothing is retried any more.
    system.events.emit({ type: 'pipeline.batch.failed', pipelineId: 'orders', batchId: undefined, error: missingTopic, retriable: true, stage: 'connectors' });
    expect(supervisor.health().state).toBe('degraded');
    system.events.emit({ type: 'pipeline.status.changed', pipelineId: 'orders', from: 'running', to: 'stopped' });
    expect(supervisor.health().state).toBe('ok');
  });

  it('fails the node on a concurrency conflict, naming the component and the conflict, and spawns nothing', async () => {
    const { clock, system, logger, supervisor, spawned, ref } = setup();
    const conflict = new ConcurrencyConflictError('pipeline-w', 12, 13);
    system.events.emit({ type: 'event-sourced.concurrency-conflict', persistenceId: 'pipeline-w', error: conflict, commands: [] });
    system.events.emit({ type: 'event-sourced.failed', persistenceId: 'pipeline-w', error: conflict });
    await system.stop(ref());
    const error = await supervisor.failure;
    expect(error).toMatchObject({ tag: 'node/failed', component: 'pipeline w', cause: conflict });
    expect(error.message).toMatch(/^pipeline w lost the single-writer race: another node writes its journal \(.*expected.*12.*\)/);
    expect(supervisor.health().state).toBe('failed');
    expect(logger.lines.filter((l) => l.level === 'error').map((l) => l.message)).toEqual([error.message]);
    await clock.advanceAsync(60_000);
    expect(spawned()).toBe(1);
  });

  it('fails the node on a permanent cause, and leaves retired actors and a closing node alone', async () => {
    const permanent = setup();
    permanent.system.events.emit({ type: 'event-sourced.failed', persistenceId: 'pipeline-w', error: new JournalReadError('invalid page in block 3 of relation base/5/16390', { retriable: false }) });
    await permanent.system.stop(permanent.ref());
    expect((await permanent.supervisor.failure).message).toBe('pipeline w stopped: invalid page in block 3 of relation base/5/16390');

    const retired = setup();
    retired.supervisor.retire(retired.ref().path);
    await retired.system.stop(retired.ref());
    await retired.clock.advanceAsync(60_000);
    expect(retired.spawned()).toBe(1);
    expect(retired.supervisor.health().state).toBe('ok');

    const closing = setup();
    closing.supervisor.close();
    await closing.system.stop(closing.ref());
    await closing.clock.advanceAsync(60_000);
    expect(closing.spawned()).toBe(1);
  });
});
