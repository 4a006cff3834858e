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
export { backoffDelayMs } from './supervision/backoff.js';
export type * from './actor/actor-ref.js';
export type * from './actor/actor-context.js';
export type * from './actor/actor-events.js';
export { behavior, receive, type Behavior, type Next, type Signal, type StopReason } from './actor/behavior.js';
export * from './actor/actor-errors.js';
export { createActorSystem, type ActorSystem, type ActorSystemOptions, type ActorSystemStatus } from './actor/actor-system.js';
export { ask, type AskOptions } from './actor/ask.js';
export * from './event-sourcing/effect.js';
export { eventSourced, decideCommand, applyEvents, type CommandContext, type Decision, type EventSourcedBehavior, type EventSourcedOptions, type PersistFailureBackoff, type Upcasters } from './event-sourcing/event-sourced.js';
export * from './event-sourcing/event-sourcing-errors.js';
export type * from './event-sourcing/event-sourcing-events.js';
export { every, snapshotWhen, type SnapshotPolicy, type SnapshotRetentionOptions } from './event-sourcing/snapshot-policy.js';
export { recoverState, type EntityPersistence, type Recovered } from './event-sourcing/recovery.js';
export { spawnEventSourced, type ActorSpawner, type SpawnEventSourcedOptions } from './event-sourcing/spawn-event-sourced.js';
export type { EntityLifecycle } from './event-sourcing/event-sourced-entity.js';
export * from './nact-adapter/nact-persistence-engine.js';
