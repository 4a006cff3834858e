/**
 * `@dataflow/projections`: Postgres / PGlite read models built from the
 * journal's tag queries, from stored offsets, with the delivery guarantee in
 * the name (`exactlyOnce`, `groupedWithin`, `atLeastOnce`).
 */
export { migrateProjections, checkProjectionsSchema, projectionMigrations, projectionsMigrationTarget, PROJECTIONS_MIGRATE_COMMAND } from './schema/projections-schema.js';
export { ProjectionOffsetStore, type ProjectionId, type ProjectionOffsetRow } from './offset-store/projection-offset-store.js';
export {
  ProjectionManagement,
  type ProjectionLag,
  type ProjectionManagementOptions,
  type ProjectionStatus,
} from './offset-store/projection-management.js';
export { InvalidProjectionInputError, type ProjectionInputIssue } from './offset-store/projection-management-errors.js';
export { adoptSplit, forgetOtherSplits, ProjectionSplitChangedError, rangeOfKey, splitKeys, UNSPLIT_KEY, type SplitAdoption, type SplitKey } from './offset-store/projection-split.js';
export {
  atLeastOnce,
  BulkNotApplicableError,
  exactlyOnce,
  groupedWithin,
  HandlerRecoveryStrategy,
  type BulkCatchUp,
  type BulkPart,
  type BulkRange,
  type EventHandler,
  type GroupHandler,
  type Projection,
  type ProjectionGuarantee,
} from './runner/projection.js';
export { BULK_MIN_BEHIND, BULK_PARALLELISM, runProjection, type JournalTables, type ProjectionRunDependencies, type ProjectionStatusEvent } from './runner/projection-runner.js';
export { sqlJournalOf } from './runner/sql-journal.js';
export { createProjectionStatusObserver, type ProjectionStatusObserver } from './runner/projection-status-observer.js';
export { ProjectionHandlerError, ProjectionOffsetMovedError } from './runner/projection-errors.js';
export { DEFAULT_PROJECTION_BACKOFF, projectionBehavior, spawnProjection, type ProjectionMessage } from './runner/projection-actor.js';
export {
  applyPipelineMetricsHourly,
  applyPipelineStatus,
  bulkPipelineMetricsHourly,
  PIPELINE_EVENTS_TAG,
  pipelineIdOf,
  pipelineMetricsHourlyProjection,
  pipelineStatusProjection,
  type ReadModelOptions,
} from './read-models/pipeline-read-models.js';
export { PipelineStatusView, type PipelineStatusRow, type PipelineStatusViewLag, type PipelineStatusViewOptions } from './read-models/pipeline-status-view.js';
export { rebuildReadModel, startRebuild, type RebuildOptions, type RebuildProgress, type StartedRebuild } from './rebuild/rebuild.js';
export {
  readRebuildMarker,
  recoverAbandonedRebuilds,
  REBUILD_HEARTBEAT_MS,
  REBUILD_STALE_MS,
  RebuildAbandonedError,
  RebuildInProgressError,
  type RebuildMarker,
  type RecoverOptions,
} from './rebuild/rebuild-marker.js';
export { checkSliceRange, SLICE_COUNT, sliceForPersistenceId, sliceKey, sliceRanges, type SliceRange } from './slices/slices.js';
