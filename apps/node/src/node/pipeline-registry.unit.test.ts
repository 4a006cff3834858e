/**
 * The coordinator's registry follows a pipeline's counts (issue 13 item 11):
 * counts of a running pipeline are reported at most once per
 * `statusReportIntervalMs`, but the last ones always are. A pipeline whose
 * source went quiet within an interval of its previous report used to leave
 * the registry (`GET /api/v1/pipelines`) at that report's count for as long
 * as it stayed quiet; found by `full-stack.e2e.test.ts`, where a Kafka topic
 * drained after a restart left the list thousands of records behind.
 */
import { createInMemoryPersistence, type DataRecord, type Scheduler, type Source, type SourceBatch, type SourceContext } from '@dataflow/core';
import { TestClock } from '@dataflow/core/testing';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { localConnectorFactory } from './connector-factory.js';
import { startNode, type DataflowNode } from './dataflow-node.js';
import type { NodeLogger } from './node-logger.js';

const quiet: NodeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const discard = new Writable({ write: (_chunk, _encoding, done) => done() });

/** A source that hands out what the test pushes, and waits `maxWaitMs` on the test clock when there is nothing. */
class PushedSource implements Source {
  readonly type = 'pushed';
  private readonly queued: DataRecord[] = [];
  private offset = 0;

  constructor(private readonly scheduler: Scheduler) {}

  push(count: number): void {
    for (let i = 0; i < count; i++) this.queued.push({ n: this.offset + this.queued.length + 1 });
  }

  open(context: SourceContext): Promise<void> {
    this.offset = typeof context.checkpoint === 'number' ? context.checkpoint : 0;
    return Promise.resolve();
  }

  poll(maxRecords: number, maxWaitMs: number): Promise<SourceBatch> {
    const records = this.queued.splice(0, maxRecords);
    if (records.length === 0) return new Promise((resolve) => this.scheduler.schedule(maxWaitMs, () => resolve({ records: [], offset: this.offset, done: false })));
    this.offset += records.length;
    return Promise.resolve({ records: records.map((value) => ({ ok: true, value })), offset: this.offset, done: false });
  }

  ack(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

const nodes: { node: DataflowNode; clock: TestClock }[] = [];
afterEach(async () => {
  // The stop waits on timers of the test clock (a poll's wait, the stop's own bound): the clock moves until it is done.
  for (const { node, clock } of nodes.splice(0)) {
    let stopped = false;
    const stopping = node.shutdown().finally(() => (stopped = true));
    while (!stopped) await clock.advanceAsync(100);
    await stopping;
  }
});

/** Advances the test clock in steps, letting the in-memory journal's promises run between them. */
async function advance(clock: TestClock, totalMs: number, stepMs = 100): Promise<void> {
  for (let t = 0; t < totalMs; t += stepMs) await clock.advanceAsync(stepMs);
}

describe("the coordinator's registry of a node", () => {
  it('gets the last counts of a pipeline that went quiet within the report interval', { timeout: 30_000 }, async () => {
    const clock = new TestClock({ startAt: 1_000_000 });
    const source = new PushedSource(clock);
    const node = await startNode({
      store: { type: 'plugin', plugin: createInMemoryPersistence() },
      logger: quiet,
      connectors: { ...localConnectorFactory({ stream: discard }), createSource: () => source },
      clock,
      scheduler: clock,
      statusReportIntervalMs: 5_000,
    });
    nodes.push({ node, clock });
    const definition = { name: 'pushed', source: { type: 'generator' }, sink: { type: 'console' }, batch: { size: 10, maxWaitMs: 50 } };
    const creating = node.createPipeline(definition, { pipelineId: 'pushed' }).then(() => node.start('pushed'));
    await advance(clock, 1_000);
    await creating;
    const registered = async () => (await node.listPipelines()).map((p) => [p.pipelineId, p.status, p.totalRecords]);
    await advance(clock, 1_000);
    expect(await registered()).toEqual([['pushed', 'running', 0]]);

    // Within the interval of the report of `running`: held back, then reported once the interval is over.
    source.push(30);
    await advance(clock, 1_000);
    expect(await node.getPipeline('pushed')).toMatchObject({ status: 'running', metrics: { recordsProcessed: 30 } });
    await advance(clock, 10_000);
    expect(await registered()).toEqual([['pushed', 'running', 30]]);

    // The same after a report of counts.
    source.push(25);
    await advance(clock, 1_000);
    await advance(clock, 10_000);
    expect(await registered()).toEqual([['pushed', 'running', 55]]);
  });
});
