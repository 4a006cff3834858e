/**
 * The errors of the node's metrics: a value handed to the metrics API that
 * cannot be a metric, and a metrics port already taken. Each has a tag
 * (checked by `isDataflowError(error, tag)`), `retriable` and a `cause`.
 */
import { DataflowError } from '@dataflow/core';

/**
 * A value given to the metrics API cannot be recorded; `field` names it.
 *
 * @example
 * ```ts
 * if (isDataflowError(error, 'metrics/invalid-value')) logger.warn(error.message, { field: error.field });
 * ```
 */
export class InvalidMetricValueError extends DataflowError<'metrics/invalid-value'> {
  constructor(
    /** The argument that was refused (`seconds`, `projection`, ...). */
    readonly field: string,
    message: string,
  ) {
    super('metrics/invalid-value', `${field}: ${message}`, { retriable: false });
  }
}

/**
 * The metrics server could not listen: another process (or server) holds the
 * port. Retriable: the port may be freed.
 *
 * @example
 * ```ts
 * if (isDataflowError(error, 'metrics/port-in-use')) logger.error(`choose another metrics port than ${error.port}`);
 * ```
 */
export class MetricsPortInUseError extends DataflowError<'metrics/port-in-use'> {
  constructor(
    readonly host: string,
    readonly port: number,
    cause: unknown,
  ) {
    super('metrics/port-in-use', `The metrics server cannot listen on ${host}:${port}: the port is in use`, { retriable: true, cause });
  }
}

/**
 * The metrics server could not listen for another reason than a taken port
 * (an address that is not local, no permission for a low port).
 */
export class MetricsServerError extends DataflowError<'metrics/server-failed'> {
  constructor(
    readonly host: string,
    readonly port: number,
    cause: unknown,
  ) {
    super('metrics/server-failed', `The metrics server cannot listen on ${host}:${port}: ${cause instanceof Error ? cause.message : String(cause)}`, {
      retriable: false,
      cause,
    });
  }
}
