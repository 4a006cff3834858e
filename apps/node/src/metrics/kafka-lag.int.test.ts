/**
 * `pipeline_kafka_consumer_lag` end to end: records produced to a real Kafka
 * topic, a node whose pipeline reads them slowly (a rate limit), the gauge
 * scraped from the node's registry: above 0 per partition while the records
 * wait, 0 once every record is read. Both Kafka client adapters.
 */
import { allConnectorsRegistry, createKafkaClient, parseKafkaProducerOptions, type KafkaAdapterName } from '@dataflow/connectors';
import type { PipelineState } from '@dataflow/core';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseExposition, startTempNode, type Sample } from './metrics-test-kit.js';
import { createNodeMetrics } from './node-metrics.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const lagOf = (samples: readonly Sample[], pipeline: string) =>
  samples.filter((s) => s.name === 'pipeline_kafka_consumer_lag' && s.labels['pipeline'] === pipeline).map((s) => [s.labels['topic'], s.labels['partition'], s.value] as const);

describe.each<KafkaAdapterName>(['kafkajs', 'platformatic'])('pipeline_kafka_consumer_lag (%s)', (adapter) => {
  it('is above 0 while produced records wait and 0 once the pipeline read them all', { timeout: 60_000 }, async () => {
    const brokers = [...serviceSettings().kafkaBrokers];
    const topic = `${testNamespace(import.meta.url)}-${adapter}-${Date.now().toString(36)}`;
    const client = createKafkaClient({ client: adapter, brokers, clientId: topic });
    const admin = await client.admin();
    cleanups.push(async () => {
      await admin.deleteTopics([topic]);
      await admin.close();
    });
    await admin.createTopics([{ topic, partitions: 2 }]);
    const producer = await client.producer(parseKafkaProducerOptions(adapter, {}));
    await producer.send(Array.from({ length: 200 }, (_, i) => ({ topic, partition: i % 2, value: Buffer.from(JSON.stringify({ i })) })));
    await producer.close();

    const temp = await startTempNode({}, { lagIntervalMs: 100, connectorRegistry: allConnectorsRegistry });
    const metrics = createNodeMetrics(temp.node, { processMetrics: false });
    cleanups.push(async () => {
      metrics.close();
      await temp.close();
    });
    const scrape = async () => parseExposition(await metrics.registry.metrics());
    const { pipelineId } = await temp.node.createPipeline(
      {
        name: 'lagging',
        source: { type: 'kafka', client: adapter, brokers, topics: [topic], autoOffsetReset: 'earliest', fetchMaxWaitMs: 100, sessionTimeoutMs: 10_000, heartbeatIntervalMs: 1_000 },
        sink: { type: 'console' },
        batch: { size: 10, maxWaitMs: 50 },
        // 200 records at 100/s: about 2 s of lag to see.
        rateLimit: { recordsPerSecond: 100, burst: 10 },
      },
      { pipelineId: `lag-${adapter}` },
    );
    await temp.node.start(pipelineId);

    const waiting = await vi.waitFor(
      async () => {
        const lag = lagOf(await scrape(), pipelineId);
        if (lag.length < 2 || lag.every(([, , v]) => v === 0)) throw new Error(`lag so far: ${JSON.stringify(lag)}`);
        return lag;
      },
      { timeout: 20_000, interval: 50 },
    );
    expect(waiting.map(([t, p]) => [t, p]).sort()).toEqual([[topic, '0'], [topic, '1']]);
    expect(waiting.reduce((sum, [, , v]) => sum + v, 0)).toBeLessThanOrEqual(200);

    await vi.waitFor(
      async () => {
        const state: PipelineState | undefined = await temp.node.getPipeline(pipelineId);
        if (state?.status !== 'running' || state.metrics.recordsProcessed < 200) throw new Error('still reading');
        const lag = lagOf(await scrape(), pipelineId);
        if (lag.length !== 2 || lag.some(([, , v]) => v !== 0)) throw new Error(`lag: ${JSON.stringify(lag)}`);
      },
      { timeout: 30_000, interval: 50 },
    );
    expect(lagOf(await scrape(), pipelineId).map(([, p, v]) => [p, v]).sort()).toEqual([['0', 0], ['1', 0]]);

    // A pipeline that no longer runs has no lag series.
    await temp.node.stop(pipelineId, 'test over');
    await vi.waitFor(async () => expect(lagOf(await scrape(), pipelineId)).toEqual([]), { timeout: 20_000, interval: 50 });
  });
});
