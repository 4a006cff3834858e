/**
 * `/api/v1/pipelines/{id}/dead-letters`: a pipeline's dead-letter queue when
 * its letters are in a Postgres table the node can read (a `postgres` target:
 * the node's own database without `connectionString`, else the database it
 * names, through a pool opened for the request and closed after it). Peek
 * (pages oldest first, with the count), replay (push letters back through
 * the running pipeline, then delete them) and purge. A pipeline whose letters
 * go to a file or to Kafka, or that has no target, answers 409 saying where
 * they are.
 *
 * A replay ingests the letters as one batch whose id is derived from their
 * ids (`dead-letter-replay.ts`) and deletes them only once the pipeline
 * answered: after a crash in between, replaying the same letters again is
 * answered `duplicate` by the pipeline and only deletes them.
 */
import { isDataflowError, type ConfiguredPipelineState, type PipelineState } from '@dataflow/core';
import { PostgresDeadLetterQueue, type StoredDeadLetter } from '@dataflow/connectors';
import { pgPoolExecutor, type SqlExecutor } from '@dataflow/persistence';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import type { DataflowNode } from '../node/dataflow-node.js';
import type { NodeLogger } from '../node/node-logger.js';
import { PipelineNotFoundError } from '../node/node-errors.js';
import { ApiError } from './api-errors.js';
import { replayPlan, type SkippedLetter } from './dead-letter-replay.js';

/** What the dead-letter routes need. */
export interface DeadLetterRoutesOptions {
  readonly node: DataflowNode;
  readonly logger: NodeLogger;
  /** Where a `postgres` target without `connectionString` writes: the node's database, when it has one. */
  readonly database: () => SqlExecutor | undefined;
}

/** Most letters one page, replay or id list holds. */
export const MAX_DEAD_LETTERS_PER_REQUEST = 500;

const error = (codes: readonly number[]) => Object.fromEntries(codes.map((c) => [c, { $ref: 'ErrorBody#' }]));
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,100}$' } } } as const;

const letterSchema = {
  type: 'object',
  required: ['id', 'stage', 'stageName', 'error', 'attempt', 'payload', 'failedAt'],
  properties: {
    id: { type: 'integer' },
    stage: { type: 'string', enum: ['source', 'transform', 'sink'] },
    stageName: { type: 'string', description: 'transforms[<i>]:<type> for a transform, else the connector type' },
    error: {
      type: 'object',
      required: ['message', 'retriable'],
      properties: { message: { type: 'string' }, tag: { type: 'string' }, retriable: { type: 'boolean' } },
    },
    attempt: { type: 'integer' },
    payload: { description: 'The record (a JSON object), or for a source letter the raw input the source could not parse' },
    batchId: { type: 'string' },
    failedAt: { type: 'string', format: 'date-time' },
  },
} as const;

const pageSchema = {
  type: 'object',
  required: ['id', 'table', 'total', 'letters', 'next'],
  properties: {
    id: { type: 'string' },
    table: { type: 'string', description: 'Where the letters are, e.g. "public"."dead_letters" (of the node\'s database unless the target names one)' },
    total: { type: 'integer', description: "How many letters the pipeline has in all" },
    letters: { type: 'array', items: letterSchema },
    next: { type: ['integer', 'null'], description: 'Pass as `after` for the next page; null on the last page' },
  },
} as const;

const replaySchema = {
  type: 'object',
  required: ['replayed', 'duplicate', 'skipped'],
  properties: {
    replayed: { type: 'integer', description: 'Letters pushed through the pipeline (and deleted)' },
    duplicate: { type: 'boolean', description: 'The pipeline had run this batch before (a replay interrupted before its letters were deleted): not run again, only deleted' },
    batchId: { type: 'string' },
    skipped: {
      type: 'array',
      items: { type: 'object', required: ['id', 'reason'], properties: { id: { type: 'integer' }, reason: { type: 'string' } } },
    },
  },
} as const;

interface OpenedQueue {
  readonly queue: PostgresDeadLetterQueue;
  close(): Promise<void>;
}

/** The pipeline's state, 404 when there is none. */
async function existing(node: DataflowNode, id: string): Promise<ConfiguredPipelineState> {
  const state: PipelineState | undefined = await node.getPipeline(id);
  if (state === undefined || state.status === 'empty') throw new PipelineNotFoundError(id);
  return state;
}

function letterView(letter: StoredDeadLetter): Record<string, unknown> {
  return {
    id: letter.id,
    stage: letter.stage,
    stageName: letter.stageName,
    error: letter.error,
    attempt: letter.attempt,
    payload: letter.payload,
    ...(letter.batchId === undefined ? {} : { batchId: letter.batchId }),
    failedAt: new Date(letter.failedAt).toISOString(),
  };
}

/** `1,2,3` → [1, 2, 3]; the query schema has checked the shape. */
function idList(text: string): number[] {
  return [...new Set(text.split(',').map(Number))];
}

export function registerDeadLetterRoutes(app: FastifyInstance, options: DeadLetterRoutesOptions): void {
  const { node } = options;

  /** The queue of `state`'s target, or a 409 that says where its letters are. */
  const openQueue = (state: ConfiguredPipelineState): OpenedQueue => {
    const id = state.pipelineId;
    const target = state.definition.deadLetter as Readonly<Record<string, unknown>> | undefined;
    const conflict = (message: string) => new ApiError(409, 'conflict', message, { deadLetterType: typeof target?.['type'] === 'string' ? target['type'] : null });
    if (target === undefined) {
      throw conflict(
        `Pipeline ${id} has no dead-letter target: a record a stage refuses fails its batch. Give it deadLetter: { type: 'postgres' } (PUT /api/v1/pipelines/${id}) to keep such records in the node's database`,
      );
    }
    switch (target['type']) {
      case 'postgres':
        break;
      case 'file':
        throw conflict(`Pipeline ${id} writes its dead letters to the file ${JSON.stringify(target['path'])} (one JSON line each), which the node does not read back: look there`);
      case 'kafka':
        throw conflict(`Pipeline ${id} sends its dead letters to the Kafka topic ${JSON.stringify(target['topic'] ?? 'dead-letter-queue')}, which the node does not read back: consume them there`);
      default:
        throw conflict(`Pipeline ${id} sends its dead letters to a ${String(target['type'])} target, which the node does not read back`);
    }
    const schema = typeof target['schema'] === 'string' ? target['schema'] : 'public';
    const connectionString = target['connectionString'];
    if (typeof connectionString === 'string') {
      // The pipeline's own database: a small pool for this request only (its URL never appears in an answer).
      const pool = new pg.Pool({ connectionString, max: 1, connectionTimeoutMillis: 5_000 });
      pool.on('error', (cause) => options.logger.warn(`an idle connection to the dead-letter database of pipeline ${id} failed: ${cause.message}`, { pipeline_id: id }));
      const db = pgPoolExecutor(pool, { ownsPool: true, lockTimeoutMs: 0 });
      return { queue: new PostgresDeadLetterQueue(db, schema), close: () => db.close() };
    }
    const db = options.database();
    if (db === undefined) {
      throw conflict(`Pipeline ${id} has a postgres dead-letter target without connectionString, but this node has no SQL database (embedded journal, postgres journal or postgres.url) to keep them in`);
    }
    return { queue: new PostgresDeadLetterQueue(db, schema), close: () => Promise.resolve() };
  };

  const withQueue = async <T>(state: ConfiguredPipelineState, work: (queue: PostgresDeadLetterQueue) => Promise<T>): Promise<T> => {
    const opened = openQueue(state);
    try {
      return await work(opened.queue);
    } finally {
      await opened.close().catch((cause: unknown) =>
        options.logger.warn(`the pool of pipeline ${state.pipelineId}'s dead-letter database did not close: ${cause instanceof Error ? cause.message : String(cause)}`),
      );
    }
  };

  app.get<{ Params: { id: string }; Querystring: { after: number; limit: number } }>(
    '/api/v1/pipelines/:id/dead-letters',
    {
      schema: {
        tags: ['dead letters'],
        summary: "A page of the pipeline's dead letters, oldest first, with the reason each failed and the total count (409 when they are not in a Postgres table the node reads)",
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            after: { type: 'integer', minimum: 0, default: 0, description: 'Letters with a larger id (the `next` of the previous page)' },
            limit: { type: 'integer', minimum: 1, maximum: MAX_DEAD_LETTERS_PER_REQUEST, default: 50 },
          },
        },
        response: { 200: pageSchema, ...error([400, 404, 409, 503]) },
      },
    },
    async (request) => {
      const state = await existing(node, request.params.id);
      return withQueue(state, async (queue) => {
        const page = await queue.page(state.pipelineId, { afterId: request.query.after, limit: request.query.limit });
        return { id: state.pipelineId, table: queue.table, total: page.total, letters: page.letters.map(letterView), next: page.next ?? null };
      });
    },
  );

  app.post<{ Params: { id: string }; Body: { ids?: number[]; limit?: number; rerunTransforms?: boolean } }>(
    '/api/v1/pipelines/:id/dead-letters/replay',
    {
      schema: {
        tags: ['dead letters'],
        summary:
          'Push dead letters (by id, or the oldest `limit`, default 100) back through the running pipeline as one batch and delete them once it is checkpointed; letters that cannot be replayed stay, listed with the reason (409 unless running)',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ids: { type: 'array', minItems: 1, maxItems: MAX_DEAD_LETTERS_PER_REQUEST, uniqueItems: true, items: { type: 'integer', minimum: 1 } },
            limit: { type: 'integer', minimum: 1, maximum: MAX_DEAD_LETTERS_PER_REQUEST },
            rerunTransforms: {
              type: 'boolean',
              default: false,
              description: 'Also replay letters whose record already went through some transforms (a later transform\'s, or the sink\'s behind transforms): they run through every transform again',
            },
          },
        },
        response: { 200: replaySchema, ...error([400, 404, 409, 413, 503]) },
      },
    },
    async (request) => {
      const { ids, limit, rerunTransforms } = request.body ?? {};
      if (ids !== undefined && limit !== undefined) {
        throw new ApiError(400, 'bad-request', 'Give ids or limit, not both', [{ field: 'body.limit', message: 'cannot be given with ids' }]);
      }
      const state = await existing(node, request.params.id);
      const id = state.pipelineId;
      return withQueue(state, async (queue) => {
        if (state.status !== 'running') {
          throw new ApiError(409, 'conflict', `Pipeline ${id} is ${state.status}: a replay pushes its letters through the running pipeline; start it first`, {
            status: state.status,
          });
        }
        const letters = ids === undefined ? (await queue.page(id, { afterId: 0, limit: limit ?? 100 })).letters : await queue.byIds(id, ids);
        const found = new Set(letters.map((l) => l.id));
        const missing: SkippedLetter[] = (ids ?? []).filter((i) => !found.has(i)).map((i) => ({ id: i, reason: `pipeline ${id} has no dead letter with this id` }));
        const plan = replayPlan(letters, state.definition, { rerunTransforms: rerunTransforms === true });
        const skipped = [...plan.skipped, ...missing].sort((a, b) => a.id - b.id);
        if (plan.batchId === undefined) return { replayed: 0, duplicate: false, skipped };
        let duplicate: boolean;
        try {
          ({ duplicate } = await node.ingest(id, plan.batchId, plan.records));
        } catch (cause) {
          if (isDataflowError(cause, 'pipeline/invalid-record')) {
            throw new ApiError(409, 'conflict', `Pipeline ${id} refused the letters' records: ${cause.message}`, { letterIds: plan.letters.map((l) => l.id) });
          }
          throw cause;
        }
        // Only now: the batch is checkpointed (or was before), so deleting cannot lose a letter.
        await queue.delete(id, plan.letters.map((l) => l.id));
        return { replayed: plan.letters.length, duplicate, batchId: plan.batchId, skipped };
      });
    },
  );

  app.delete<{ Params: { id: string }; Querystring: { ids?: string; before?: string } }>(
    '/api/v1/pipelines/:id/dead-letters',
    {
      schema: {
        tags: ['dead letters'],
        summary: "Delete the pipeline's dead letters: all, those with the given ids, or those that failed before a time",
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ids: { type: 'string', pattern: '^[1-9][0-9]{0,15}(,[1-9][0-9]{0,15}){0,499}$', description: 'Comma-separated letter ids' },
            before: { type: 'string', format: 'date-time', description: 'Only letters that failed before this time' },
          },
        },
        response: { 200: { type: 'object', required: ['purged'], properties: { purged: { type: 'integer' } } }, ...error([400, 404, 409, 503]) },
      },
    },
    async (request) => {
      const { ids, before } = request.query;
      if (ids !== undefined && before !== undefined) {
        throw new ApiError(400, 'bad-request', 'Give ids or before, not both', [{ field: 'querystring.before', message: 'cannot be given with ids' }]);
      }
      const state = await existing(node, request.params.id);
      return withQueue(state, async (queue) => ({
        purged:
          ids !== undefined
            ? await queue.delete(state.pipelineId, idList(ids))
            : await queue.purge(state.pipelineId, before === undefined ? {} : { failedBefore: Date.parse(before) }),
      }));
    },
  );
}
