/**
 * Routing in a cluster: the admin API works on any node. A request about one
 * pipeline (`/api/v1/pipelines/{id}...`, and creating one: the id is chosen
 * here when the body has none) is handled by the node that runs the
 * pipeline's shard; any other node forwards it there and relays the answer
 * (status, headers that matter, body). Forwarded requests carry
 * `x-dataflow-forwarded-by`, so a request is forwarded at most once: when the
 * shard moved meanwhile, the receiver answers 503 (retriable) instead of
 * bouncing it on.
 *
 * Requests about the projections go to the coordinator's node: their slice
 * ranges run spread over the nodes, and any node answers their status from
 * the shared offset store, but a rebuild runs in one place (and shows its
 * progress there). Lists and system status need no forwarding: every node
 * asks the one coordinator (the list adds the counts of the shared read
 * model, and answers from it alone while the coordinator moves).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ApiError } from '../api/api-errors.js';

/** Where a pipeline runs now. */
export type PipelineOwner = { readonly self: true } | { readonly self: false; readonly nodeId: string; readonly url: string } | undefined;

export interface PipelineRoutingOptions {
  readonly nodeId: string;
  /** The owner of `pipelineId`'s shard now; undefined while its shard has no live owner (moving, or its node was lost). */
  readonly ownerOf: (pipelineId: string) => PipelineOwner;
  /** Where the coordinator runs (self when here); the projections' routes are forwarded there. */
  readonly coordinatorOwner?: () => PipelineOwner;
  /** What `GET /api/v1/cluster` shows: this node's view (members, shards, coordinator, hosted pipelines). */
  readonly view?: () => Record<string, unknown>;
  /** Sent to the owner (the cluster's nodes share the API token). */
  readonly authToken?: string;
  /** Per forwarded request (default 30 000 ms). */
  readonly timeoutMs?: number;
}

const FORWARDED = 'x-dataflow-forwarded-by';
const PIPELINE_ROUTE = /^\/api\/v1\/pipelines\/:id(\/|$)/;

/**
 * Adds the forwarding hook to the admin API (before its routes run).
 *
 * @example
 * ```ts
 * registerPipelineRouting(app, { nodeId, ownerOf: (id) => cluster.ownerOf(id), authToken });
 * ```
 */
export function registerPipelineRouting(app: FastifyInstance, options: PipelineRoutingOptions): void {
  const view = options.view;
  if (view !== undefined) {
    app.get(
      '/api/v1/cluster',
      {
        schema: {
          tags: ['system'],
          summary: "This node's view of the cluster: live members, the shards it holds, whether it runs the coordinator, the pipelines it runs",
          response: { 200: { type: 'object', additionalProperties: true } },
        },
      },
      () => view(),
    );
  }
  app.addHook('preHandler', async (request, reply) => {
    const route = request.routeOptions.url ?? '';
    let pipelineId: string | undefined;
    if (PIPELINE_ROUTE.test(route)) {
      pipelineId = (request.params as { id?: string }).id;
    } else if (route === '/api/v1/pipelines' && request.method === 'POST') {
      const body = request.body as { id?: string } | undefined;
      if (body !== undefined && typeof body === 'object' && body.id === undefined) body.id = randomUUID();
      pipelineId = body?.id;
    }
    let owner: PipelineOwner;
    let what: string;
    if (pipelineId !== undefined) {
      owner = options.ownerOf(pipelineId);
      what = `Pipeline ${pipelineId}`;
    } else if (route.startsWith('/api/v1/projections') && options.coordinatorOwner !== undefined) {
      owner = options.coordinatorOwner();
      what = 'The projections';
    } else {
      return;
    }
    if (owner?.self === true) return;
    const forwardedBy = request.headers[FORWARDED];
    if (owner === undefined || forwardedBy !== undefined) {
      const why = owner === undefined ? 'no live node runs them right now (they are moving to another node)' : `they moved to node ${owner.nodeId} while the request was forwarded`;
      throw new ApiError(503, 'unavailable', `${what} cannot be served here: ${why}; retry`);
    }
    await forward(request, reply, owner.url, options);
  });
}

async function forward(request: FastifyRequest, reply: FastifyReply, url: string, options: PipelineRoutingOptions): Promise<void> {
  const headers: Record<string, string> = { [FORWARDED]: options.nodeId };
  if (options.authToken !== undefined) headers['authorization'] = `Bearer ${options.authToken}`;
  const hasBody = request.body !== undefined && request.method !== 'GET' && request.method !== 'DELETE';
  if (hasBody) headers['content-type'] = 'application/json';
  // The timeout covers the wait for the answer's head; the body then streams (the live feed never ends) until the client goes.
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no answer within ${options.timeoutMs ?? 30_000} ms`)), options.timeoutMs ?? 30_000);
  reply.raw.once('close', () => abort.abort(new Error('the client went away')));
  let response: Response;
  try {
    response = await fetch(`${url}${request.url}`, { method: request.method, headers, ...(hasBody ? { body: JSON.stringify(request.body) } : {}), signal: abort.signal });
  } catch (error) {
    throw new ApiError(503, 'unavailable', `The node running this pipeline (${url}) cannot be reached: ${error instanceof Error ? error.message : String(error)}; retry`);
  } finally {
    clearTimeout(timer);
  }
  for (const name of ['content-type', 'location', 'cache-control']) {
    const value = response.headers.get(name);
    if (value !== null) void reply.header(name, value);
  }
  void reply.header('x-dataflow-served-by', url);
  void reply.status(response.status);
  if (response.body === null) return reply.send();
  const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
  body.on('error', () => undefined); // the client or the owner went away mid-stream: nothing more to send
  return reply.send(body);
}
