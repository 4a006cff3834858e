/**
 * The pipeline actor's `ConnectorFactory` over `@dataflow/connectors`: each
 * run of a pipeline gets fresh connectors built from its definition. Options
 * are validated by the connectors themselves; a definition they refuse throws
 * `InvalidConnectorOptionsError` (not retriable), which fails the pipeline
 * instead of retrying it.
 */
import type { ConnectorFactory } from '@dataflow/core';
import { createDeadLetterTarget, createSink, createSource, type ConnectorDependencies } from '@dataflow/connectors';

/**
 * Connectors of `@dataflow/connectors` for pipeline actors.
 *
 * @example
 * ```ts
 * const connectors = localConnectorFactory({ stream: process.stdout });
 * system.spawn(pipelineActor({ pipelineId: 'demo', persistence, connectors }), 'pipeline-demo');
 * ```
 */
export function localConnectorFactory(dependencies: ConnectorDependencies = {}): ConnectorFactory {
  return {
    createSource: (definition) => createSource(definition, dependencies),
    createSink: (definition) => createSink(definition, dependencies),
    createDeadLetterTarget: (definition) => createDeadLetterTarget(definition, dependencies),
  };
}
