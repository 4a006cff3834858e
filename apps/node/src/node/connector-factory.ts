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
export function localConnectorFactory(dependencies: ConnectorDependencies | (() => ConnectorDependencies) = {}): ConnectorFactory {
  // A function is asked at each creation: what it hands out may exist only once the node has started (its database).
  const current = typeof dependencies === 'function' ? dependencies : () => dependencies;
  return {
    createSource: (definition) => createSource(definition, current()),
    createSink: (definition) => createSink(definition, current()),
    createDeadLetterTarget: (definition) => createDeadLetterTarget(definition, current()),
  };
}
