/**
 * Typed refusals and failures of the pipeline domain.
 */
import { DataflowError } from '../../errors/dataflow-error.js';
import type { PipelineStatus } from './pipeline-state.js';

/** A command does not fit the pipeline's current state; nothing changed. */
export class PipelineCommandRejectedError extends DataflowError<'pipeline/command-rejected'> {
  constructor(
    readonly pipelineId: string,
    readonly command: string,
    readonly status: PipelineStatus,
    readonly reason: string,
  ) {
    super('pipeline/command-rejected', `Pipeline ${pipelineId}: cannot ${command} while ${status}: ${reason}`, {
      retriable: false,
    });
  }
}
