/**
 * The node and its pipeline registry on the in-memory journal, with the
 * generator source and a console sink writing to memory: validation against
 * the connector registry, lifecycle commands, status reports to the
 * coordinator, and a restart that resumes running pipelines from their
 * checkpoints.
 */
import { localConnectorSchemas } from '@dataflow/connectors';
import {
  ask,
  connectorRegistry,
  createActorSystem,
  createInMemoryPersistence,
  isDataflowError,
  spawnCoordinator,
  type CoordinatorCommand,
  type CoordinatorReply,
  type InMemoryPersistence,
  type PipelineState,
} from '@dataflow/core';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { localConnectorFactory } from './connector-factory.js';
import { startNode, type DataflowNode, type NodeConfig } from './dataflow-node.js';
import type { LogFields, NodeLogger } from './node-logger.js';

class Lines extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.lines.push(...chunk.toString().split('\n').filter((l) => l !== ''));
    done();
  }
}

class RecordingLogger implements NodeLogger {
  readonly lines: { level: string; message: string; fields: LogFields | undefined }[] = [];
  debug(message: string, fields?: LogFields): void {
    this.lines.push({ level: 'debug', message, fields });
  }
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

const nodes: DataflowNode[] = [];
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.shutdown().catch(() => undefined);
});

interface Harness {
  node: DataflowNode;
  out: Lines;
  logger: RecordingLogger;
}

async function boot(persistence: InMemoryPersistence, overrides: Partial<NodeConfig> = {}): Promise<Harness> {
  const out = new Lines();
  const logger = new RecordingLogger();
  const node = await startNode({
    store: { type: 'plugin', plugin: persistence },
    logger,
    connectors: localConnectorFactory({ stream: out }),
    statusReportIntervalMs: 0,
    ...overrides,
  });
  nodes.push(node);
  return { node, out, logger };
}

const generated = (overrides: Record<string, unknown> = {}) => ({
  name: 'numbers',
  source: { type: 'generator', count: 30, fields: { id: { kind: 'sequence' } } },
  transforms: [{ type: 'filter', expression: 'id > 0' }],
  sink: { type: 'console' },
  batch: { size: 10, maxWaitMs: 20 },
  ...overrides,
});

async function until(node: DataflowNode, id: string, done: (state: PipelineState) => boolean): Promise<PipelineState> {
  return vi.waitFor(
    async () => {
      const state = await node.getPipeline(id);
      if (state === undefined || !done(state)) throw new Error(`pipeline ${id} is ${state?.status ?? 'unknown'}`);
      return state;
    },
    { timeout: 10_000, interval: 10 },
  );
}

const processed = (state: PipelineState): number => (state.status === 'empty' ? 0 : state.metrics.recordsProcessed);
/** `[p] batch p:7: 10 records (first: {"id":61})` → [7, 61] */
const batchLine = (line: string): [number, number] => {
  const m = /batch [\w-]+:(\d+): \d+ records? \(first: \{"id":(\d+)\}\)/.exec(line);
  if (m === null) throw new Error(`not a batch line: ${line}`);
  return [Number(m[1]), Number(m[2])];
};

describe('DataflowNode', () => {
  it('refuses a definition with unknown connector types or bad options, field by field, and registers nothing', async () => {
    const { node } = await boot(createInMemoryPersistence());
    const error: unknown = await node
      .createPipeline(generated({ source: { type: 'generator', rate: -1 }, sink: { type: 'kafka', topic: 'x' } }))
      .catch((e: unknown) => e);
    expect(isDataflowError(error, 'pipeline/invalid-definition')).toBe(true);
    const paths = (error as { issues: { path: string }[] }).issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['source.rate', 'sink.type']));
    await expect(node.createPipeline(generated(), { pipelineId: 'bad id!' })).rejects.toMatchObject({ tag: 'pipeline/invalid-definition' });
    expect(await node.listPipelines()).toEqual([]);
  });

  it('creates, registers and runs a pipeline to the end of its source, reporting its status to the coordinator', async () => {
    const { node, out } = await boot(createInMemoryPersistence());
    const created = await node.createPipeline(generated(), { pipelineId: 'numbers' });
    expect(created).toMatchObject({ status: 'configured', pipelineId: 'numbers' });
    expect(await node.listPipelines()).toMatchObject([{ pipelineId: 'numbers', name: 'numbers', status: 'configured', sourceType: 'generator', sinkType: 'console' }]);

    await node.start('numbers');
    const done = await until(node, 'numbers', (s) => s.status === 'stopped');
    expect(processed(done)).toBe(30);
    expect(out.lines.map(batchLine)).toEqual([
      [1, 1],
      [2, 11],
      [3, 21],
    ]);
    await vi.waitFor(async () => expect(await node.listPipelines('stopped')).toMatchObject([{ pipelineId: 'numbers', totalRecords: 30 }]));
    expect(await node.systemStatus()).toMatchObject({ health: 'healthy', pipelines: 1, totalRecords: 30 });
    // The name belongs to the registered pipeline.
    await expect(node.createPipeline(generated(), { pipelineId: 'numbers-2' })).rejects.toMatchObject({ tag: 'coordinator/command-rejected' });
    await expect(node.createPipeline(generated(), { pipelineId: 'numbers' })).rejects.toMatchObject({ tag: 'coordinator/command-rejected' });
  });

  it('pauses, resumes, stops and resets, and answers refusals and unknown ids with typed errors', async () => {
    const { node } = await boot(createInMemoryPersistence());
    const id = (await node.createPipeline(generated({ source: { type: 'generator', rate: 200 } }))).pipelineId;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await expect(node.resume(id)).rejects.toMatchObject({ tag: 'pipeline/command-rejected' });
    await node.start(id);
    expect(await node.pause(id, 'maintenance')).toMatchObject({ status: 'paused', reason: 'maintenance' });
    expect(await node.resume(id)).toMatchObject({ status: 'running' });
    expect(await node.stop(id)).toMatchObject({ status: 'stopped', reason: 'stopped by request' });
    await vi.waitFor(async () => expect(await node.listPipelines('stopped')).toHaveLength(1));
    await expect(node.reset(id)).rejects.toMatchObject({ tag: 'pipeline/command-rejected' });
    await expect(node.start('nope')).rejects.toMatchObject({ tag: 'node/pipeline-not-found' });
    expect(await node.getPipeline('nope')).toBeUndefined();

    await node.shutdown();
    await expect(node.start(id)).rejects.toMatchObject({ tag: 'node/unavailable', retriable: true });
  });

  it('resumes a running pipeline from its checkpoint after a restart; the batch in flight at shutdown is abandoned', async () => {
    const persistence = createInMemoryPersistence();
    const definition = generated({ source: { type: 'generator', rate: 2_000, fields: { id: { kind: 'sequence' } } } });
    const first = await boot(persistence);
    await first.node.createPipeline(definition, { pipelineId: 'endless' });
    await first.node.start('endless');
    await until(first.node, 'endless', (s) => processed(s) >= 50);
    const report = await first.node.shutdown();
    const stopped = report.pipelines.find((p) => p.pipelineId === 'endless');
    expect(stopped?.status).toBe('running');
    expect(stopped?.checkpoint).not.toBeNull();

    const second = await boot(persistence);
    // A checkpoint already being appended at shutdown still lands (it is durable); one not yet sent is abandoned.
    const recovered = second.node.recovered.find((p) => p.pipelineId === 'endless');
    if (recovered === undefined) throw new Error('the pipeline was not recovered');
    expect(recovered.metrics.batches - (stopped?.metrics.batches ?? 0)).toBeGreaterThanOrEqual(0);
    expect(recovered.metrics.batches - (stopped?.metrics.batches ?? 0)).toBeLessThanOrEqual(1);
    const listed = await second.node.listPipelines('running');
    expect(listed).toMatchObject([{ pipelineId: 'endless' }]);
    // The coordinator's count is reported at most every few seconds and at shutdown: never ahead of the journal.
    expect(listed[0]?.totalRecords).toBeLessThanOrEqual(recovered.metrics.recordsProcessed);
    expect(listed[0]?.totalRecords).toBeGreaterThanOrEqual(stopped?.metrics.recordsProcessed ?? 0);
    await until(second.node, 'endless', (s) => processed(s) >= recovered.metrics.recordsProcessed + 20);
    const [firstBatch, firstId] = batchLine(second.out.lines[0] ?? '');
    expect(firstBatch).toBe(recovered.metrics.batches + 1);
    expect(firstId).toBe(Number(recovered.checkpoint?.sourceOffset) + 1);
  });

  it('fails a pipeline for good when its connector refuses options the registry let through', async () => {
    const permissive = connectorRegistry({
      sources: localConnectorSchemas.sources,
      sinks: { console: { '~standard': { validate: (value: unknown) => ({ value }) } } },
    });
    const { node, logger } = await boot(createInMemoryPersistence(), { connectorRegistry: permissive });
    await node.createPipeline(generated({ sink: { type: 'console', format: 'loud' } }), { pipelineId: 'loud' });
    await node.start('loud');
    const failed = await until(node, 'loud', (s) => s.status === 'failed');
    expect(failed).toMatchObject({ status: 'failed', error: { tag: 'connector/invalid-options', retriable: false } });
    expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'error', message: expect.stringContaining('pipeline loud failed') as unknown }));
    await vi.waitFor(async () => expect((await node.systemStatus()).health).toBe('critical'));
  });

  it('unregisters at start a pipeline that was registered but never created', async () => {
    const persistence = createInMemoryPersistence();
    const system = createActorSystem({ name: 'before-crash' });
    const coordinator = spawnCoordinator(system, { persistence });
    const reply = await ask<CoordinatorCommand, CoordinatorReply>(
      coordinator,
      (replyTo) => ({ type: 'register', pipelineId: 'ghost', name: 'ghost', sourceType: 'generator', sinkType: 'console', replyTo }),
      { timeoutMs: 5_000 },
    );
    expect(reply.status).toBe('success');
    await system.terminate();

    const { node, logger } = await boot(persistence);
    expect(await node.listPipelines()).toEqual([]);
    expect(await node.getPipeline('ghost')).toBeUndefined();
    expect(logger.lines).toContainEqual(expect.objectContaining({ level: 'warn', message: expect.stringContaining('ghost') as unknown }));
  });
});
