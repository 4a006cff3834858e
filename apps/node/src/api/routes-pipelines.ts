/**
 * `/api/v1/pipelines`: list (filter by status), create (201 + id), get,
 * update (PUT, while configured or stopped), delete (while configured,
 * stopped or failed), lifecycle commands (start, stop, pause, resume, reset,
 * restart; 409 when the pipeline's state refuses one), status, metrics,
 * offsets (read; DELETE resets them, as Kafka Connect's `DELETE
 * /connectors/{name}/offsets`, only while not running) and a page of the
 * pipeline's journal events.
 *
 * When the node keeps read models (`readModel`), the list merges the
 * coordinator's registry (which pipelines there are and their status:
 * authoritative and immediate) with `pipeline_status` (their counts, summed
 * over a parallel pipeline's tasks and complete from any node); each item
 * says where its counts come from (`countsFrom`) and the answer carries the
 * view's lag. When the coordinator cannot answer (it moves between nodes)
 * the list comes from the read model alone (`registry.available: false`)
 * instead of a 503. `GET /{id}` adds the view's row as `readModel`.
 */
import { isDataflowError, pipelineTaskIds, pipelineTaskOf, type ConfiguredPipelineState, type PipelineState, type RegisteredPipeline } from '@dataflow/core';
import type { PipelineStatusRow, PipelineStatusView, PipelineStatusViewLag } from '@dataflow/projections';
import type { FastifyInstance } from 'fastify';
import type { DataflowNode } from '../node/dataflow-node.js';
import { PipelineExistsError, PipelineNotFoundError } from '../node/node-errors.js';
import { withTasks } from './pipeline-tasks-view.js';

const STATUSES = ['configured', 'running', 'paused', 'stopped', 'failed'] as const;
const anyObject = { type: 'object', additionalProperties: true } as const;
const error = (codes: readonly number[]) => Object.fromEntries(codes.map((c) => [c, { $ref: 'ErrorBody#' }]));
const createIdSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,100}$' } as const;
/** A pipeline id, or the id of one task of a parallel pipeline (`<id>.<k>`, ADR 0013; used by the nodes of a cluster). */
const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,100}([.][1-9][0-9]?)?$' } } } as const;

const pipelineSchema = {
  type: 'object',
  additionalProperties: true,
  required: ['id', 'status'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    status: { type: 'string', enum: STATUSES },
    reason: { type: 'string' },
    error: anyObject,
    definition: anyObject,
    checkpoint: { type: ['object', 'null'], additionalProperties: true },
    metrics: anyObject,
    createdAt: { type: 'string' },
    updatedAt: { type: 'string' },
    readModel: {
      type: ['object', 'null'],
      description: "The pipeline's row of the pipeline_status read model (counts summed over its tasks), null when the view has none yet; only on a node that keeps read models",
      additionalProperties: true,
      properties: { status: { type: 'string' }, totalRecords: { type: 'integer' }, totalBatches: { type: 'integer' }, totalFailures: { type: 'integer' }, updatedAt: { type: ['string', 'null'] } },
    },
  },
} as const;

const listItemSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    id: { type: 'string' },
    pipelineId: { type: 'string' },
    name: { type: 'string' },
    status: { type: 'string', enum: STATUSES },
    sourceType: { type: 'string' },
    sinkType: { type: 'string' },
    parallelism: { type: 'integer' },
    totalRecords: { type: 'integer' },
    failedRecords: { type: 'integer' },
    totalBatches: { type: 'integer', description: 'Only with countsFrom read-model' },
    registeredAt: { type: 'string' },
    updatedAt: { type: 'string' },
    countsFrom: { type: 'string', enum: ['read-model', 'registry'], description: "Where totalRecords, failedRecords and totalBatches come from; only on a node that keeps read models" },
  },
} as const;

const listSchema = {
  type: 'object',
  properties: {
    pipelines: { type: 'array', items: listItemSchema },
    registry: {
      type: 'object',
      description: "Whether the coordinator's registry answered; when not, the list comes from the read model alone. Only on a node that keeps read models",
      properties: { available: { type: 'boolean' }, error: { type: 'string' } },
    },
    readModel: {
      type: 'object',
      description: 'How far pipeline_status is behind the journal (lag: events and seconds, or unknown with a reason); or available false with the error when it could not be read. Only on a node that keeps read models',
      properties: {
        available: { type: 'boolean' },
        error: { type: 'string' },
        lag: { type: 'object', additionalProperties: true },
        lastEventAt: { type: ['string', 'null'] },
        eventsApplied: { type: 'integer' },
      },
    },
  },
} as const;

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (date: Date | null): string | null => (date === null ? null : date.toISOString());

/** The registry's item as the list has always shown it. */
const registryItem = (p: RegisteredPipeline): Record<string, unknown> => ({ id: p.pipelineId, ...p, registeredAt: iso(p.registeredAt), updatedAt: iso(p.updatedAt) });

/** The read model's lag as the list shows it. */
const lagView = (lag: PipelineStatusViewLag): Record<string, unknown> => ({
  available: true,
  lag: lag.lag,
  lastEventAt: lag.lastEventAt === undefined ? null : iso(lag.lastEventAt),
  eventsApplied: lag.eventsApplied,
});

/** The coordinator cannot answer now (it is moving between nodes, its node is unreachable or stopping): retriable, a 503 otherwise. */
const registryUnavailable = (error: unknown): boolean => isDataflowError(error) && error.retriable;

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * The list on a node that keeps read models: the registry's pipelines with
 * the view's counts where it has the pipeline; the view alone when the
 * registry cannot answer.
 */
async function mergedList(node: DataflowNode, view: PipelineStatusView, status: (typeof STATUSES)[number] | undefined): Promise<Record<string, unknown>> {
  let registered: readonly RegisteredPipeline[];
  try {
    registered = await node.listPipelines(status);
  } catch (error) {
    if (!registryUnavailable(error)) throw error;
    // The read model alone: if it cannot be read either, the registry's error answers (503).
    const [rows, lag] = await Promise.all([view.list(status === undefined ? {} : { status }), view.lag()]).catch(() => Promise.reject(error as Error));
    return { pipelines: rows.map(readModelItem), registry: { available: false, error: messageOf(error) }, readModel: lagView(lag) };
  }
  let rows: Map<string, PipelineStatusRow>;
  let readModel: Record<string, unknown>;
  try {
    const [list, lag] = await Promise.all([view.list(), view.lag()]);
    rows = new Map(list.map((row) => [row.id, row]));
    readModel = lagView(lag);
  } catch (error) {
    rows = new Map();
    readModel = { available: false, error: messageOf(error) };
  }
  const pipelines = registered.map((p) => {
    const row = rows.get(p.pipelineId);
    if (row === undefined) return { ...registryItem(p), countsFrom: 'registry' };
    return { ...registryItem(p), totalRecords: row.totalRecords, failedRecords: row.totalFailures, totalBatches: row.totalBatches, countsFrom: 'read-model' };
  });
  return { pipelines, registry: { available: true }, readModel };
}

/** A pipeline of the read model in the list's shape (no registry: no parallelism; registeredAt is its creation). */
function readModelItem(row: PipelineStatusRow): Record<string, unknown> {
  return {
    id: row.id,
    pipelineId: row.id,
    ...(row.name === null ? {} : { name: row.name }),
    status: row.status,
    ...(row.sourceType === null ? {} : { sourceType: row.sourceType }),
    ...(row.sinkType === null ? {} : { sinkType: row.sinkType }),
    totalRecords: row.totalRecords,
    failedRecords: row.totalFailures,
    totalBatches: row.totalBatches,
    ...(row.createdAt === null ? {} : { registeredAt: row.createdAt.toISOString() }),
    ...(row.updatedAt === null ? {} : { updatedAt: row.updatedAt.toISOString() }),
    countsFrom: 'read-model',
  };
}

/** The view's row of a pipeline for `GET /{id}`; null when it has none yet. */
async function readModelOf(view: PipelineStatusView, pipelineId: string): Promise<Record<string, unknown> | null> {
  const row = await view.get(pipelineId);
  return row === undefined
    ? null
    : { status: row.status, totalRecords: row.totalRecords, totalBatches: row.totalBatches, totalFailures: row.totalFailures, updatedAt: isoOrNull(row.updatedAt) };
}

/** The API's view of a pipeline. */
export function pipelineView(state: ConfiguredPipelineState): Record<string, unknown> {
  return {
    id: state.pipelineId,
    name: state.definition.name,
    status: state.status,
    ...(state.status === 'paused' || state.status === 'stopped' ? { reason: state.reason } : {}),
    ...(state.status === 'failed' ? { error: state.error } : {}),
    definition: state.definition,
    checkpoint: state.checkpoint,
    metrics: state.metrics,
    createdAt: new Date(state.createdAt).toISOString(),
    updatedAt: new Date(state.updatedAt).toISOString(),
  };
}

/**
 * The view of a pipeline after `state` (task 0's): with parallelism > 1 its
 * tasks' statuses combined, counts summed, and `tasks` (ADR 0013). A task id
 * shows the task alone.
 */
/**
 * Creates the pipeline, or finds the one a lost answer created: with an id
 * given, an existing pipeline of the same definition is the outcome of an
 * earlier try of this very request (its answer lost to a timeout or a 503),
 * not a conflict.
 */
async function createdOrSame(node: DataflowNode, definition: unknown, id: string | undefined): Promise<{ created: boolean; state: ConfiguredPipelineState }> {
  try {
    return { created: true, state: await node.createPipeline(definition, id === undefined ? {} : { pipelineId: id }) };
  } catch (error) {
    if (error instanceof PipelineExistsError && error.identical) return { created: false, state: error.state };
    throw error;
  }
}

/** `source` of a status: null while the source answers, else since when (ISO) and why; for a parallel pipeline, its first task here that has a problem. */
function sourceOf(node: DataflowNode, id: string): Record<string, unknown> | null {
  // A task id names itself; a pipeline id its tasks running here (task 0, the pipeline's own id, among them).
  const taskIds = pipelineTaskOf(id).index > 0 ? [id] : node.hostedPipelines().filter((taskId) => pipelineTaskOf(taskId).pipelineId === id);
  const problem = taskIds.map((taskId) => node.sources.of(taskId)).find((p) => p !== undefined);
  if (problem === undefined) return null;
  return { state: 'unreachable', task: problem.pipelineId, type: problem.sourceType, since: new Date(problem.since).toISOString(), cause: problem.cause, failedSamples: problem.failures };
}

async function viewOf(node: DataflowNode, id: string, state: ConfiguredPipelineState): Promise<Record<string, unknown>> {
  const view = pipelineView(state);
  if ((state.definition.parallelism ?? 1) <= 1 || pipelineTaskOf(id).index > 0) return view;
  const tasks = await node.pipelineTasks(id);
  if (tasks === undefined) throw new PipelineNotFoundError(id);
  return withTasks(view, pipelineTaskIds(id, state.definition.parallelism), tasks);
}

async function existing(node: DataflowNode, id: string): Promise<ConfiguredPipelineState> {
  const state: PipelineState | undefined = await node.getPipeline(id);
  if (state === undefined || state.status === 'empty') throw new PipelineNotFoundError(id);
  return state;
}

/**
 * @param readModel The `pipeline_status` view when the node keeps read models (undefined: the list is the registry's, as without them).
 */
export function registerPipelineRoutes(app: FastifyInstance, node: DataflowNode, readModel: () => PipelineStatusView | undefined = () => undefined): void {
  app.get<{ Querystring: { status?: (typeof STATUSES)[number] } }>(
    '/api/v1/pipelines',
    {
      schema: {
        tags: ['pipelines'],
        summary:
          "The pipelines, optionally only those in one status: the coordinator's registry (which pipelines, their status); on a node that keeps read models their counts come from pipeline_status where it has them (summed over a parallel pipeline's tasks; countsFrom says which), with the view's lag, and the read model alone answers while the coordinator cannot (registry.available false)",
        querystring: { type: 'object', additionalProperties: false, properties: { status: { type: 'string', enum: STATUSES } } },
        response: { 200: listSchema, ...error([400, 503]) },
      },
    },
    async (request) => {
      const view = readModel();
      if (view !== undefined) return mergedList(node, view, request.query.status);
      return { pipelines: (await node.listPipelines(request.query.status)).map(registryItem) };
    },
  );

  app.post<{ Body: { id?: string; definition: Record<string, unknown>; start?: boolean } }>(
    '/api/v1/pipelines',
    {
      schema: {
        tags: ['pipelines'],
        summary:
          'Create a pipeline (validated field by field; see components.schemas.PipelineDefinition), optionally started at once. ' +
          'Safe to retry with an id: when a pipeline with that id and the same definition exists, the answer is 200 with it (started if `start` and still configured); another definition is a 409',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['definition'],
          properties: { id: createIdSchema, definition: anyObject, start: { type: 'boolean', default: false } },
        },
        response: { 201: pipelineSchema, 200: pipelineSchema, ...error([400, 409, 413, 503]) },
      },
    },
    async (request, reply) => {
      const { id, definition, start } = request.body;
      const outcome = await createdOrSame(node, definition, id);
      // A retry finds its pipeline running (or run to its end) already: started only while still configured.
      const state = start === true && (outcome.created || outcome.state.status === 'configured') ? await node.start(outcome.state.pipelineId) : outcome.state;
      return reply
        .status(outcome.created ? 201 : 200)
        .header('location', `/api/v1/pipelines/${outcome.state.pipelineId}`)
        .send(await viewOf(node, outcome.state.pipelineId, state as ConfiguredPipelineState));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/pipelines/:id',
    {
      schema: {
        tags: ['pipelines'],
        summary: "A pipeline: definition, status, checkpoint and metrics (live, from the node that runs it); on a node that keeps read models also its row of pipeline_status as readModel",
        params: idParams,
        response: { 200: pipelineSchema, ...error([400, 404, 503]) },
      },
    },
    async (request) => {
      const view = await viewOf(node, request.params.id, await existing(node, request.params.id));
      const statusView = readModel();
      // A task id (`orders.2`) has no row of its own: its counts are in its pipeline's.
      if (statusView === undefined || pipelineTaskOf(request.params.id).index > 0) return view;
      // The live view answers on its own when the read model cannot be read.
      const row = await readModelOf(statusView, request.params.id).then(
        (found) => ({ readModel: found }),
        () => ({}),
      );
      return { ...view, ...row };
    },
  );

  app.put<{ Params: { id: string }; Body: { definition: Record<string, unknown> } }>(
    '/api/v1/pipelines/:id',
    {
      schema: {
        tags: ['pipelines'],
        summary: 'Replace the definition of a configured or stopped pipeline (validated field by field; the name cannot change; 409 while running, paused or failed)',
        params: idParams,
        body: { type: 'object', additionalProperties: false, required: ['definition'], properties: { definition: anyObject } },
        response: { 200: pipelineSchema, ...error([400, 404, 409, 413, 503]) },
      },
    },
    async (request) => viewOf(node, request.params.id, await node.updatePipeline(request.params.id, request.body.definition)),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/pipelines/:id',
    {
      schema: {
        tags: ['pipelines'],
        summary: 'Delete a configured, stopped or failed pipeline (409 while running or paused: stop it first); its journal keeps the history',
        params: idParams,
        response: { 204: { type: 'null' }, ...error([400, 404, 409, 503]) },
      },
    },
    async (request, reply) => {
      await existing(node, request.params.id);
      await node.deletePipeline(request.params.id);
      return reply.status(204).send();
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/pipelines/:id/offsets',
    {
      schema: {
        tags: ['pipelines'],
        summary:
          "Forget the source offset: the next start opens the source as a new pipeline's would (a file from its beginning, Kafka at the group's committed offsets); 409 unless configured, stopped or failed",
        params: idParams,
        response: { 200: anyObject, ...error([400, 404, 409, 503]) },
      },
    },
    async (request) => {
      await existing(node, request.params.id);
      const state = await node.resetOffsets(request.params.id);
      return { id: request.params.id, message: "the source offset was reset: the next start opens the source as a new pipeline's would", checkpoint: state.checkpoint };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/pipelines/:id/status',
    {
      schema: {
        tags: ['pipelines'],
        summary: 'Status, reason or error, the batch being retried, and a source that does not answer (`source`: since when, why; null while it answers)',
        params: idParams,
        response: { 200: { type: 'object', additionalProperties: true, properties: { id: { type: 'string' }, status: { type: 'string' } } }, ...error([400, 404, 503]) },
      },
    },
    async (request) => {
      const state = await existing(node, request.params.id);
      const view = await viewOf(node, request.params.id, state);
      return {
        id: view['id'],
        status: view['status'],
        reason: view['reason'] ?? null,
        error: view['error'] ?? null,
        retry: state.retry,
        // Its source does not answer (a Kafka source whose brokers are down): it runs, and reads on when the source is back.
        source: sourceOf(node, request.params.id),
        updatedAt: view['updatedAt'],
        ...(view['tasks'] === undefined ? {} : { tasks: view['tasks'] }),
      };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/pipelines/:id/metrics',
    { schema: { tags: ['pipelines'], summary: 'Records processed, failed and dead-lettered, batches, average batch time, throughput', params: idParams, response: { 200: anyObject, ...error([400, 404, 503]) } } },
    async (request) => {
      const view = await viewOf(node, request.params.id, await existing(node, request.params.id));
      const tasks = view['tasks'] as readonly Record<string, unknown>[] | undefined;
      return { id: request.params.id, ...(view['metrics'] as object), ...(tasks === undefined ? {} : { tasks: tasks.map((t) => ({ id: t['id'], ...(t['metrics'] as object) })) }) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/pipelines/:id/offsets',
    { schema: { tags: ['pipelines'], summary: "The last checkpoint: the source offset a restart resumes after", params: idParams, response: { 200: anyObject, ...error([400, 404, 503]) } } },
    async (request) => ({ id: request.params.id, checkpoint: (await existing(node, request.params.id)).checkpoint }),
  );

  app.get<{ Params: { id: string }; Querystring: { after: number; limit: number } }>(
    '/api/v1/pipelines/:id/events',
    {
      schema: {
        tags: ['pipelines'],
        summary: "A page of the pipeline's journal events after a sequence number (events covered by a snapshot may have been deleted)",
        params: idParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { after: { type: 'integer', minimum: 0, default: 0 }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
        },
        response: { 200: { type: 'object', properties: { events: { type: 'array', items: anyObject }, next: { type: ['integer', 'null'] } } }, ...error([400, 404, 503]) },
      },
    },
    async (request) => {
      await existing(node, request.params.id);
      const { after, limit } = request.query;
      const events: Record<string, unknown>[] = [];
      for await (const envelope of node.persistence.queries.eventsByPersistenceId(`pipeline-${request.params.id}`, after + 1)) {
        events.push({ sequenceNr: envelope.sequenceNr, eventType: envelope.eventType, timestamp: new Date(envelope.timestamp).toISOString(), writerId: envelope.writerId, payload: envelope.payload });
        if (events.length > limit) break;
      }
      const more = events.length > limit;
      const page = events.slice(0, limit);
      return { events: page, next: more ? (page.at(-1)?.['sequenceNr'] as number) : null };
    },
  );

  const lifecycle = {
    start: (id: string) => node.start(id),
    stop: (id: string) => node.stop(id, 'stopped through the admin API'),
    pause: (id: string) => node.pause(id, 'paused through the admin API'),
    resume: (id: string) => node.resume(id),
    reset: (id: string) => node.reset(id),
    restart: async (id: string) => {
      const state = await existing(node, id);
      // A pipeline with tasks: what any of them needs (the commands fan out and leave tasks already there alone).
      const statuses = ((await node.pipelineTasks(id)) ?? [state]).map((t) => t.status);
      if (statuses.some((s) => s === 'running' || s === 'paused')) await node.stop(id, 'restarted through the admin API');
      if (statuses.some((s) => s === 'failed')) await node.reset(id);
      return node.start(id);
    },
  } as const;
  for (const [action, run] of Object.entries(lifecycle)) {
    app.post<{ Params: { id: string } }>(
      `/api/v1/pipelines/:id/${action}`,
      {
        schema: {
          tags: ['pipelines'],
          summary: `${action[0]?.toUpperCase()}${action.slice(1)} the pipeline (409 when its status does not allow it)`,
          params: idParams,
          response: { 200: pipelineSchema, ...error([400, 404, 409, 503]) },
        },
      },
      async (request) => {
        await existing(node, request.params.id);
        return viewOf(node, request.params.id, (await run(request.params.id)) as ConfiguredPipelineState);
      },
    );
  }
}
