/**
 * The error a pipeline definition that fails validation produces: it carries
 * every field-level issue, so a user fixes them all in one go.
 */
import { DataflowError } from '../../errors/dataflow-error.js';

/**
 * One problem in a definition: where (`transforms[1].expression`, `''` for the
 * whole definition) and what.
 */
export interface DefinitionIssue {
  readonly path: string;
  readonly message: string;
}

const ISSUES_IN_MESSAGE = 10;

/**
 * A pipeline definition is invalid. Not retriable: the same definition fails
 * the same way.
 *
 * @example
 * ```ts
 * try {
 *   definePipeline(input);
 * } catch (error) {
 *   if (isDataflowError(error, 'pipeline/invalid-definition')) {
 *     for (const issue of (error as InvalidPipelineDefinitionError).issues) report(issue.path, issue.message);
 *   }
 * }
 * ```
 */
export class InvalidPipelineDefinitionError extends DataflowError<'pipeline/invalid-definition'> {
  constructor(readonly issues: readonly DefinitionIssue[]) {
    const listed = issues.slice(0, ISSUES_IN_MESSAGE).map((issue) => `${issue.path === '' ? '(definition)' : issue.path}: ${issue.message}`);
    const more = issues.length > ISSUES_IN_MESSAGE ? `; and ${issues.length - ISSUES_IN_MESSAGE} more` : '';
    super(
      'pipeline/invalid-definition',
      `Invalid pipeline definition (${issues.length} ${issues.length === 1 ? 'issue' : 'issues'}): ${listed.join('; ')}${more}`,
      { retriable: false },
    );
  }
}
