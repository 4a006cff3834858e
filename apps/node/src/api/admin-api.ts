/**
 * The node's admin API on Fastify: JSON schemas on every route drive request
 * validation, response serialization and the OpenAPI 3 document at
 * `GET /api/v1/openapi.json`. Routes follow Kafka Connect's conventions
 * (`routes-pipelines.ts`, `routes-dead-letters.ts`, `routes-system.ts`,
 * `feed.ts`); every error is
 * `{ error, message, details, timestamp }` (`api-errors.ts`).
 *
 * Security: requests from off loopback need `Authorization: Bearer <token>`
 * (compared in constant time); a node listening off loopback without a token
 * refuses to start. Bodies are limited (`bodyLimit`, 413), JSON with
 * `__proto__` or `constructor.prototype` keys is refused (400), as is
 * nesting deeper than 64 levels.
 */
import { checkValueBounds } from '@dataflow/core';
import type { SqlExecutor } from '@dataflow/persistence';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import type { NodeProjections } from '../projections/node-projections.js';
import { ApiError, errorAnswer, errorBodySchema } from './api-errors.js';
import { registerFeed, type RemoteStatusSource } from './feed.js';
import { registerDeadLetterRoutes } from './routes-dead-letters.js';
import { registerPipelineRoutes } from './routes-pipelines.js';
import { registerSystemRoutes, type ReadinessCheck } from './routes-system.js';
import { registerPipelineRouting, type PipelineRoutingOptions } from '../cluster/pipeline-routing.js';
import { registerCoordinatorRoute } from '../cluster/remote-coordinator.js';

/** What the API serves. */
export interface AdminApiOptions {
  readonly node: DataflowNode;
  readonly projections?: NodeProjections;
  readonly logger: NodeLogger;
  /** Required for requests from off loopback. */
  readonly authToken?: string;
  /** Largest body accepted, bytes (default 1 MiB). */
  readonly bodyLimit?: number;
  /** Further dependencies `/ready` reports (Redis, ...). */
  readonly readiness?: readonly ReadinessCheck[];
  /** How often the live feed sends pipeline counts, ms (default 1 000). */
  readonly feedIntervalMs?: number;
  /** Status changes of other nodes (Redis pub/sub), sent to the live feed too. */
  readonly remoteStatus?: RemoteStatusSource;
  /** Cluster mode: requests are forwarded to the node that runs their pipeline, and the coordinator serves the other nodes. */
  readonly cluster?: PipelineRoutingOptions;
  /**
   * Where `postgres` dead-letter targets without `connectionString` write
   * (the node's postgres.url pool); default the journal's database when it
   * has one (embedded PGlite or Postgres).
   */
  readonly deadLetterDatabase?: () => SqlExecutor | undefined;
}

/** The deepest nesting of a request body. */
export const MAX_BODY_DEPTH = 64;

/**
 * Builds the API (not listening yet: `await app.listen({ host, port })`).
 *
 * @example
 * ```ts
 * const app = await createAdminApi({ node, projections, logger, authToken: process.env.DATAFLOW_AUTH_TOKEN });
 * await app.listen({ host: '127.0.0.1', port: 8080 });
 * ```
 */
export async function createAdminApi(options: AdminApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true } },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'DataFlow node admin API', version: '1', description: 'Pipelines, projections, health and a live feed of one DataFlow node.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  app.addSchema(errorBodySchema);

  const token = options.authToken === undefined ? undefined : digest(options.authToken);
  app.addHook('onRequest', (request, _reply, done) => {
    if (request.url === '/health' || isLoopback(request.socket.remoteAddress)) return done();
    const header = request.headers.authorization;
    const given = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (token === undefined || given === undefined || !timingSafeEqual(digest(given), token)) {
      return done(new ApiError(401, 'unauthorized', 'A bearer token is required from off loopback (Authorization: Bearer <api.authToken>)'));
    }
    done();
  });
  // JSON bodies: Fastify's own parser answers a __proto__ key, a constructor.prototype key and a syntax error all
  // with 'Body is not valid JSON'; this one says which, and where.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, text, done) => {
    try {
      done(null, parseJsonBody(String(text)));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.setErrorHandler((error, request: FastifyRequest, reply) => {
    const { status, body, internal } = errorAnswer(error);
    if (internal) options.logger.error(`admin API: ${request.method} ${request.routeOptions.url ?? request.url} failed: ${messageOf(error)}`);
    void reply.status(status).type('application/json').send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: 'not-found', message: `No route ${request.method} ${request.url.split('?')[0]?.slice(0, 200)}`, details: [], timestamp: new Date().toISOString() });
  });

  if (options.cluster !== undefined) {
    registerPipelineRouting(app, options.cluster);
    registerCoordinatorRoute(app, () => options.node.localCoordinator());
  }
  registerSystemRoutes(app, options);
  registerPipelineRoutes(app, options.node, () => options.projections?.statusView());
  registerDeadLetterRoutes(app, {
    node: options.node,
    logger: options.logger,
    database: options.deadLetterDatabase ?? (() => (options.node.persistence as { executor?: SqlExecutor }).executor),
  });
  registerFeed(app, options.node, options.feedIntervalMs ?? 1_000, options.remoteStatus);
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, (_request, reply) => reply.send(app.swagger()));
  return app;
}

/** Whether a node listening on `host` can be reached from off loopback. */
export function listensOffLoopback(host: string): boolean {
  return !(host === 'localhost' || isLoopback(host));
}

function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  if (address === '::1' || address === '::ffff:127.0.0.1') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Nesting depth of a parsed JSON value, stopping early past the limit. */
/**
 * A request's JSON body, or a 400 naming what is wrong: not JSON (with the
 * parser's position), nested deeper than `MAX_BODY_DEPTH`, or a key that
 * could reach a prototype (`__proto__`, `constructor.prototype`), at its
 * field. JSON.parse keeps `__proto__` as an own data key, so nothing is
 * touched before the check refuses it.
 */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') throw new ApiError(400, 'bad-request', 'The request body is empty, but its content-type is application/json', [{ field: 'body', message: 'is empty' }]);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new ApiError(400, 'bad-request', `The request body is not valid JSON: ${why}`, [{ field: 'body', message: why }]);
  }
  const issue = checkValueBounds(body, { maxDepth: MAX_BODY_DEPTH, maxBytes: Number.MAX_SAFE_INTEGER, allowProtoKeys: false }, 'The request body') ?? constructorPrototypeIn(body);
  if (issue !== undefined) {
    const field = issue.path === '' ? 'body' : `body.${issue.path}`;
    throw new ApiError(400, 'bad-request', `${field}: ${issue.message}`, [{ field, message: issue.message }]);
  }
  return body;
}

/** The first `constructor` key whose value has a `prototype` key (within the depth bound already checked). */
function constructorPrototypeIn(body: unknown): { path: string; message: string } | undefined {
  const stack: { value: unknown; path: string }[] = [{ value: body, path: '' }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { value, path } = next;
    if (typeof value !== 'object' || value === null) continue;
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      const at = path === '' ? key : `${path}.${key}`;
      if (key === 'constructor' && typeof child === 'object' && child !== null && Object.hasOwn(child, 'prototype')) {
        return { path: `${at}.prototype`, message: 'A key constructor.prototype is not allowed' };
      }
      stack.push({ value: child, path: at });
    }
  }
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
