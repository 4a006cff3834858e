/**
 * Health, readiness, the coordinator's system status and the projections.
 * `/health` answers while the process serves HTTP (liveness); `/ready` lists
 * each dependency's state and is 503 when a required one is not `ok`.
 */
import type { FastifyInstance } from 'fastify';
import type { AdminApiOptions } from './admin-api.js';
import { ApiError } from './api-errors.js';

/** A dependency `/ready` reports besides the journal. */
export interface ReadinessCheck {
  readonly name: string;
  /**
   * Default true: a state other than `ok` makes `/ready` 503. An optional
   * dependency (Logstash: its outage only delays log lines) is listed with
   * its state but never makes the node unready.
   */
  readonly required?: boolean;
  /** `ok`, or `degraded` / `down` with the cause. */
  check(): { readonly state: 'ok' | 'degraded' | 'down'; readonly detail?: string };
}

const anyObject = { type: 'object', additionalProperties: true } as const;
const errors = { 400: { $ref: 'ErrorBody#' }, 404: { $ref: 'ErrorBody#' }, 503: { $ref: 'ErrorBody#' } } as const;

const projectionSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    name: { type: 'string' },
    key: { type: 'string' },
    table: { type: 'string' },
    state: { type: 'string', enum: ['running', 'paused', 'failing', 'rebuilding'] },
    eventsApplied: { type: 'number' },
    lastEventAt: { type: ['string', 'null'] },
    lag: anyObject,
    lastError: { type: ['string', 'null'] },
    rebuild: { type: ['object', 'null'], additionalProperties: true },
  },
} as const;

export function registerSystemRoutes(app: FastifyInstance, options: AdminApiOptions): void {
  const { node, projections } = options;
  app.get('/health', { schema: { tags: ['system'], summary: 'Liveness: the process answers', response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } }, (_request, reply) =>
    reply.send({ status: 'ok' }),
  );

  app.get(
    '/ready',
    {
      schema: {
        tags: ['system'],
        summary: "Readiness: each dependency's state; 503 when one is not ok",
        response: {
          200: { type: 'object', properties: { ready: { type: 'boolean' }, dependencies: { type: 'array', items: anyObject } } },
          503: { type: 'object', properties: { ready: { type: 'boolean' }, dependencies: { type: 'array', items: anyObject } } },
        },
      },
    },
    async (_request, reply) => {
      const health = node.health();
      const journal = {
        name: 'journal',
        state: health.state === 'ok' ? 'ok' : health.state === 'degraded' ? 'degraded' : 'down',
        detail: health.state === 'ok' ? node.storeDescription : [...health.problems].map(([component, why]) => `${component}: ${why}`).join('; ') || health.state,
      };
      const others = (options.readiness ?? []).map((r) => ({ name: r.name, required: r.required !== false, ...r.check() }));
      // The pipelines' sources (Kafka brokers, ...): one that does not answer holds its pipeline back, not the node.
      const unreachable = node.sources.problems();
      const sources = {
        name: 'sources',
        required: false,
        state: unreachable.length === 0 ? 'ok' : 'degraded',
        ...(unreachable.length === 0
          ? {}
          : { detail: unreachable.map((p) => `pipeline ${p.pipelineId}: its ${p.sourceType} source does not answer since ${new Date(p.since).toISOString()} (${p.cause})`).join('; ') }),
      };
      const dependencies = [{ ...journal, required: true }, ...others, sources];
      const ready = dependencies.every((d) => d.state === 'ok' || !d.required);
      return reply.status(ready ? 200 : 503).send({ ready, dependencies });
    },
  );

  app.get('/api/v1/system/status', { schema: { tags: ['system'], summary: "The coordinator's view: pipelines by status, records, resources", response: { 200: anyObject, 503: errors[503] } } }, () =>
    node.systemStatus(),
  );

  app.get('/api/v1/projections', { schema: { tags: ['projections'], summary: 'The read-model projections with offset, lag, last error and rebuild progress', response: { 200: { type: 'object', properties: { projections: { type: 'array', items: projectionSchema } } } } } }, async () => ({
    projections: projections === undefined ? [] : await projections.list(),
  }));

  const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 100 } } } as const;
  app.get<{ Params: { name: string } }>(
    '/api/v1/projections/:name',
    { schema: { tags: ['projections'], summary: 'One projection', params: nameParams, response: { 200: projectionSchema, 404: errors[404] } } },
    async (request) => {
      const found = await projections?.get(request.params.name);
      if (found === undefined) throw new ApiError(404, 'not-found', `No projection ${JSON.stringify(request.params.name.slice(0, 100))} runs on this node`);
      return found;
    },
  );
  for (const action of ['pause', 'resume', 'rebuild'] as const) {
    app.post<{ Params: { name: string } }>(
      `/api/v1/projections/:name/${action}`,
      {
        schema: {
          tags: ['projections'],
          summary: action === 'rebuild' ? 'Rebuild into a shadow table and swap it in; answers at once, progress in rebuild' : `${action[0]?.toUpperCase()}${action.slice(1)} the projection`,
          params: nameParams,
          // 409: a rebuild while another node's rebuild of the read model is alive.
          response: { 202: projectionSchema, 200: projectionSchema, 404: errors[404], ...(action === 'rebuild' ? { 409: { $ref: 'ErrorBody#' } } : {}) },
        },
      },
      async (request, reply) => {
        if (projections === undefined) throw new ApiError(404, 'not-found', 'This node runs no projections (its journal has no SQL database, or projections.enabled is false)');
        const info = await projections[action](request.params.name);
        return reply.status(action === 'rebuild' ? 202 : 200).send(info);
      },
    );
  }
}
