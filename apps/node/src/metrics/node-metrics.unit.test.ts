/**
 * The metrics registry without a node: docs-metrics.md names exactly the
 * metrics the registry holds, and each instrumentation event moves the
 * metric the docs say it does (driven through core's real emitter).
 */
import { createInstrumentation, type InstrumentationEvent } from '@dataflow/core';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseExposition, valueOf } from './metrics-test-kit.js';
import { createNodeMetrics } from './node-metrics.js';

const docsUrl = new URL('../../docs-metrics.md', import.meta.url);

describe('createNodeMetrics', () => {
  it('registers exactly the metrics docs-metrics.md lists, process metrics included', async () => {
    const metrics = createNodeMetrics({ events: createInstrumentation<InstrumentationEvent>(), recovered: [] });
    const registered = metrics.registry.getMetricsAsArray().map((m) => m.name).sort();
    const docs = await readFile(docsUrl, 'utf8');
    const available = docs.slice(0, docs.indexOf('## Not available'));
    const documented = [...new Set([...available.matchAll(/`((?:pipeline|dataflow|process|nodejs)_[a-z0-9_]+)`/g)].map((m) => m[1] as string))].sort();
    expect(documented).toEqual(registered);
    metrics.close();
  });

  it('keeps pipeline_kafka_consumer_lag to the partitions of the last sample, and drops it when the pipeline stops', async () => {
    const events = createInstrumentation<InstrumentationEvent>();
    const metrics = createNodeMetrics({ events, recovered: [] }, { processMetrics: false });
    const lag = async () =>
      parseExposition(await metrics.registry.metrics())
        .filter((s) => s.name === 'pipeline_kafka_consumer_lag')
        .map((s) => [s.labels['pipeline'], s.labels['topic'], s.labels['partition'], s.value]);
    const sample = (pipelineId: string, partitions: { topic: string; partition: number; lag: number }[], sourceType = 'kafka') =>
      events.emit({ type: 'pipeline.source.lag', pipelineId, sourceType, partitions });
    sample('p', [{ topic: 't', partition: 0, lag: 5 }, { topic: 't', partition: 1, lag: 3 }]);
    sample('q', [{ topic: 'u', partition: 0, lag: 1 }]);
    sample('r', [{ topic: 'x', partition: 0, lag: 9 }], 'postgres');
    expect(await lag()).toEqual([['p', 't', '0', 5], ['p', 't', '1', 3], ['q', 'u', '0', 1]]);
    // Partition 1 went to another consumer: its series goes.
    sample('p', [{ topic: 't', partition: 0, lag: 0 }]);
    expect(await lag()).toEqual([['p', 't', '0', 0], ['q', 'u', '0', 1]]);
    events.emit({ type: 'pipeline.status.changed', pipelineId: 'q', from: 'running', to: 'paused' });
    events.emit({ type: 'pipeline.status.changed', pipelineId: 'p', from: 'running', to: 'stopped' });
    expect(await lag()).toEqual([['q', 'u', '0', 1]]);
    metrics.close();
  });

  it('sets pipeline_source_up from the lag samples (0 while the source does not answer) and drops it when the pipeline stops', async () => {
    const events = createInstrumentation<InstrumentationEvent>();
    const metrics = createNodeMetrics({ events, recovered: [] }, { processMetrics: false });
    const up = async () =>
      parseExposition(await metrics.registry.metrics())
        .filter((s) => s.name === 'pipeline_source_up')
        .map((s) => [s.labels['pipeline'], s.value]);
    events.emit({ type: 'pipeline.source.lag', pipelineId: 'p', sourceType: 'kafka', partitions: [] });
    events.emit({ type: 'pipeline.source.lag-failed', pipelineId: 'q', sourceType: 'kafka', error: new Error('broker down') });
    expect(await up()).toEqual([['p', 1], ['q', 0]]);
    events.emit({ type: 'pipeline.source.lag', pipelineId: 'q', sourceType: 'kafka', partitions: [] });
    events.emit({ type: 'pipeline.status.changed', pipelineId: 'p', from: 'running', to: 'stopped' });
    expect(await up()).toEqual([['q', 1]]);
    metrics.close();
  });

  it('moves each metric from its event, and stops when closed', async () => {
    const events = createInstrumentation<InstrumentationEvent>();
    const metrics = createNodeMetrics({ events, recovered: [] }, { processMetrics: false });
    const scrape = async () => parseExposition(await metrics.registry.metrics());
    const completed = {
      type: 'pipeline.batch.completed',
      pipelineId: 'p',
      batchId: 'p:1',
      records: 40,
      succeeded: 37,
      failed: 3,
      failedByStage: { source: 1, 'transforms[2]': 2 },
      deadLettered: 2,
      durationMs: 120,
    } as const;
    events.emit(completed);
    events.emit({ type: 'pipeline.batch.failed', pipelineId: 'p', batchId: 'p:2', error: new Error('x'), retriable: true, stage: 'sink' });
    events.emit({ type: 'pipeline.status.changed', pipelineId: 'p', from: 'configured', to: 'running' });
    events.emit({ type: 'event-sourced.journal.written', persistenceId: 'pipeline-p', events: 1, ok: true, durationMs: 3 });
    events.emit({ type: 'actor.restarted', path: '/user/x', attempt: 1, backoffMs: 0 });
    events.emit({ type: 'event-sourced.restarting', persistenceId: 'coordinator', attempt: 1, delayMs: 200, cause: new Error('down'), at: 0 });
    let samples = await scrape();
    expect(valueOf(samples, 'pipeline_records_processed_total', { pipeline: 'p' })).toBe(40);
    expect(valueOf(samples, 'pipeline_errors_total', { pipeline: 'p', stage: 'source' })).toBe(1);
    expect(valueOf(samples, 'pipeline_errors_total', { pipeline: 'p', stage: 'transforms[2]' })).toBe(2);
    expect(valueOf(samples, 'pipeline_errors_total', { pipeline: 'p', stage: 'sink' })).toBe(1);
    expect(valueOf(samples, 'dataflow_dead_letters_total', { pipeline: 'p' })).toBe(2);
    expect(valueOf(samples, 'pipeline_batch_duration_seconds_sum', { pipeline: 'p' })).toBeCloseTo(0.12);
    expect(valueOf(samples, 'pipeline_batch_size_sum', { pipeline: 'p' })).toBe(40);
    expect(valueOf(samples, 'pipeline_status', { pipeline: 'p', status: 'running' })).toBe(1);
    expect(valueOf(samples, 'pipeline_status', { pipeline: 'p', status: 'configured' })).toBe(0);
    expect(valueOf(samples, 'dataflow_journal_write_duration_seconds_sum')).toBeCloseTo(0.003);
    expect(valueOf(samples, 'dataflow_actor_restarts_total')).toBe(2);

    metrics.close();
    events.emit(completed);
    samples = await scrape();
    expect(valueOf(samples, 'pipeline_records_processed_total', { pipeline: 'p' })).toBe(40);
  });
  it("docs-metrics.md's example imports what @dataflow/node exports and uses the options it names", async () => {
    const docs = await readFile(docsUrl, 'utf8');
    const imported = /import \{ ([^}]+) \} from '@dataflow\/node';/.exec(docs);
    if (imported === null) throw new Error('docs-metrics.md has no import from @dataflow/node');
    const exported = (await import('../index.js')) as Record<string, unknown>;
    for (const name of (imported[1] as string).split(',').map((n) => n.trim())) expect(typeof exported[name], name).toBe('function');
    expect(docs).toContain('startMetricsServer({ registry: metrics.registry, port: 9095, host:');
  });
});
