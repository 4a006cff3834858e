/**
 * The node's Prometheus metrics, in a registry of its own (never
 * prom-client's global one, so two nodes in one process do not mix). Every
 * metric is fed from core's typed instrumentation events (`node.events`):
 * nothing in the pipelines, the journal or the actors calls into this module.
 * Projection lag comes from the projections' status observer, or from
 * whoever computes it, through `recordProjectionLag`. `docs-metrics.md`
 * lists every metric with its labels.
 */
import { systemClock, type Clock, type Instrumentation, type InstrumentationEvent, type PipelineStatus, type Unsubscribe } from '@dataflow/core';
import type { ProjectionStatusEvent } from '@dataflow/projections';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DataflowNode } from '../node/dataflow-node.js';
import { InvalidMetricValueError } from './metrics-errors.js';

/** The statuses `pipeline_status` reports (a pipeline that does not exist yet, `empty`, has none). */
export const REPORTED_PIPELINE_STATUSES: readonly PipelineStatus[] = ['configured', 'running', 'paused', 'stopped', 'failed'];

/** Buckets of `pipeline_batch_duration_seconds`: 1 ms to 30 s. */
const BATCH_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Buckets of `pipeline_batch_size` (records per batch; the largest allowed batch size is 100 000). */
const BATCH_SIZE_BUCKETS = [1, 10, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 100_000];
/** Buckets of `dataflow_journal_write_duration_seconds`: 0.5 ms to 5 s. */
const JOURNAL_WRITE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** What `createNodeMetrics` needs of a node: its events and the pipelines it recovered at start. */
export type MetricsSource = Pick<DataflowNode, 'events' | 'recovered'>;

/** Options of {@link createNodeMetrics}. */
export interface NodeMetricsOptions {
  /** The registry to fill (default: a new one). */
  readonly registry?: Registry;
  /** Registers prom-client's process metrics (CPU, memory, event loop lag, GC, handles) too (default true). */
  readonly processMetrics?: boolean;
  /** The clock projection lag is measured with in `observeProjections` (default: the wall clock). */
  readonly clock?: Clock;
}

/** A node's metrics. */
export interface NodeMetrics {
  /** The node's registry: serve it with `startMetricsServer({ registry })`. */
  readonly registry: Registry;
  /**
   * Sets `dataflow_projection_lag_seconds{projection}`: how far the projection
   * is behind the newest event it could read. Throws `InvalidMetricValueError`
   * for an empty name or a lag that is negative or not a finite number.
   */
  recordProjectionLag(projection: string, seconds: number): void;
  /**
   * Keeps `dataflow_projection_lag_seconds` from a projections status
   * observer: each `progress` event sets the lag of its projection to the age
   * of the newest event it applied. Returns the unsubscribe function.
   */
  observeProjections(observer: Pick<Instrumentation<ProjectionStatusEvent>, 'on'>): Unsubscribe;
  /** Stops listening to the node's events (the registry keeps its last values). */
  close(): void;
}

/**
 * Creates the metrics of `node` and subscribes them to its events. Call it
 * right after `startNode`: the pipelines the node recovered seed
 * `pipeline_status`, later changes come from the events.
 *
 * @example
 * ```ts
 * const node = await startNode(config);
 * const metrics = createNodeMetrics(node);
 * const server = await startMetricsServer({ registry: metrics.registry });
 * const status = createProjectionStatusObserver();
 * metrics.observeProjections(status);
 * ```
 */
export function createNodeMetrics(node: MetricsSource, options: NodeMetricsOptions = {}): NodeMetrics {
  const registry = options.registry ?? new Registry();
  const clock = options.clock ?? systemClock;
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const records = new Counter({ name: 'pipeline_records_processed_total', help: 'Records a pipeline read and recorded in a checkpoint (failed ones included)', labelNames: ['pipeline'], registers });
  const errors = new Counter({
    name: 'pipeline_errors_total',
    help: 'Failures by stage: records a stage dropped (skip or dead-letter policy) and batches that failed there',
    labelNames: ['pipeline', 'stage'],
    registers,
  });
  const batchDuration = new Histogram({
    name: 'pipeline_batch_duration_seconds',
    help: 'Time from taking a batch to its checkpoint',
    labelNames: ['pipeline'],
    buckets: BATCH_DURATION_BUCKETS,
    registers,
  });
  const batchSize = new Histogram({ name: 'pipeline_batch_size', help: 'Records per recorded batch', labelNames: ['pipeline'], buckets: BATCH_SIZE_BUCKETS, registers });
  const status = new Gauge({ name: 'pipeline_status', help: "1 for the pipeline's current status, 0 for the others", labelNames: ['pipeline', 'status'], registers });
  const deadLetters = new Counter({ name: 'dataflow_dead_letters_total', help: 'Records a pipeline sent to its dead-letter target', labelNames: ['pipeline'], registers });
  const journalWrites = new Histogram({
    name: 'dataflow_journal_write_duration_seconds',
    help: 'Duration of journal appends (pipelines, coordinator and other event-sourced entities), failed ones included',
    buckets: JOURNAL_WRITE_BUCKETS,
    registers,
  });
  const restarts = new Counter({
    name: 'dataflow_actor_restarts_total',
    help: 'Restarts of actors after a failure, and of event-sourced entities after a journal failure',
    registers,
  });
  const kafkaLag = new Gauge({
    name: 'pipeline_kafka_consumer_lag',
    help: 'Records in a Kafka partition after the next one the pipeline will read (high watermark minus next offset), sampled every few seconds',
    labelNames: ['pipeline', 'topic', 'partition'],
    registers,
  });
  /** Per pipeline, the label sets of its partitions last reported (a partition the pipeline no longer reads loses its series). */
  const lagSeries = new Map<string, Map<string, { pipeline: string; topic: string; partition: string }>>();
  const sourceUp = new Gauge({
    name: 'pipeline_source_up',
    help: "1 when the pipeline's source answered its last lag sample, 0 when it did not (a Kafka source whose brokers are down); sampled every few seconds",
    labelNames: ['pipeline'],
    registers,
  });
  const dropLag = (pipeline: string): void => {
    for (const labels of lagSeries.get(pipeline)?.values() ?? []) kafkaLag.remove(labels);
    lagSeries.delete(pipeline);
    sourceUp.remove({ pipeline });
  };
  const projectionLag = new Gauge({ name: 'dataflow_projection_lag_seconds', help: 'How far a projection is behind the newest event it could read', labelNames: ['projection'], registers });

  const setStatus = (pipeline: string, current: PipelineStatus): void => {
    for (const s of REPORTED_PIPELINE_STATUSES) status.set({ pipeline, status: s }, s === current ? 1 : 0);
  };
  for (const state of node.recovered) setStatus(state.pipelineId, state.status);

  const events: Instrumentation<InstrumentationEvent> = node.events;
  const subscriptions: Unsubscribe[] = [
    events.on('pipeline.batch.completed', (e) => {
      const pipeline = e.pipelineId;
      records.inc({ pipeline }, e.records);
      batchDuration.observe({ pipeline }, e.durationMs / 1_000);
      batchSize.observe({ pipeline }, e.records);
      if (e.deadLettered > 0) deadLetters.inc({ pipeline }, e.deadLettered);
      for (const [stage, count] of Object.entries(e.failedByStage)) errors.inc({ pipeline, stage }, count);
    }),
    events.on('pipeline.batch.failed', (e) => errors.inc({ pipeline: e.pipelineId, stage: e.stage })),
    events.on('pipeline.status.changed', (e) => {
      setStatus(e.pipelineId, e.to);
      // A paused pipeline keeps its last lag (it is at least that far behind); one that no longer runs has none.
      if (e.to !== 'running' && e.to !== 'paused') dropLag(e.pipelineId);
    }),
    events.on('pipeline.source.lag-failed', (e) => sourceUp.set({ pipeline: e.pipelineId }, 0)),
    events.on('pipeline.source.lag', (e) => {
      sourceUp.set({ pipeline: e.pipelineId }, 1);
      if (e.sourceType !== 'kafka') return;
      const pipeline = e.pipelineId;
      const before = lagSeries.get(pipeline) ?? new Map<string, { pipeline: string; topic: string; partition: string }>();
      const now = new Map<string, { pipeline: string; topic: string; partition: string }>();
      for (const p of e.partitions) {
        const labels = { pipeline, topic: p.topic, partition: String(p.partition) };
        const key = `${p.topic}\u0000${p.partition}`;
        now.set(key, labels);
        kafkaLag.set(labels, p.lag);
      }
      for (const [key, labels] of before) if (!now.has(key)) kafkaLag.remove(labels);
      lagSeries.set(pipeline, now);
    }),
    events.on('event-sourced.journal.written', (e) => journalWrites.observe(e.durationMs / 1_000)),
    events.on('actor.restarted', () => restarts.inc()),
    events.on('event-sourced.restarting', () => restarts.inc()),
  ];
  const projectionSubscriptions: Unsubscribe[] = [];

  const recordProjectionLag = (projection: string, seconds: number): void => {
    if (typeof projection !== 'string' || projection === '') throw new InvalidMetricValueError('projection', 'must be a non-empty projection name');
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) {
      throw new InvalidMetricValueError('seconds', `must be a finite number of seconds >= 0, got ${String(seconds)}`);
    }
    projectionLag.set({ projection }, seconds);
  };

  return {
    registry,
    recordProjectionLag,
    observeProjections(observer) {
      const off = observer.on('progress', (e) => recordProjectionLag(e.id.name, Math.max(0, clock.now() - e.lastEventAt) / 1_000));
      projectionSubscriptions.push(off);
      return off;
    },
    close() {
      for (const off of subscriptions.splice(0)) off();
      for (const off of projectionSubscriptions.splice(0)) off();
    },
  };
}
