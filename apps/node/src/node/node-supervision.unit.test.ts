/**
 * The node under journal faults (issue 9, defects 12 and 13), on the
 * in-memory journal behind a switch that makes every journal and snapshot
 * call fail as an unreachable store would. An outage longer than an entity's
 * ten restarts used to stop the coordinator or the pipeline for good (and
 * the process exited 0, silently); now the node is `degraded`, logs why,
 * spawns the actors again with backoff and is `ok` once the journal is back
 * (`node-supervisor.unit.test.ts` covers the respawns themselves).
 * Two nodes writing one pipeline's journal: the one that loses the race
 * fails, naming the pipeline and the conflict.
 */
import { localConnectorFactory } from './connector-factory.js';
import {
  createInMemoryPersistence,
  JournalReadError,
  JournalWriteError,
  SnapshotError,
  type InMemoryPersistence,
  type PersistencePlugin,
  type PipelineState,
} from '@dataflow/core';
import { TestClock } from '@dataflow/core/testing';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startNode, type DataflowNode, type NodeConfig } from './dataflow-node.js';
import type { LogFields, NodeLogger } from './node-logger.js';
import { describeError } from './node-supervisor.js';

class Lines extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
    done();
  }
}

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
  messages(level: string): string[] {
    return this.lines.filter((l) => l.level === level).map((l) => l.message);
  }
}

/** A plugin whose journal and snapshot store fail, retriably, while `down`. */
function withOutage(inner: InMemoryPersistence): { plugin: PersistencePlugin; outage: { down: boolean } } {
  const outage = { down: false };
  const unreachable = 'connect ECONNREFUSED 127.0.0.1:5432 (injected outage)';
  const guard = <T extends object>(target: T, fail: (name: string, args: unknown[]) => Error): T =>
    new Proxy(target, {
      get(t, key, receiver) {
        const value: unknown = Reflect.get(t, key, receiver);
        if (typeof value !== 'function' || key === 'close') return value;
        const fn = value as (...args: unknown[]) => unknown;
        if (key === 'replay') {
          return (...args: unknown[]) => ({
            async *[Symbol.asyncIterator]() {
              if (outage.down) throw fail(String(key), args);
              yield* fn.apply(t, args) as AsyncIterable<unknown>;
            },
          });
        }
        return (...args: unknown[]) => (outage.down ? Promise.reject(fail(String(key), args)) : Promise.resolve(fn.apply(t, args)));
      },
    });
  const plugin: PersistencePlugin = {
    journal: guard(inner.journal, (name, args) =>
      name === 'append' ? new JournalWriteError(String(args[0]), unreachable, { retriable: true }) : new JournalReadError(unreachable, { retriable: true }),
    ),
    snapshots: guard(inner.snapshots, (_name, args) => new SnapshotError(String(args[0]), unreachable, { retriable: true })),
    queries: inner.queries,
    close: () => inner.close(),
  };
  return { plugin, outage };
}

const nodes: DataflowNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.shutdown().catch(() => undefined);
});

async function boot(plugin: PersistencePlugin, overrides: Partial<NodeConfig> = {}): Promise<{ node: DataflowNode; logger: RecordingLogger; out: Lines }> {
  const out = new Lines();
  const logger = new RecordingLogger();
  const node = await startNode({ store: { type: 'plugin', plugin }, logger, connectors: localConnectorFactory({ stream: out }), ...overrides });
  nodes.push(node);
  return { node, logger, out };
}

const definition = (name: string, source: Record<string, unknown>) => ({
  name,
  source: { type: 'generator', fields: { id: { kind: 'sequence' } }, ...source },
  sink: { type: 'console' },
  batch: { size: 10, maxWaitMs: 20 },
});

/** Advances the test clock in steps, letting the in-memory journal's promises run between them. */
async function advance(clock: TestClock, totalMs: number, stepMs = 250): Promise<void> {
  for (let t = 0; t < totalMs; t += stepMs) await clock.advanceAsync(stepMs);
}

describe('a node under journal faults', () => {
  it('survives a ten-minute journal outage: degraded with the reason, ok once the journal is back, and the coordinator answers again', { timeout: 60_000 }, async () => {
    const clock = new TestClock({ startAt: 1_000_000 });
    const { plugin, outage } = withOutage(createInMemoryPersistence());
    const { node, logger } = await boot(plugin, { clock, scheduler: clock, askTimeoutMs: 1_000, respawnBackoff: { minBackoffMs: 1_000, maxBackoffMs: 5_000, randomFactor: 0 } });
    expect(node.health().state).toBe('ok');

    outage.down = true;
    // A registration is a coordinator write: it fails, and the coordinator's entity restarts with backoff.
    const refused = node.createPipeline(definition('during-outage', { count: 5 }), { pipelineId: 'during-outage' }).catch((error: unknown) => error);
    // Ten restarts of 0.2 s doubling to 10 s take about 52 s; the outage lasts ten minutes.
    await advance(clock, 600_000, 1_000);
    expect(await refused).toBeInstanceOf(Error);
    const health = node.health();
    expect(health.state).toBe('degraded');
    expect(health.problems.get('coordinator')).toMatch(/ECONNREFUSED 127\.0\.0\.1:5432 \(injected outage\)/);
    expect(logger.messages('warn')).toContainEqual(expect.stringMatching(/^node state ok -> degraded \(coordinator: /));
    expect(logger.messages('error')).toEqual([]);

    outage.down = false;
    await advance(clock, 40_000, 1_000);
    expect(node.health()).toEqual({ state: 'ok', problems: new Map() });
    expect(logger.messages('info')).toContain('node state degraded -> ok');
    // The coordinator answers again, and the node takes new pipelines.
    const created = node.createPipeline(definition('after-outage', { count: 5 }), { pipelineId: 'after-outage' });
    await advance(clock, 2_000, 100);
    await expect(created).resolves.toMatchObject({ pipelineId: 'after-outage', status: 'configured' });
    const failure = await Promise.race([node.failure, Promise.resolve('none')]);
    expect(failure).toBe('none');
  });

  it("reports a pipeline's journal outage as degraded, naming the pipeline, and the node does not fail", { timeout: 60_000 }, async () => {
    const clock = new TestClock({ startAt: 1_000_000 });
    const { plugin, outage } = withOutage(createInMemoryPersistence());
    const { node, logger } = await boot(plugin, { clock, scheduler: clock, askTimeoutMs: 1_000, statusReportIntervalMs: 3_600_000, respawnBackoff: { minBackoffMs: 1_000, maxBackoffMs: 5_000, randomFactor: 0 } });
    const created = node.createPipeline(definition('ticks', {}), { pipelineId: 'ticks' });
    await advance(clock, 1_000, 50);
    await created;
    const started = node.start('ticks');
    await advance(clock, 3_000, 50);
    await started;
    const before = await stateAfter(node, clock);
    expect(before.status === 'empty' ? 0 : before.metrics.recordsProcessed).toBeGreaterThan(0);

    outage.down = true;
    await advance(clock, 600_000, 1_000);
    expect(node.health().state).toBe('degraded');
    expect(node.health().problems.get('pipeline ticks')).toBeDefined();
    expect(logger.messages('warn')).toContainEqual(expect.stringMatching(/^node state ok -> degraded \(pipeline ticks: /));

    outage.down = false;
    // Whether the pipeline runs on or is failed after the outage is its own retry policy's call (core); the node stays up.
    await advance(clock, 60_000, 100);
    expect(node.health().state).toBe('ok');
    expect(await Promise.race([node.failure, Promise.resolve('none')])).toBe('none');
  });

  it('fails the node that loses the single-writer race on a pipeline, naming the pipeline and the conflict', { timeout: 60_000 }, async () => {
    const shared = createInMemoryPersistence();
    // No periodic status reports: the first conflict is on the pipeline's journal, not the coordinator's.
    const first = await boot(shared, { statusReportIntervalMs: 3_600_000 });
    await first.node.createPipeline(definition('shared', { rate: 500 }), { pipelineId: 'shared' });
    await first.node.start('shared');
    await vi.waitFor(() => expect(first.out.lines.length).toBeGreaterThan(2), { timeout: 10_000 });

    const second = await boot(shared, { statusReportIntervalMs: 3_600_000 });
    const failed = await Promise.race([first.node.failure.then((e) => ({ node: first, error: e })), second.node.failure.then((e) => ({ node: second, error: e }))]);
    expect(failed.error.tag).toBe('node/failed');
    expect(failed.error.component).toBe('pipeline shared');
    expect(failed.error.message).toMatch(/^pipeline shared lost the single-writer race: another node writes its journal \(.*[Cc]oncurrency.*\)/);
    expect(failed.node.node.health().state).toBe('failed');
    expect(failed.node.logger.messages('error')).toContain(failed.error.message);
  });
});

async function stateAfter(node: DataflowNode, clock: TestClock): Promise<PipelineState> {
  const state = node.getPipeline('ticks');
  await clock.advanceAsync(10);
  const found = await state;
  if (found === undefined) throw new Error('no pipeline ticks');
  return found;
}

describe('describeError', () => {
  it('joins the messages of an error and its causes without repeating them', () => {
    const root = new Error('could not open file "base/5/16384": No such file or directory');
    const wrapped = new Error(`Recovery failed: ${root.message}`, { cause: root });
    expect(describeError(new Error('cannot recover the coordinator', { cause: wrapped }))).toBe(
      'cannot recover the coordinator: Recovery failed: could not open file "base/5/16384": No such file or directory',
    );
  });
});
