/**
 * The source port. A source is pulled in batches by its pipeline and told to
 * acknowledge a position only after the pipeline has durably checkpointed it:
 * that ordering is what makes "nothing lost" hold (the original platform
 * committed Kafka offsets when a batch was sent, and lost data on a crash).
 */
import type { DataRecord } from './data-record.js';

/** A position in a source, JSON-serializable; stored in the pipeline's checkpoint. */
export type SourceOffset = string | number | boolean | null | readonly SourceOffset[] | { readonly [key: string]: SourceOffset };

/** One record read from a source, or the reason it could not be read (it then goes to the dead-letter queue). */
export type SourceRecord =
  | { readonly ok: true; readonly value: DataRecord }
  | { readonly ok: false; readonly raw: string; readonly reason: string };

export interface SourceBatch {
  readonly records: readonly SourceRecord[];
  /** The position after the last record of this batch; resuming from it continues with the next record. */
  readonly offset: SourceOffset;
  /** True when a finite source has no more records after this batch. */
  readonly done: boolean;
}

/**
 * How far a source is behind one of its partitions: `lag` records are in the
 * partition after the next one the source will read (high watermark minus
 * the next offset to read, never negative).
 */
export interface SourceLag {
  /** The stream (a Kafka topic). */
  readonly topic: string;
  readonly partition: number;
  readonly lag: number;
}

export interface SourceContext {
  readonly pipelineId: string;
  /** The last durably checkpointed offset; undefined on a first start. */
  readonly checkpoint: SourceOffset | undefined;
  /** Aborted when the pipeline stops. */
  readonly signal: AbortSignal;
  /**
   * True when the sink commits source offsets in its own transaction
   * (`Sink.commitsSourceOffsets`): `ack` must then not commit upstream, and
   * `open` reconciles `checkpoint` with the upstream committed position (per
   * partition the further of the two: the sink's transaction commits before
   * the journal checkpoint, so upstream can be one batch ahead, never behind).
   */
  readonly offsetsCommittedBySink?: boolean;
  /**
   * Set when the pipeline runs as several tasks (`parallelism > 1`, only for
   * sources whose registry entry declares `parallelTasks`): this source is
   * task `index` of `count` of pipeline `pipelineId` (while the context's own
   * `pipelineId` is the task's id). Sources shared by the tasks (a consumer
   * group) are named after the pipeline, not the task; each task checkpoints
   * only its own share (ADR 0013).
   */
  readonly task?: SourceTask;
}

/** Which task of a parallel pipeline a source runs in. */
export interface SourceTask {
  /** The pipeline's id (the same for every task). */
  readonly pipelineId: string;
  /** 0-based. */
  readonly index: number;
  /** The pipeline's `parallelism`. */
  readonly count: number;
}

/**
 * A source of records.
 *
 * @example
 * ```ts
 * await source.open({ pipelineId: 'p1', checkpoint: undefined, signal });
 * const batch = await source.poll(500, 1000);
 * // ... sink.write, then persist the checkpoint ...
 * await source.ack(batch.offset);
 * ```
 */
export interface Source {
  readonly type: string;
  /** Connects and positions the source right after `checkpoint`. */
  open(context: SourceContext): Promise<void>;
  /**
   * Up to `maxRecords` records; resolves as soon as `maxRecords` are available
   * or `maxWaitMs` has passed (possibly with none). Never buffers without bound:
   * a source reads ahead at most one batch.
   */
  poll(maxRecords: number, maxWaitMs: number): Promise<SourceBatch>;
  /** The pipeline has durably checkpointed `offset`: commit it upstream (Kafka offsets, ...). */
  ack(offset: SourceOffset): Promise<void>;
  /**
   * Optional: the lag of every partition the source reads now (an empty list
   * when it has none). It may cost a round trip to the broker, so the pipeline
   * asks at most every few seconds (`lagIntervalMs`) and reports the answer
   * as a `pipeline.source.lag` event. Unlike the other calls it may run while
   * a `poll` or an `ack` is pending, and must not disturb them; it is not
   * called before `open` resolved.
   */
  lag?(): Promise<readonly SourceLag[]>;
  close(): Promise<void>;
}
