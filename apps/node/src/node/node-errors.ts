/**
 * The errors of a DataFlow node: a pipeline id it does not know, a command
 * after shutdown began, and configuration it cannot run with. Each has a tag
 * (checked by `isDataflowError(error, tag)`), `retriable` and a `cause`.
 */
import { CoordinatorCommandRejectedError, DataflowError, type ConfiguredPipelineState } from '@dataflow/core';

/**
 * No pipeline with this id is registered.
 *
 * @example
 * ```ts
 * if (isDataflowError(error, 'node/pipeline-not-found')) return { status: 404 };
 * ```
 */
export class PipelineNotFoundError extends DataflowError<'node/pipeline-not-found'> {
  constructor(readonly pipelineId: string) {
    super('node/pipeline-not-found', `No pipeline ${pipelineId} is registered on this node`, { retriable: false });
  }
}

/**
 * A pipeline with this id exists already (a 409, tagged
 * `coordinator/command-rejected` like every refused registration). It
 * carries the existing pipeline's state and whether its definition is the
 * one asked for: a client that retries a create whose first answer it lost
 * (a timeout, a 503 while the coordinator moved) finds its own pipeline, and
 * the admin API answers that retry with 200 instead of a conflict.
 *
 * @example
 * ```ts
 * if (error instanceof PipelineExistsError && error.identical) return error.state;
 * ```
 */
export class PipelineExistsError extends CoordinatorCommandRejectedError {
  constructor(
    pipelineId: string,
    readonly state: ConfiguredPipelineState,
    readonly identical: boolean,
  ) {
    super('register', pipelineId, `a pipeline with this id exists${identical ? ' (with this definition)' : ' with another definition'}`);
  }
}

/**
 * No projection with this name runs on this node.
 *
 * @example
 * ```ts
 * if (isDataflowError(error, 'node/projection-not-found')) return { status: 404 };
 * ```
 */
export class ProjectionNotFoundError extends DataflowError<'node/projection-not-found'> {
  constructor(
    readonly projection: string,
    known: readonly string[],
  ) {
    super('node/projection-not-found', `No projection ${JSON.stringify(projection.slice(0, 100))} runs on this node (known: ${known.join(', ') || 'none'})`, { retriable: false });
  }
}

/**
 * The node is shutting down (or has shut down) and takes no more commands.
 *
 * @example
 * ```ts
 * if (isDataflowError(error, 'node/unavailable')) return { status: 503 };
 * ```
 */
export class NodeUnavailableError extends DataflowError<'node/unavailable'> {
  constructor(reason: string) {
    super('node/unavailable', `The node is unavailable: ${reason}`, { retriable: true });
  }
}

/**
 * The node cannot run with its configuration: an unwritable data directory, a
 * database it cannot reach or that refuses it, a malformed setting.
 *
 * @example
 * ```ts
 * throw new NodeConfigError('DATAFLOW_DATA_DIR', '/data is not writable', { cause: error });
 * ```
 */
export class NodeConfigError extends DataflowError<'node/invalid-config'> {
  constructor(
    readonly setting: string,
    message: string,
    options: { retriable?: boolean; cause?: unknown } = {},
  ) {
    super('node/invalid-config', `${setting}: ${message}`, { retriable: options.retriable ?? false, cause: options.cause });
  }
}

/**
 * The node met a cause that waiting cannot cure and stops: another node
 * writes the same journal (a concurrency conflict), or a journal it cannot
 * read. `component` names what failed (`coordinator`, `pipeline <id>`).
 *
 * @example
 * ```ts
 * const error = await node.failure; // NodeFailedError: pipeline demo lost the single-writer race ...
 * process.exitCode = 1;
 * ```
 */
export class NodeFailedError extends DataflowError<'node/failed'> {
  constructor(
    readonly component: string,
    message: string,
    cause?: unknown,
  ) {
    super('node/failed', message, { retriable: false, cause });
  }
}
