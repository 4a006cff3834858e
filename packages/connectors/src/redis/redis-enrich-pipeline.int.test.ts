/**
 * A running pipeline with an enrich stage on the real Redis (issue 9 defect
 * 1: a pipeline with an enrich stage always failed, because the pipeline ran
 * its stages synchronously): generator → enrich (RedisLookupSource) → memory
 * sink, checkpoints on the real Postgres journal.
 */
import {
  ask,
  createActorSystem,
  pipelineActor,
  type ActorRef,
  type ActorSystem,
  type PipelineCommand,
  type PipelineReply,
  type PipelineState,
} from '@dataflow/core';
import { createPostgresPersistence } from '@dataflow/persistence';
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSource } from '../factory/create-connector.js';
import { InMemorySink } from '../memory/in-memory-sink.js';
import { RedisLookupSource } from './redis-lookup.js';

describe('a pipeline enriching from Redis', () => {
  const namespace = testNamespace(import.meta.url);
  let client: Redis;
  let pool: pg.Pool;
  let system: ActorSystem;

  beforeAll(async () => {
    client = new Redis(serviceSettings().redisUrl, { maxRetriesPerRequest: 1 });
    await client.mset(`${namespace}:customers:c1`, JSON.stringify({ name: 'Ada', tier: 'gold' }), `${namespace}:customers:c2`, JSON.stringify({ name: 'Grace' }));
    pool = new pg.Pool({ connectionString: serviceSettings().postgresUrl, max: 2 });
    system = createActorSystem({ name: 'redis-enrich-pipeline' });
  });

  afterAll(async () => {
    await system.terminate();
    const keys = await client.keys(`${namespace}:*`);
    if (keys.length > 0) await client.del(...keys);
    await client.quit();
    await pool.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(namespace)} CASCADE`);
    await pool.end();
  });

  it('runs to the end of its source with every record enriched from Redis, misses dropped', { timeout: 60_000 }, async () => {
    const persistence = await createPostgresPersistence({ pool, ownsPool: false, schema: namespace, ensureSchema: true });
    const sink = new InMemorySink();
    let finished: (state: PipelineState) => void = () => undefined;
    const done = new Promise<PipelineState>((resolve) => (finished = resolve));
    const pipeline = system.spawn(
      pipelineActor({
        pipelineId: 'enrich-redis',
        persistence,
        connectors: {
          createSource: (definition) => createSource(definition),
          createSink: () => sink,
          createDeadLetterTarget: () => {
            throw new Error('no dead letters in this test');
          },
        },
        lookups: { customers: new RedisLookupSource({ client, keyPrefix: `${namespace}:customers:` }) },
        onStateChange: (state) => {
          if (state.status === 'stopped' || state.status === 'failed') finished(state);
        },
      }),
      'pipeline-enrich-redis',
    );
    const call = (build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand) => ask<PipelineCommand, PipelineReply>(pipeline, build, { timeoutMs: 10_000 });
    const created = await call((replyTo) => ({
      type: 'create',
      definition: {
        name: 'enrich-redis',
        source: { type: 'generator', count: 30, fields: { id: { kind: 'sequence' }, customerId: { kind: 'pick', values: ['c1', 'c2', 'nobody'] } } },
        transforms: [{ type: 'enrich', lookup: 'customers', key: 'customerId', target: 'customer', onMiss: 'drop' }],
        sink: { type: 'memory' },
        batch: { size: 7, maxWaitMs: 10 },
      },
      replyTo,
    }));
    expect(created).toMatchObject({ status: 'success' });
    expect(await call((replyTo) => ({ type: 'start', replyTo }))).toMatchObject({ status: 'success' });

    const state = await done;
    await persistence.close();
    expect(state.status).toBe('stopped');
    const records = sink.records();
    expect(records.length).toBeGreaterThan(0);
    expect(records.length).toBeLessThan(30);
    for (const record of records) {
      expect(record['customer']).toEqual(record['customerId'] === 'c1' ? { name: 'Ada', tier: 'gold' } : { name: 'Grace' });
    }
    // A dropped miss is not a failure: all 30 records count as processed.
    if (state.status === 'stopped') expect(state.metrics.recordsProcessed).toBe(30);
  });
});
