/**
 * `@dataflow/core`: the actor runtime, the persistence SPI with its in-memory
 * store, and the pipeline domain.
 */
export { DataflowError, isDataflowError, isRetriable, type DataflowErrorOptions } from './errors/dataflow-error.js';
export * from './persistence/persistence-errors.js';
export type * from './persistence/journal.js';
export type * from './persistence/snapshot-store.js';
export * from './persistence/queries.js';
export type * from './persistence/persistence-plugin.js';
export type * from './connector/data-record.js';
export type * from './connector/source.js';
export type * from './connector/sink.js';
export type * from './connector/dead-letter.js';
export * from './connector/connector-errors.js';
export { formatManifest, SNAPSHOT_EVENT_TYPE, type Manifest, type Serializer } from './persistence/serialization/serializer.js';
export { JsonSerializer } from './persistence/serialization/json-serializer.js';
export * from './persistence/serialization/serializer-registry.js';
export * from './persistence/in-memory/in-memory-persistence.js';
export { InMemoryJournal } from './persistence/in-memory/in-memory-journal.js';
export { InMemoryReadJournal } from './persistence/in-memory/in-memory-read-journal.js';
export { InMemorySnapshotStore } from './persistence/in-memory/in-memory-snapshot-store.js';
export { systemClock, type Clock } from './clock/clock.js';
export { systemScheduler, type Cancellable, type Scheduler } from './clock/scheduler.js';
export * from './instrumentation/instrumentation.js';
export * from './supervision/supervisor-strategy.js';
export { Backoff, backoffDelayMs, validateBackoffPolicy, type BackoffPolicy } from './supervision/backoff.js';
export type * from './actor/actor-ref.js';
export type * from './actor/actor-context.js';
export type * from './actor/actor-events.js';
export { behavior, receive, type Behavior, type Next, type Signal, type StopReason } from './actor/behavior.js';
export * from './actor/actor-errors.js';
export { createActorSystem, DEFAULT_TERMINATE_TIMEOUT_MS, type ActorSystem, type ActorSystemOptions, type ActorSystemStatus, type TerminateOptions } from './actor/actor-system.js';
export { ask, type AskOptions } from './actor/ask.js';
export { askWithStatus, isStatusReplyError, StatusReply, StatusReplyError } from './actor/status-reply.js';
export * from './event-sourcing/effect.js';
export { eventSourced, decideCommand, applyEvents, type CommandContext, type Decision, type EventSourcedBehavior, type EventSourcedOptions, type PersistFailureBackoff, type Upcasters } from './event-sourcing/event-sourced.js';
export * from './event-sourcing/event-sourcing-errors.js';
export type * from './event-sourcing/event-sourcing-events.js';
export { every, snapshotWhen, type SnapshotPolicy, type SnapshotRetentionOptions } from './event-sourcing/snapshot-policy.js';
export { recoverState, type EntityPersistence, type Recovered } from './event-sourcing/recovery.js';
export { spawnEventSourced, type ActorSpawner, type SpawnEventSourcedOptions } from './event-sourcing/spawn-event-sourced.js';
export type { EntityLifecycle } from './event-sourcing/event-sourced-entity.js';
export * from './nact-adapter/nact-persistence-engine.js';
export * from './transforms/transform.js';
export * from './transforms/transform-errors.js';
export * from './transforms/transform-chain.js';
export { createTransform, type CreateTransformOptions } from './transforms/create-transform.js';
export {
  parseExposition,
  SeriesCache,
  unescapeLabelValue,
  type ExpositionError,
  type ExpositionParseOptions,
  type ExpositionParseResult,
  type MetricFamily,
  type MetricType,
  type PrometheusSample,
} from './transforms/prometheus/exposition-parser.js';
export { sampleToRecord, sampleValueToJson } from './transforms/prometheus/prometheus-sample-record.js';
export { createPrometheusTransform, jobFromTopic, prometheusDefinitionSchema, type PrometheusDefinition } from './transforms/prometheus/prometheus-transform.js';
export { TRANSFORM_TYPES, type TransformDefinition, type TransformDefinitionInput, type TransformType } from './transforms/transform-definition.js';
export type { StageErrorPolicy } from './transforms/stage-error-policy.js';
export { ExpressionSyntaxError } from './transforms/expression/expression-syntax-error.js';
export type * from './transforms/expression/expression-ast.js';
export * from './transforms/expression/expression-parser.js';
export { compareValues, evaluateExpression } from './transforms/expression/expression-evaluator.js';
export { formatFieldPath, getPath, withoutPath, withPath, type FieldPath } from './transforms/field-path/field-path.js';
export { InMemoryLookupSource, type LookupSource } from './transforms/enrich/lookup-source.js';
export type { FilterDefinition } from './transforms/filter/filter-transform.js';
export type { MapDefinition } from './transforms/map/map-transform.js';
export type { FlatMapDefinition } from './transforms/flat-map/flat-map-transform.js';
export type { EnrichDefinition } from './transforms/enrich/enrich-transform.js';
export type { JsonParseDefinition } from './transforms/json-parse/json-parse-transform.js';
export type { AccumulatorState, AggregateDefinition, AggregationOperation, TumblingWindowState } from './transforms/aggregate/tumbling-window-aggregate.js';
export * from './pipeline/definition/pipeline-definition.js';
export * from './pipeline/definition/define-pipeline.js';
export * from './pipeline/definition/connector-registry.js';
export * from './pipeline/definition/pipeline-tasks.js';
export * from './pipeline/definition/invalid-pipeline-definition-error.js';
export * from './pipeline/definition/value-bounds.js';
export * from './pipeline/model/pipeline-events.js';
export * from './pipeline/model/pipeline-state.js';
export * from './pipeline/model/pipeline-decider.js';
export * from './pipeline/model/pipeline-errors.js';
export { classifyFailure } from './pipeline/model/classify-failure.js';
export * from './pipeline/runtime/pipeline-entity.js';
export * from './pipeline/runtime/pipeline-actor.js';
export type * from './pipeline/runtime/pipeline-instrumentation.js';
export * from './rate-limit/rate-limiter.js';
export * from './coordinator/coordinator-model.js';
export * from './coordinator/coordinator-actor.js';
export * from './coordinator/coordinator-snapshot.js';
