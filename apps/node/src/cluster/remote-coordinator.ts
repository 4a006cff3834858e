/**
 * The coordinator across nodes. It is a cluster singleton: exactly one node
 * runs the coordinator entity (the single writer of its journal); every other
 * node spawns a local forwarding actor in its place, so the node's code asks
 * "the coordinator" the same way wherever it runs. The forwarder sends each
 * command (without its reply ref) as JSON to the singleton's internal route
 * `POST /internal/v1/coordinator`, and tells the answer to the reply ref:
 * the coordinator's value, its typed refusal (same tag, so the API maps it to
 * the same status), or a retriable `CoordinatorUnreachableError` when no node
 * holds the singleton yet or the holder cannot be reached.
 *
 * nact has no remoting: this is the one place where actor messages cross a
 * process boundary, and they are plain data by construction (the coordinator's
 * commands and replies are JSON values; errors travel as tag, message and
 * retriable).
 */
import {
  ask,
  DataflowError,
  StatusReply,
  type ActorRef,
  type ActorSystem,
  type CoordinatorCommand,
} from '@dataflow/core';
import type { FastifyInstance } from 'fastify';

/** The coordinator singleton cannot be reached now (no holder yet, or it does not answer). Retriable. */
export class CoordinatorUnreachableError extends DataflowError<'node/unavailable'> {
  constructor(reason: string, cause?: unknown) {
    super('node/unavailable', `The node is unavailable: the cluster's coordinator cannot be reached (${reason})`, { retriable: true, ...(cause === undefined ? {} : { cause }) });
  }
}

/** An error the coordinator answered with on another node, rebuilt with its tag, message and retriable flag. */
export class RemoteCoordinatorError extends DataflowError {
  constructor(tag: string, message: string, retriable: boolean) {
    super(tag, message, { retriable });
  }
}

/** The wire form of a coordinator reply. */
type WireReply = { readonly status: 'success'; readonly value: unknown } | { readonly status: 'error'; readonly error: { readonly tag: string; readonly message: string; readonly retriable: boolean } };

const id = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,100}$' } as const;
const text = { type: 'string', minLength: 1, maxLength: 200 } as const;
const count = { type: 'integer', minimum: 0 } as const;
const status = { type: 'string', enum: ['configured', 'running', 'paused', 'stopped', 'failed'] } as const;
const command = (type: string, properties: Record<string, unknown> = {}, required: string[] = []) => ({
  type: 'object',
  additionalProperties: false,
  required: ['type', ...required],
  properties: { type: { const: type }, ...properties },
});

/** The forwarded commands, field by field: the coordinator's journal never sees a value of the wrong shape. */
const commandSchema = {
  oneOf: [
    command('register', { pipelineId: id, name: text, sourceType: text, sinkType: text, parallelism: { type: 'integer', minimum: 1, maximum: 64 } }, ['pipelineId', 'name', 'sourceType', 'sinkType']),
    command('unregister', { pipelineId: id }, ['pipelineId']),
    command('update-status', { pipelineId: id, status, totalRecords: count, failedRecords: count }, ['pipelineId', 'status', 'totalRecords', 'failedRecords']),
    command('report-resources', { nodeId: text, cpuPercent: { type: 'number', minimum: 0 }, memoryMb: { type: 'number', minimum: 0 } }, ['nodeId', 'cpuPercent', 'memoryMb']),
    command('get-system-status'),
    command('get-pipeline', { pipelineId: id }, ['pipelineId']),
    command('list-pipelines', { status }),
    command('check-resources'),
  ],
} as const;

export interface RemoteCoordinatorOptions {
  /** The admin URL of the node holding the coordinator singleton now, or undefined when none does. */
  readonly holderUrl: () => string | undefined;
  /** Sent as a bearer token (the cluster's nodes share the API token). */
  readonly authToken?: string;
  /** Per request (default 10 000 ms). */
  readonly timeoutMs?: number;
}

/**
 * Spawns the forwarding actor (`/user/coordinator-forwarder`).
 *
 * @example
 * ```ts
 * const coordinator = spawnRemoteCoordinator(system, { holderUrl: () => membership.urlOf(singleton.holder()) });
 * const pipelines = await askWithStatus(coordinator, (replyTo) => ({ type: 'list-pipelines', replyTo }), { timeoutMs: 10_000 });
 * ```
 */
export function spawnRemoteCoordinator(system: ActorSystem, options: RemoteCoordinatorOptions): ActorRef<CoordinatorCommand> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const forward = async (command: CoordinatorCommand): Promise<StatusReply<unknown>> => {
    const url = options.holderUrl();
    if (url === undefined) return StatusReply.error(new CoordinatorUnreachableError('no node holds it yet'));
    const { replyTo: _replyTo, ...body } = command;
    let response: Response;
    try {
      response = await fetch(`${url}/internal/v1/coordinator`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(options.authToken === undefined ? {} : { authorization: `Bearer ${options.authToken}` }) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      return StatusReply.error(new CoordinatorUnreachableError(`${url}: ${error instanceof Error ? error.message : String(error)}`, error));
    }
    let answer: WireReply;
    try {
      answer = (await response.json()) as WireReply;
    } catch (error) {
      return StatusReply.error(new CoordinatorUnreachableError(`${url} answered HTTP ${response.status} without a reply`, error));
    }
    // JSON has no undefined: the coordinator's "nothing" (an unknown id, an unregistered pipeline) travels as null.
    if (answer.status === 'success') return StatusReply.success(answer.value ?? undefined);
    if (answer.status !== 'error' || typeof answer.error !== 'object' || answer.error === null) {
      // Not a coordinator reply (e.g. the route refused the command's shape): say what came back instead of "undefined".
      return StatusReply.error(new RemoteCoordinatorError('cluster/remote-coordinator', `${url} answered HTTP ${response.status}: ${JSON.stringify(answer).slice(0, 500)}`, false));
    }
    return StatusReply.error(new RemoteCoordinatorError(String(answer.error.tag), String(answer.error.message), answer.error.retriable === true));
  };
  return system.spawn<CoordinatorCommand, undefined>(
    {
      initialState: undefined,
      onMessage: (state, command) => {
        // Not awaited: commands go out concurrently; each answer goes to its own reply ref.
        void forward(command).then((reply) => (command.replyTo as ActorRef<StatusReply<unknown>>).tell(reply));
        return state;
      },
    },
    'coordinator-forwarder',
  );
}

/** How often a forwarded command in flight checks that the coordinator still runs here. */
const MOVE_CHECK_MS = 100;

/**
 * The singleton's side: `POST /internal/v1/coordinator` runs a forwarded
 * command against this node's coordinator. 503 with a retriable error when
 * this node does not run the coordinator (the singleton moved meanwhile).
 */
export function registerCoordinatorRoute(app: FastifyInstance, coordinator: () => ActorRef<CoordinatorCommand> | undefined, askTimeoutMs = 10_000): void {
  app.post<{ Body: Record<string, unknown> }>(
    '/internal/v1/coordinator',
    {
      schema: {
        hide: true,
        body: commandSchema,
      },
    },
    async (request, reply) => {
      const ref = coordinator();
      if (ref === undefined) {
        return reply.status(503).send({ status: 'error', error: { tag: 'node/unavailable', message: 'this node does not run the coordinator (the singleton moved)', retriable: true } } satisfies WireReply);
      }
      let answer: StatusReply<unknown>;
      // A coordinator stopped meanwhile (this node resigns or leaves) never answers what it had not done yet: say so at once, retriable,
      // instead of holding the caller (another node's placement round, this node's stop) for the whole ask timeout.
      let watch: NodeJS.Timeout | undefined;
      const moved = new Promise<never>((_resolve, reject) => {
        watch = setInterval(() => {
          if (coordinator() !== ref) reject(new Error('the coordinator stopped here while answering (the singleton moves)'));
        }, MOVE_CHECK_MS);
      });
      try {
        answer = await Promise.race([ask<CoordinatorCommand, StatusReply<unknown>>(ref, (replyTo) => ({ ...request.body, replyTo }) as unknown as CoordinatorCommand, { timeoutMs: askTimeoutMs }), moved]);
      } catch (error) {
        return reply.status(503).send({ status: 'error', error: { tag: 'node/unavailable', message: `the coordinator did not answer: ${error instanceof Error ? error.message : String(error)}`, retriable: true } } satisfies WireReply);
      } finally {
        clearInterval(watch);
      }
      if (answer.status === 'success') return reply.send({ status: 'success', value: answer.value ?? null });
      const error = answer.error as Error & { tag?: unknown; retriable?: unknown };
      return reply.send({
        status: 'error',
        error: { tag: typeof error.tag === 'string' ? error.tag : 'node/unavailable', message: error.message, retriable: error.retriable === true },
      } satisfies WireReply);
    },
  );
}
