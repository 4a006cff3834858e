/**
 * The live feed (server-sent events): `GET /api/v1/feed` for every pipeline,
 * `GET /api/v1/pipelines/:id/feed` for one. Events:
 *
 * - `counts` every interval: `{ at, pipelines: [{ id, name, status,
 *   recordsProcessed, recordsFailed, recordsDeadLettered, recordsPerSec }] }`,
 *   the rate measured between two ticks;
 * - `status` at once on a change: `{ id, from, to, at }`;
 * - `batch-failed` at once: `{ id, stage, retriable, message, at }`.
 *
 * The pipelines are read only while someone listens; a client that goes
 * away is forgotten at its socket's close.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { DataflowNode } from '../node/dataflow-node.js';
import { PipelineNotFoundError } from '../node/node-errors.js';

/** Status changes heard from other nodes: `subscribe` returns the unsubscribe function. */
export interface RemoteStatusSource {
  subscribe(listener: (change: { readonly pipelineId: string; readonly from: string; readonly status: string; readonly nodeId: string; readonly at: string }) => void): () => void;
}

interface Client {
  readonly reply: FastifyReply;
  /** Only this pipeline, or all. */
  readonly pipelineId: string | undefined;
}

interface Count {
  readonly at: number;
  readonly processed: number;
}

export function registerFeed(app: FastifyInstance, node: DataflowNode, intervalMs: number, remote?: RemoteStatusSource): void {
  const clients = new Set<Client>();
  const previous = new Map<string, Count>();
  let timer: NodeJS.Timeout | undefined;
  let ticking = false;

  const send = (client: Client, event: string, data: unknown): void => {
    if (!client.reply.raw.writableEnded) client.reply.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const broadcast = (event: string, pipelineId: string, data: unknown): void => {
    for (const client of clients) if (client.pipelineId === undefined || client.pipelineId === pipelineId) send(client, event, data);
  };

  const tick = async (): Promise<void> => {
    if (ticking) return;
    ticking = true;
    try {
      const listed = await node.listPipelines();
      const now = Date.now();
      const rows = [];
      for (const entry of listed) {
        const state = await node.getPipeline(entry.pipelineId);
        if (state === undefined || state.status === 'empty') continue;
        const processed = state.metrics.recordsProcessed;
        const before = previous.get(entry.pipelineId);
        previous.set(entry.pipelineId, { at: now, processed });
        const seconds = before === undefined ? 0 : (now - before.at) / 1000;
        rows.push({
          id: entry.pipelineId,
          name: state.definition.name,
          status: state.status,
          recordsProcessed: processed,
          recordsFailed: state.metrics.recordsFailed,
          recordsDeadLettered: state.metrics.recordsDeadLettered,
          recordsPerSec: seconds > 0 ? Math.max(0, Math.round((processed - (before?.processed ?? 0)) / seconds)) : 0,
        });
      }
      for (const client of clients) {
        send(client, 'counts', { at: new Date(now).toISOString(), pipelines: client.pipelineId === undefined ? rows : rows.filter((r) => r.id === client.pipelineId) });
      }
    } catch {
      // The node is stopping or degraded: the next tick tries again; /ready tells why.
    } finally {
      ticking = false;
    }
  };

  const offStatus = node.events.on('pipeline.status.changed', (e) => broadcast('status', e.pipelineId, { id: e.pipelineId, from: e.from, to: e.to, at: new Date().toISOString() }));
  const offFailed = node.events.on('pipeline.batch.failed', (e) =>
    broadcast('batch-failed', e.pipelineId, { id: e.pipelineId, stage: e.stage, retriable: e.retriable, message: e.error instanceof Error ? e.error.message : String(e.error), at: new Date().toISOString() }),
  );
  // preClose: the server waits for open connections before onClose hooks run, and a feed stays open until ended here.
  // Another node's changes (this node's own come from its events above).
  const offRemote =
    remote?.subscribe((change) => {
      if (change.nodeId !== node.nodeId) broadcast('status', change.pipelineId, { id: change.pipelineId, from: change.from, to: change.status, at: change.at, nodeId: change.nodeId });
    }) ?? (() => undefined);
  app.addHook('preClose', (done) => {
    offRemote();
    offStatus();
    offFailed();
    if (timer !== undefined) clearInterval(timer);
    for (const client of clients) client.reply.raw.end();
    clients.clear();
    done();
  });

  const open = (reply: FastifyReply, pipelineId: string | undefined): void => {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    reply.raw.write('retry: 2000\n\n');
    const client: Client = { reply, pipelineId };
    clients.add(client);
    timer ??= setInterval(() => void tick(), intervalMs);
    void tick();
    reply.raw.on('close', () => {
      clients.delete(client);
      if (clients.size === 0 && timer !== undefined) {
        clearInterval(timer);
        timer = undefined;
      }
    });
  };

  const description = 'Server-sent events: counts (every second), status (on a change), batch-failed';
  app.get('/api/v1/feed', { schema: { tags: ['feed'], summary: `Live feed of every pipeline. ${description}`, produces: ['text/event-stream'] } }, (_request, reply) => {
    open(reply, undefined);
  });
  app.get<{ Params: { id: string } }>(
    '/api/v1/pipelines/:id/feed',
    {
      schema: {
        tags: ['feed'],
        summary: `Live feed of one pipeline. ${description}`,
        produces: ['text/event-stream'],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,100}$' } } },
      },
    },
    async (request, reply) => {
      const state = await node.getPipeline(request.params.id);
      if (state === undefined || state.status === 'empty') throw new PipelineNotFoundError(request.params.id);
      open(reply, request.params.id);
    },
  );
}
