/**
 * Typed failures of sources, sinks and dead-letter targets. The pipeline
 * decides on `retriable`: transient failures are retried with backoff,
 * permanent ones go through the stage's error policy.
 */
import { DataflowError } from '../errors/dataflow-error.js';

/** A source, sink or dead-letter target failed. */
export class ConnectorError extends DataflowError<'connector/failed'> {
  constructor(
    /** The connector type, e.g. `file` or `kafka`. */
    readonly connector: string,
    message: string,
    options: { retriable: boolean; cause?: unknown },
  ) {
    super('connector/failed', `${connector}: ${message}`, options);
  }
}

/** Connector options are invalid; lists every field-level problem. */
export class InvalidConnectorOptionsError extends DataflowError<'connector/invalid-options'> {
  constructor(
    readonly connector: string,
    readonly issues: readonly { readonly path: string; readonly message: string }[],
  ) {
    super(
      'connector/invalid-options',
      `Invalid options for connector ${connector}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { retriable: false },
    );
  }
}
