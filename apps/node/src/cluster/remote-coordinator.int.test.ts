/**
 * The coordinator across processes: a node's admin API serves its
 * coordinator on `POST /internal/v1/coordinator`, and a forwarding actor in
 * another actor system asks it as if it were local (values, refusals with
 * their tag, "nothing" as undefined). Commands of the wrong shape are refused
 * field by field before they reach the coordinator's journal; no holder, or
 * one that does not answer, is a retriable error.
 */
import { askWithStatus, createActorSystem, isDataflowError, type ActorRef, type ActorSystem, type CoordinatorCommand, type RegisteredPipeline } from '@dataflow/core';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdminApi } from '../api/admin-api.js';
import { startNode, type DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { registerCoordinatorRoute, spawnRemoteCoordinator } from './remote-coordinator.js';

const quiet: NodeLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
let node: DataflowNode;
let app: FastifyInstance;
let url: string;
let other: ActorSystem;

beforeAll(async () => {
  node = await startNode({ store: { type: 'memory' }, logger: quiet });
  app = await createAdminApi({ node, logger: quiet, cluster: { nodeId: 'holder', ownerOf: () => ({ self: true }) } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  other = createActorSystem({ name: 'other-node' });
});

afterAll(async () => {
  await other?.terminate();
  await app?.close();
  await node?.shutdown();
});

const ask = <R>(ref: ReturnType<typeof spawnRemoteCoordinator>, build: Parameters<typeof askWithStatus<CoordinatorCommand, R>>[1]) =>
  askWithStatus<CoordinatorCommand, R>(ref, build, { timeoutMs: 10_000 });

describe('the coordinator across nodes', () => {
  it('answers forwarded commands as the local coordinator does: values, typed refusals, and nothing as undefined', async () => {
    const remote = spawnRemoteCoordinator(other, { holderUrl: () => url });
    const registered = await ask<RegisteredPipeline | undefined>(remote, (replyTo) => ({ type: 'register', pipelineId: 'orders', name: 'orders', sourceType: 'kafka', sinkType: 'postgres', replyTo }));
    expect(registered).toMatchObject({ pipelineId: 'orders', name: 'orders', status: 'configured' });
    expect(await node.listPipelines()).toEqual([expect.objectContaining({ pipelineId: 'orders' })]);
    expect(await ask<readonly RegisteredPipeline[]>(remote, (replyTo) => ({ type: 'list-pipelines', status: 'configured', replyTo }))).toEqual([expect.objectContaining({ pipelineId: 'orders' })]);
    expect(await ask<RegisteredPipeline | undefined>(remote, (replyTo) => ({ type: 'get-pipeline', pipelineId: 'nope', replyTo }))).toBeUndefined();

    const refused = await ask(remote, (replyTo) => ({ type: 'register', pipelineId: 'other', name: 'orders', sourceType: 'kafka', sinkType: 'postgres', replyTo })).catch((error: unknown) => error);
    expect(isDataflowError(refused, 'coordinator/command-rejected')).toBe(true);
    expect((refused as Error).message).toMatch(/the name orders is taken by orders/);
    expect((refused as { retriable: boolean }).retriable).toBe(false);
    expect(await ask<unknown>(remote, (replyTo) => ({ type: 'unregister', pipelineId: 'orders', replyTo }))).toBeUndefined();
    expect(await node.listPipelines()).toEqual([]);
    await other.stop(remote);
  });

  it('refuses commands of the wrong shape field by field, before the coordinator sees them', async () => {
    const post = async (body: string) => {
      const response = await fetch(`${url}/internal/v1/coordinator`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return { status: response.status, body: (await response.json()) as { error: string; message: string } };
    };
    for (const body of [
      JSON.stringify({ type: 'register', pipelineId: { $gt: '' }, name: 'x', sourceType: 'a', sinkType: 'b' }),
      JSON.stringify({ type: 'register', pipelineId: 'bad id!', name: 'x', sourceType: 'a', sinkType: 'b' }),
      JSON.stringify({ type: 'update-status', pipelineId: 'p', status: 'exploded', totalRecords: 1, failedRecords: 0 }),
      JSON.stringify({ type: 'drop-everything' }),
      JSON.stringify({ type: 'unregister', pipelineId: 'p', extra: 1 }),
      '{"type":"unregister","pipelineId":"p","__proto__":{"polluted":true}}',
    ]) {
      const answer = await post(body);
      expect(answer.status, body).toBe(400);
      expect(answer.body.error, body).toBe('bad-request');
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(await node.listPipelines()).toEqual([]);
  });

  it('answers a command in flight with a retriable 503 as soon as the coordinator stops here (the singleton moves), not after the ask timeout', async () => {
    // A coordinator that never answers what it holds, as one being stopped does.
    const silent = other.spawn<CoordinatorCommand, undefined>({ initialState: undefined, onMessage: (state) => state }, 'silent-coordinator');
    let current: ActorRef<CoordinatorCommand> | undefined = silent;
    const holder = Fastify();
    registerCoordinatorRoute(holder, () => current, 120_000);
    await holder.listen({ host: '127.0.0.1', port: 0 });
    try {
      const answered = fetch(`http://127.0.0.1:${(holder.server.address() as { port: number }).port}/internal/v1/coordinator`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'list-pipelines' }),
      });
      setTimeout(() => (current = undefined), 300);
      const response = await answered;
      expect(response.status).toBe(503);
      expect(await response.json()).toEqual({ status: 'error', error: { tag: 'node/unavailable', message: expect.stringMatching(/stopped here while answering/) as unknown, retriable: true } });
    } finally {
      await holder.close();
      await other.stop(silent);
    }
  });

  it('is a retriable error while no node holds the coordinator, or the holder does not answer', async () => {
    for (const holderUrl of [() => undefined, () => 'http://127.0.0.1:1']) {
      const remote = spawnRemoteCoordinator(other, { holderUrl, timeoutMs: 2_000 });
      const error = await ask(remote, (replyTo) => ({ type: 'list-pipelines', replyTo })).catch((e: unknown) => e);
      expect(isDataflowError(error, 'node/unavailable')).toBe(true);
      expect((error as { retriable: boolean }).retriable).toBe(true);
      expect((error as Error).message).toMatch(/the cluster's coordinator cannot be reached/);
      await other.stop(remote);
    }
  });
});
