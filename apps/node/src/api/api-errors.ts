/**
 * How the admin API answers a failure: always `{ error, message, details,
 * timestamp }`, with the status the cause calls for. Validation problems are
 * 400 with one entry per field; an unknown pipeline or projection 404; a
 * lifecycle command the pipeline's state refuses (start a running one) or a
 * rebuild while another node's rebuild of the read model is alive 409;
 * a body over the limit 413; a node that is stopping or degraded 503. Any
 * other error is 500 with a generic message (its text may hold what a client
 * must not see; it goes to the log instead).
 */
import { DataflowError, isDataflowError } from '@dataflow/core';

/** One problem of a request, by field (`definition.source.type`, `query.limit`). */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/** The body of every error answer. */
export interface ErrorBody {
  /** A stable, machine-readable code: `bad-request`, `not-found`, `conflict`, `payload-too-large`, `unavailable`, `unauthorized`, `internal`. */
  readonly error: string;
  readonly message: string;
  readonly details: readonly FieldProblem[] | Readonly<Record<string, unknown>>;
  readonly timestamp: string;
}

/** An error the API answers with `status` as it is. */
export class ApiError extends DataflowError<'api/error'> {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: ErrorBody['details'] = [],
  ) {
    super('api/error', message, { retriable: status === 503 });
  }
}

/** The JSON schema of `ErrorBody`, for the OpenAPI document. */
export const errorBodySchema = {
  $id: 'ErrorBody',
  type: 'object',
  required: ['error', 'message', 'details', 'timestamp'],
  properties: {
    error: { type: 'string' },
    message: { type: 'string' },
    details: {},
    timestamp: { type: 'string', format: 'date-time' },
  },
} as const;

interface FastifyLikeError {
  readonly statusCode?: number;
  readonly code?: string;
  readonly validation?: readonly { readonly instancePath?: string; readonly message?: string; readonly params?: Record<string, unknown> }[];
  readonly validationContext?: string;
  readonly message?: string;
}

/** The status and body for `error`; `internal` tells the caller to log it. */
export function errorAnswer(error: unknown, now: () => Date = () => new Date()): { status: number; body: ErrorBody; internal: boolean } {
  const at = now().toISOString();
  const answer = (status: number, code: string, message: string, details: ErrorBody['details'] = [], internal = false) => ({
    status,
    body: { error: code, message, details, timestamp: at },
    internal,
  });
  if (error instanceof ApiError) return answer(error.status, error.code, error.message, error.details);
  if (isDataflowError(error)) {
    switch (error.tag) {
      case 'pipeline/invalid-definition': {
        const issues = (error as unknown as { issues: readonly { path: string; message: string }[] }).issues;
        return answer(400, 'bad-request', error.message, issues.map((i) => ({ field: i.path === '' ? 'definition' : `definition.${i.path}`, message: i.message })));
      }
      case 'node/pipeline-not-found':
      case 'node/projection-not-found':
        return answer(404, 'not-found', error.message);
      case 'pipeline/command-rejected':
      case 'coordinator/command-rejected':
      case 'projection/rebuild-in-progress':
        return answer(409, 'conflict', error.message);
      case 'node/unavailable':
      case 'pipeline/unavailable':
        return answer(503, 'unavailable', error.message);
      default:
        if (error.retriable) return answer(503, 'unavailable', error.message);
    }
  }
  const fastify = error as FastifyLikeError;
  if (typeof fastify === 'object' && fastify !== null) {
    if (fastify.validation !== undefined) {
      const where = fastify.validationContext ?? 'body';
      const details = fastify.validation.map((v) => {
        const missing = typeof v.params?.['missingProperty'] === 'string' ? `/${v.params['missingProperty']}` : '';
        const extra = typeof v.params?.['additionalProperty'] === 'string' ? `/${v.params['additionalProperty']}` : '';
        const path = `${v.instancePath ?? ''}${missing}${extra}`.split('/').filter((p) => p !== '');
        return { field: [where, ...path].join('.'), message: v.message ?? 'is invalid' };
      });
      return answer(400, 'bad-request', `The request is invalid: ${details.map((d) => `${d.field} ${d.message}`).join('; ')}`, details);
    }
    if (fastify.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return answer(413, 'payload-too-large', 'The request body is larger than the limit (api.bodyLimitBytes)');
    if (fastify.statusCode !== undefined && fastify.statusCode >= 400 && fastify.statusCode < 500) {
      return answer(fastify.statusCode, fastify.statusCode === 404 ? 'not-found' : 'bad-request', fastify.message ?? 'Bad request');
    }
  }
  return answer(500, 'internal', 'The node could not answer this request; its log has the cause', [], true);
}
