/**
 * The pipeline actor: one per pipeline. It hosts the pipeline's event-sourced
 * entity (the journal and the state machine) and runs the batches:
 *
 *   source.poll → transforms → dead letters → sink.write → persist checkpoint → source.ack
 *
 * in that order, one batch at a time, so that:
 * - an offset is acknowledged upstream only after the batch and its checkpoint
 *   are in the journal (nothing lost);
 * - a batch id already in the journal is acknowledged again without being
 *   applied twice (idempotent ingest);
 * - a crash at any step resumes from the journal's last checkpoint: the source
 *   re-reads from its offset, an exactly-once sink cuts off what it wrote
 *   after its checkpointed position;
 * - memory is bounded: one batch in flight, the source is not polled while it
 *   is processed (backpressure), external ingests queue up to a limit.
 *
 * Source, sink and dead-letter target run as supervised child actors. A
 * transient failure (or a batch timeout) is recorded as `RetryScheduled` and
 * re-driven after the backoff by re-opening the connectors from the last
 * checkpoint; a permanent one, or the last retry, fails the pipeline.
 */
import type { ActorContext } from '../../actor/actor-context.js';
import type { ActorRef, AnyActorRef } from '../../actor/actor-ref.js';
import { behavior, type Behavior, type Signal } from '../../actor/behavior.js';
import type { DataRecord, JsonValue } from '../../connector/data-record.js';
import type { DeadLetter, DeadLetterTarget, PipelineStage } from '../../connector/dead-letter.js';
import type { Sink, SinkPosition, SinkWriteResult } from '../../connector/sink.js';
import type { Source, SourceBatch, SourceOffset } from '../../connector/source.js';
import { DataflowError, isDataflowError } from '../../errors/dataflow-error.js';
import type { EntityPersistence } from '../../event-sourcing/recovery.js';
import { spawnEventSourced } from '../../event-sourcing/spawn-event-sourced.js';
import { createTransform } from '../../transforms/create-transform.js';
import type { LookupSource } from '../../transforms/enrich/lookup-source.js';
import type { RecordFailure, Transform } from '../../transforms/transform.js';
import type { StageErrorPolicy } from '../../transforms/stage-error-policy.js';
import { InvalidPipelineDefinitionError } from '../definition/invalid-pipeline-definition-error.js';
import { validatePipelineDefinition, type PipelineDefinition } from '../definition/pipeline-definition.js';
import { classifyFailure } from '../model/classify-failure.js';
import type { PipelineDecision } from '../model/pipeline-decider.js';
import type { FailureInfo } from '../model/pipeline-events.js';
import type { PipelineState } from '../model/pipeline-state.js';
import {
  deadLetterWorker,
  sinkWorker,
  sourceWorker,
  type DeadLetterWorkerMessage,
  type SinkWorkerMessage,
  type SourceWorkerMessage,
  type WorkerResult,
} from './connector-workers.js';
import { pipelineEntity, type EntityCommand, type EntityReply } from './pipeline-entity.js';
import './pipeline-instrumentation.js';

/** Creates the connectors a definition names (`@dataflow/connectors` provides one for its connector types). */
export interface ConnectorFactory {
  createSource(definition: PipelineDefinition['source']): Source;
  createSink(definition: PipelineDefinition['sink']): Sink;
  createDeadLetterTarget(definition: NonNullable<PipelineDefinition['deadLetter']>): DeadLetterTarget;
}

export interface PipelineActorOptions {
  readonly pipelineId: string;
  readonly persistence: EntityPersistence;
  readonly connectors: ConnectorFactory;
  /** Lookup sources for enrich transforms, by name. */
  readonly lookups?: Readonly<Record<string, LookupSource>>;
  /** Uniform random numbers in [0, 1) for retry jitter (default `Math.random`). */
  readonly random?: () => number;
  /** Called with the new state after every change (status, metrics, checkpoint). */
  readonly onStateChange?: (state: PipelineState) => void;
  /** Snapshot interval of the entity (default 100 events, keeping 2). */
  readonly snapshotEvery?: number;
  /** External `ingest` batches waiting beyond this are refused with a retriable error (default 16). */
  readonly maxQueuedIngests?: number;
}

/** The answer to a pipeline command. */
export type PipelineReply =
  | { readonly ok: true; readonly state: PipelineState; readonly duplicate?: boolean }
  | { readonly ok: false; readonly error: DataflowError; readonly state: PipelineState | undefined };

type ReplyRef = ActorRef<PipelineReply>;

/** What users send to a pipeline. */
export type PipelineCommand =
  | { readonly type: 'create'; readonly definition: unknown; readonly replyTo?: ReplyRef }
  | { readonly type: 'start'; readonly replyTo?: ReplyRef }
  | { readonly type: 'stop'; readonly reason: string; readonly replyTo?: ReplyRef }
  | { readonly type: 'pause'; readonly reason: string; readonly replyTo?: ReplyRef }
  | { readonly type: 'resume'; readonly replyTo?: ReplyRef }
  | { readonly type: 'reset'; readonly replyTo?: ReplyRef }
  | { readonly type: 'update-config'; readonly definition: unknown; readonly replyTo?: ReplyRef }
  /** Pushes a batch into a running pipeline (in addition to its source); answered once it is checkpointed. */
  | { readonly type: 'ingest'; readonly batchId: string; readonly records: readonly DataRecord[]; readonly replyTo?: ReplyRef }
  | { readonly type: 'get-state'; readonly replyTo: ActorRef<PipelineState> };

/** Messages the pipeline sends itself; `gen` ties an answer to the connector generation that asked. */
type Internal =
  | { readonly type: '$loaded'; readonly state: PipelineState }
  | { readonly type: '$decided'; readonly command: PipelineCommand['type']; readonly reply: EntityReply; readonly replyTo: ReplyRef | undefined }
  | { readonly type: '$opened'; readonly gen: number; readonly result: WorkerResult<undefined> }
  | { readonly type: '$polled'; readonly gen: number; readonly result: WorkerResult<SourceBatch> }
  | { readonly type: '$dead-lettered'; readonly gen: number; readonly result: WorkerResult<undefined> }
  | { readonly type: '$written'; readonly gen: number; readonly result: WorkerResult<SinkWriteResult> }
  | { readonly type: '$checkpointed'; readonly gen: number; readonly reply: EntityReply }
  | { readonly type: '$acked'; readonly gen: number; readonly sourceDone: boolean; readonly result: WorkerResult<undefined> }
  | { readonly type: '$failure-decided'; readonly reply: EntityReply }
  | { readonly type: '$batch-timeout'; readonly gen: number; readonly batchId: string }
  | { readonly type: '$retry-due' };

type Message = PipelineCommand | Internal;

/** A refusal of the pipeline actor itself (not of the state machine). */
export class PipelineUnavailableError extends DataflowError<'pipeline/unavailable'> {
  constructor(
    readonly pipelineId: string,
    reason: string,
    options: { retriable: boolean; cause?: unknown },
  ) {
    super('pipeline/unavailable', `Pipeline ${pipelineId} is unavailable: ${reason}`, options);
  }
}

/** A record failed a stage whose error policy is `fail`. */
export class StageFailedError extends DataflowError<'pipeline/stage-failed'> {
  constructor(
    readonly stage: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super('pipeline/stage-failed', `Stage ${stage} failed a record: ${message}`, { retriable: false, ...options });
  }
}

interface ActiveBatch {
  readonly batchId: string;
  readonly input: number;
  readonly offset: SourceOffset;
  readonly startedAt: number;
  readonly external: ReplyRef | undefined;
  sourceDone: boolean;
  output: readonly DataRecord[];
  letters: DeadLetter[];
  failed: number;
  transformStates: unknown[];
  position: SinkPosition | null;
  /** Transformed, waiting for the previous batch's checkpoint before any side effect. */
  waiting: boolean;
}

interface Run {
  readonly gen: number;
  readonly abort: AbortController;
  readonly source: ActorRef<SourceWorkerMessage>;
  readonly sink: ActorRef<SinkWorkerMessage>;
  readonly deadLetters: ActorRef<DeadLetterWorkerMessage> | undefined;
  readonly transforms: readonly Transform[];
  /** Stateful transform states as of the last checkpoint. */
  transformStates: unknown[];
  opening: number;
  /** The batch going through transforms, dead letters and the sink. */
  active: ActiveBatch | undefined;
  /** The batch whose checkpoint is being written; the next one is prepared meanwhile. */
  pending: ActiveBatch | undefined;
  polling: boolean;
}

const NOT_LOADED: PipelineState = { status: 'empty' };

class PipelineRuntime {
  private state: PipelineState = NOT_LOADED;
  private loaded = false;
  private entity!: ActorRef<EntityCommand>;
  private run: Run | undefined;
  private gen = 0;
  private readonly queued: { batchId: string; records: readonly DataRecord[]; replyTo: ReplyRef | undefined }[] = [];
  /** Commands that arrived before recovery finished. */
  private readonly early: PipelineCommand[] = [];

  constructor(
    private readonly options: PipelineActorOptions,
    private readonly ctx: ActorContext<Message>,
  ) {}

  private get id(): string {
    return this.options.pipelineId;
  }

  private now(): number {
    return this.ctx.system.clock.now();
  }

  start(): void {
    this.entity = spawnEventSourced(
      this.ctx,
      pipelineEntity({
        now: () => this.now(),
        random: this.options.random ?? Math.random,
        ...(this.options.snapshotEvery === undefined ? {} : { snapshotEvery: this.options.snapshotEvery }),
      }),
      this.id,
      { persistence: this.options.persistence, name: 'entity' },
    );
    this.entity.tell({ type: 'get-state', replyTo: this.adapt((state: PipelineState) => ({ type: '$loaded', state })) });
  }

  /** A ref that turns a reply into one of this actor's own messages. */
  private adapt<R>(wrap: (reply: R) => Internal): ActorRef<R> {
    const self = this.ctx.self;
    return { path: `${self.path}#adapter`, tell: (reply: R) => self.tell(wrap(reply)) };
  }

  handle(message: Message): void {
    if (!this.loaded && message.type !== '$loaded') {
      if (message.type.startsWith('$')) return;
      this.early.push(message as PipelineCommand);
      return;
    }
    switch (message.type) {
      case '$loaded':
        this.loaded = true;
        this.changed(message.state);
        if (message.state.status === 'running') this.openRun();
        for (const command of this.early.splice(0)) this.handle(command);
        return;
      case 'get-state':
        message.replyTo.tell(this.state);
        return;
      case 'create':
      case 'update-config': {
        const validation = validatePipelineDefinition(message.definition);
        if (!validation.ok) {
          message.replyTo?.tell({ ok: false, error: new InvalidPipelineDefinitionError(validation.issues), state: this.state });
          return;
        }
        const decision: PipelineDecision =
          message.type === 'create'
            ? { type: 'create', pipelineId: this.id, definition: validation.definition }
            : { type: 'update-config', definition: validation.definition };
        this.decide(message.type, decision, message.replyTo);
        return;
      }
      case 'start':
      case 'resume':
      case 'reset':
        this.decide(message.type, { type: message.type }, message.replyTo);
        return;
      case 'stop':
      case 'pause':
        this.decide(message.type, { type: message.type, reason: message.reason }, message.replyTo);
        return;
      case 'ingest':
        this.ingest(message);
        return;
      case '$decided':
        this.decided(message.command, message.reply, message.replyTo);
        return;
      case '$failure-decided':
        this.failureDecided(message.reply);
        return;
      case '$retry-due':
        if (this.state.status === 'running' && this.run === undefined) this.openRun();
        return;
      default:
        this.execution(message);
    }
  }

  private decide(command: PipelineCommand['type'], decision: PipelineDecision, replyTo: ReplyRef | undefined): void {
    this.entity.tell({
      type: 'decide',
      decision,
      replyTo: this.adapt((reply: EntityReply) => ({ type: '$decided', command, reply, replyTo })),
    });
  }

  private decided(command: PipelineCommand['type'], reply: EntityReply, replyTo: ReplyRef | undefined): void {
    this.changed(reply.state);
    if (!reply.ok) {
      replyTo?.tell({ ok: false, error: reply.error, state: reply.state });
      return;
    }
    replyTo?.tell({ ok: true, state: reply.state });
    const status = reply.state.status;
    if (command === 'stop' || status === 'stopped' || status === 'failed') {
      this.closeRun('the pipeline stopped');
      return;
    }
    if (status === 'running') {
      if (this.run === undefined) this.openRun();
      else this.next();
    }
  }

  /** Records a new state; tells listeners when anything changed. */
  private changed(state: PipelineState): void {
    const before = this.state;
    this.state = state;
    if (before === state) return;
    if (before.status !== state.status) {
      this.ctx.system.events.emit({ type: 'pipeline.status.changed', pipelineId: this.id, from: before.status, to: state.status });
    }
    this.options.onStateChange?.(state);
  }

  // ---- execution ----------------------------------------------------------------

  private openRun(): void {
    if (this.state.status !== 'running' || this.run !== undefined) return;
    const definition = this.state.definition;
    const checkpoint = this.state.checkpoint;
    const gen = ++this.gen;
    const abort = new AbortController();
    let source: Source;
    let sink: Sink;
    let deadLetterTarget: DeadLetterTarget | undefined;
    let transforms: Transform[];
    try {
      transforms = definition.transforms.map((t, i) =>
        createTransform(t, { stage: `transforms[${i}]`, ...(this.options.lookups === undefined ? {} : { lookups: this.options.lookups }) }),
      );
      source = this.options.connectors.createSource(definition.source);
      sink = this.options.connectors.createSink(definition.sink);
      deadLetterTarget = definition.deadLetter === undefined ? undefined : this.options.connectors.createDeadLetterTarget(definition.deadLetter);
    } catch (error) {
      this.reportFailure(undefined, error);
      return;
    }
    // Workers answer connector failures instead of throwing; a worker that
    // crashes anyway stops (the default policy) and the pipeline re-drives the
    // batch from its checkpoint with fresh connectors (see `signal`).
    const run: Run = {
      gen,
      abort,
      source: this.ctx.spawn(sourceWorker(source, this.id, abort.signal), `source-${gen}`),
      sink: this.ctx.spawn(sinkWorker(sink, this.id, abort.signal), `sink-${gen}`),
      deadLetters: deadLetterTarget === undefined ? undefined : this.ctx.spawn(deadLetterWorker(deadLetterTarget), `dead-letters-${gen}`),
      transforms,
      transformStates: transforms.map((t, i) =>
        t.kind === 'stateful' ? (checkpoint?.transformStates?.[i] ?? t.initialState()) : null,
      ),
      opening: deadLetterTarget === undefined ? 2 : 3,
      active: undefined,
      pending: undefined,
      polling: false,
    };
    this.run = run;
    const opened = this.adapt((result: WorkerResult<undefined>) => ({ type: '$opened', gen, result }));
    run.source.tell({ type: 'open', checkpoint: checkpoint?.sourceOffset ?? undefined, replyTo: opened });
    run.sink.tell({ type: 'open', checkpoint: checkpoint?.sinkPosition ?? undefined, replyTo: opened });
    run.deadLetters?.tell({ type: 'open', replyTo: opened });
  }

  /** Stops the connectors of the current run; its late answers are ignored. */
  private closeRun(reason: string): void {
    const run = this.run;
    if (run === undefined) return;
    this.run = undefined;
    for (const batch of [run.active, run.pending]) if (batch !== undefined) this.ctx.timers.cancel(timeoutKey(batch.batchId));
    run.abort.abort(new PipelineUnavailableError(this.id, reason, { retriable: true }));
    this.ctx.stop(run.source);
    this.ctx.stop(run.sink);
    if (run.deadLetters !== undefined) this.ctx.stop(run.deadLetters);
    for (const batch of [run.active, run.pending]) {
      batch?.external?.tell({ ok: false, error: new PipelineUnavailableError(this.id, reason, { retriable: true }), state: this.state });
    }
    if (this.state.status !== 'running') {
      for (const waiting of this.queued.splice(0)) {
        waiting.replyTo?.tell({ ok: false, error: new PipelineUnavailableError(this.id, reason, { retriable: true }), state: this.state });
      }
    }
  }

  private execution(message: Exclude<Internal, { type: '$loaded' | '$decided' | '$failure-decided' | '$retry-due' }>): void {
    const run = this.run;
    if (run === undefined || message.gen !== run.gen) return;
    switch (message.type) {
      case '$opened':
        if (!message.result.ok) {
          this.reportFailure(undefined, message.result.error);
          return;
        }
        run.opening--;
        if (run.opening === 0) this.next();
        return;
      case '$polled':
        run.polling = false;
        if (!message.result.ok) {
          this.reportFailure(undefined, message.result.error);
          return;
        }
        this.polled(run, message.result.value);
        return;
      case '$dead-lettered':
        if (!message.result.ok) {
          this.reportFailure(run.active?.batchId, message.result.error);
          return;
        }
        this.write(run);
        return;
      case '$written':
        this.written(run, message.result);
        return;
      case '$checkpointed':
        this.checkpointed(run, message.reply);
        return;
      case '$acked':
        if (!message.result.ok) {
          // The checkpoint is durable: a failed acknowledgement only means the
          // source may deliver these records again, which the checkpointed
          // offset (and idempotent ingest) absorbs. Re-open from the checkpoint.
          this.reportFailure(undefined, message.result.error);
          return;
        }
        if (message.sourceDone && this.queued.length === 0) {
          this.decide('stop', { type: 'stop', reason: 'the source is exhausted' }, undefined);
          return;
        }
        this.next();
        return;
      case '$batch-timeout':
        if (run.active?.batchId !== message.batchId && run.pending?.batchId !== message.batchId) return;
        this.timedOut(message.batchId);
        return;
    }
  }

  /** Decides what the run does next when it is idle. */
  private next(): void {
    const run = this.run;
    if (run === undefined || run.opening > 0 || run.active !== undefined || run.polling) return;
    if (this.state.status !== 'running' || run.pending?.sourceDone === true) return;
    const external = this.queued.shift();
    if (external !== undefined) {
      const offset = run.pending?.offset ?? this.state.checkpoint?.sourceOffset ?? null;
      this.process(run, external.batchId, external.records.map((value) => ({ ok: true as const, value })), offset, false, external.replyTo);
      return;
    }
    run.polling = true;
    const { size, maxWaitMs } = this.state.definition.batch;
    run.source.tell({
      type: 'poll',
      maxRecords: size,
      maxWaitMs,
      replyTo: this.adapt((result: WorkerResult<SourceBatch>) => ({ type: '$polled', gen: run.gen, result })),
    });
  }

  private polled(run: Run, batch: SourceBatch): void {
    if (this.state.status === 'empty') return;
    if (batch.records.length === 0) {
      if (batch.done) {
        // Finish the batch being checkpointed first: its acknowledgement stops the pipeline.
        if (run.pending !== undefined && run.pending.external === undefined) run.pending.sourceDone = true;
        else this.decide('stop', { type: 'stop', reason: 'the source is exhausted' }, undefined);
        return;
      }
      this.next();
      return;
    }
    // Batches are numbered from the journal, plus the one whose checkpoint is being written.
    const batchId = `${this.id}:${this.state.metrics.batches + 1 + (run.pending === undefined ? 0 : 1)}`;
    this.process(run, batchId, batch.records, batch.offset, batch.done, undefined);
  }

  private process(
    run: Run,
    batchId: string,
    records: SourceBatch['records'],
    offset: SourceOffset,
    sourceDone: boolean,
    external: ReplyRef | undefined,
  ): void {
    if (this.state.status === 'empty') return;
    const definition = this.state.definition;
    const startedAt = this.now();
    const attempt = this.state.retry?.batchId === batchId ? this.state.retry.attempt + 1 : 1;
    const active: ActiveBatch = {
      batchId,
      input: records.length,
      offset,
      startedAt,
      external,
      sourceDone,
      output: [],
      letters: [],
      failed: 0,
      // Stateful transforms continue from the batch before, checkpointed or not yet.
      transformStates: [...(run.pending?.transformStates ?? run.transformStates)],
      position: null,
      waiting: false,
    };
    run.active = active;
    this.ctx.timers.startSingle(timeoutKey(batchId), { type: '$batch-timeout', gen: run.gen, batchId }, definition.batchTimeoutMs);

    try {
      // Records the source could not parse.
      let current: DataRecord[] = [];
      const unreadable: { payload: JsonValue; reason: string }[] = [];
      for (const record of records) {
        if (record.ok) current.push(record.value);
        else unreadable.push({ payload: record.raw, reason: record.reason });
      }
      for (const bad of unreadable) {
        this.onRecordFailure(active, definition.source.onError, 'source', definition.source.type, bad.payload, { message: bad.reason, retriable: false }, attempt);
      }
      // Transforms, in order.
      const context = { now: startedAt };
      run.transforms.forEach((transform, i) => {
        const stageDef = definition.transforms[i];
        const policy: StageErrorPolicy = stageDef?.onError ?? 'fail';
        let failures: readonly RecordFailure[];
        if (transform.kind === 'stateful') {
          const result = transform.apply(active.transformStates[i], current, context);
          active.transformStates[i] = result.state;
          current = [...result.records];
          failures = result.failures;
        } else {
          const result = transform.apply(current, context);
          if (result instanceof Promise) throw new StageFailedError(transform.stage, 'asynchronous transforms must run through enrich lookups');
          current = [...result.records];
          failures = result.failures;
        }
        for (const failure of failures) {
          this.onRecordFailure(
            active,
            policy,
            'transform',
            `${failure.stage}:${transform.type}`,
            failure.record,
            { message: failure.error.message, tag: failure.error.tag, retriable: false },
            attempt,
          );
        }
      });
      active.output = current;
    } catch (error) {
      this.reportFailure(batchId, error);
      return;
    }
    if (run.pending !== undefined) {
      // No side effect of this batch before the previous one is checkpointed.
      active.waiting = true;
      return;
    }
    this.sendDeadLetters(run);
  }

  /** Applies a stage's error policy to one failed record. */
  private onRecordFailure(
    active: ActiveBatch,
    policy: StageErrorPolicy,
    stage: PipelineStage,
    stageName: string,
    payload: JsonValue,
    error: FailureInfo,
    attempt: number,
  ): void {
    if (policy === 'fail') throw new StageFailedError(stageName, error.message);
    active.failed++;
    if (policy === 'dead-letter') {
      active.letters.push({
        pipelineId: this.id,
        stage,
        stageName,
        error: error.tag === undefined ? { message: error.message, retriable: error.retriable } : error,
        attempt,
        payload,
        batchId: active.batchId,
        failedAt: this.now(),
      });
    }
  }

  private sendDeadLetters(run: Run): void {
    const active = run.active;
    if (active === undefined) return;
    if (active.letters.length === 0) {
      this.write(run);
      return;
    }
    if (run.deadLetters === undefined) {
      this.reportFailure(active.batchId, new StageFailedError('deadLetter', 'records were dead-lettered but the pipeline has no deadLetter target'));
      return;
    }
    run.deadLetters.tell({
      type: 'send',
      letters: active.letters,
      replyTo: this.adapt((result: WorkerResult<undefined>) => ({ type: '$dead-lettered', gen: run.gen, result })),
    });
  }

  private write(run: Run): void {
    const active = run.active;
    if (active === undefined) return;
    if (active.output.length === 0) {
      active.position = this.state.status === 'empty' ? null : (this.state.checkpoint?.sinkPosition ?? null);
      this.checkpoint(run);
      return;
    }
    run.sink.tell({
      type: 'write',
      batch: { batchId: active.batchId, records: active.output },
      replyTo: this.adapt((result: WorkerResult<SinkWriteResult>) => ({ type: '$written', gen: run.gen, result })),
    });
  }

  private written(run: Run, result: WorkerResult<SinkWriteResult>): void {
    const active = run.active;
    if (active === undefined || this.state.status === 'empty') return;
    const sinkDef = this.state.definition.sink;
    if (!result.ok) {
      const failure = classifyFailure(result.error);
      const attempt = this.state.retry?.batchId === active.batchId ? this.state.retry.attempt + 1 : 1;
      const exhausted = !failure.retriable || attempt > this.state.definition.retry.maxRetries;
      if (exhausted && sinkDef.onError !== 'fail') {
        // The sink gave up on the whole batch: its error policy takes the records.
        const letters = active.output.map((record) => ({ record, failure }));
        active.output = [];
        for (const { record } of letters) {
          this.onRecordFailure(active, sinkDef.onError, 'sink', sinkDef.type, record, failure, attempt);
        }
        this.sendDeadLettersThenCheckpoint(run);
        return;
      }
      this.reportFailure(active.batchId, result.error);
      return;
    }
    active.position = result.value.position ?? null;
    const rejected = result.value.rejected ?? [];
    if (rejected.length > 0) {
      const before = active.letters.length;
      try {
        for (const r of rejected) {
          const record = active.output[r.index];
          if (record === undefined) continue;
          this.onRecordFailure(active, sinkDef.onError, 'sink', sinkDef.type, record, { message: r.reason, retriable: false }, 1);
        }
      } catch (error) {
        this.reportFailure(active.batchId, error);
        return;
      }
      if (active.letters.length > before) {
        const fresh = active.letters.slice(before);
        active.letters = fresh;
        this.sendDeadLettersThenCheckpoint(run);
        return;
      }
    }
    this.checkpoint(run);
  }

  /** Dead letters found at the sink go out before the checkpoint, so none is lost on a crash. */
  private sendDeadLettersThenCheckpoint(run: Run): void {
    const active = run.active;
    if (active === undefined) return;
    if (active.letters.length === 0 || run.deadLetters === undefined) {
      if (active.letters.length > 0) {
        this.reportFailure(active.batchId, new StageFailedError('deadLetter', 'records were dead-lettered but the pipeline has no deadLetter target'));
        return;
      }
      this.checkpoint(run);
      return;
    }
    const letters = active.letters;
    active.letters = [];
    run.deadLetters.tell({
      type: 'send',
      letters,
      replyTo: this.adapt((result: WorkerResult<undefined>) =>
        result.ok ? { type: '$written', gen: run.gen, result: { ok: true, value: active.position === null ? {} : { position: active.position } } } : { type: '$dead-lettered', gen: run.gen, result },
      ),
    });
  }

  private checkpoint(run: Run): void {
    const active = run.active;
    if (active === undefined) return;
    run.active = undefined;
    run.pending = active;
    const stateful = run.transforms.some((t) => t.kind === 'stateful');
    this.entity.tell({
      type: 'decide',
      decision: {
        type: 'complete-batch',
        batchId: active.batchId,
        recordCount: active.input,
        sourceOffset: active.offset,
        sinkPosition: active.position,
        transformStates: stateful ? active.transformStates : null,
        successCount: active.input - active.failed,
        failureCount: active.failed,
        deadLetterCount: countDeadLettered(active),
        processingMs: Math.max(0, this.now() - active.startedAt),
      },
      replyTo: this.adapt((reply: EntityReply) => ({ type: '$checkpointed', gen: run.gen, reply })),
    });
    // Prepare the next batch (poll and transform) while the checkpoint is written.
    this.next();
  }

  private checkpointed(run: Run, reply: EntityReply): void {
    const done = run.pending;
    if (done === undefined) return;
    this.changed(reply.state);
    if (!reply.ok) {
      this.reportFailure(done.batchId, reply.error);
      return;
    }
    run.pending = undefined;
    this.ctx.timers.cancel(timeoutKey(done.batchId));
    run.transformStates = done.transformStates;
    this.ctx.system.events.emit({
      type: 'pipeline.batch.completed',
      pipelineId: this.id,
      batchId: done.batchId,
      records: done.input,
      succeeded: done.input - done.failed,
      failed: done.failed,
      deadLettered: countDeadLettered(done),
      durationMs: Math.max(0, this.now() - done.startedAt),
    });
    if (done.external !== undefined) {
      done.external.tell({ ok: true, state: reply.state, duplicate: reply.duplicate });
    } else {
      run.source.tell({
        type: 'ack',
        offset: done.offset,
        replyTo: this.adapt((result: WorkerResult<undefined>) => ({ type: '$acked', gen: run.gen, sourceDone: done.sourceDone, result })),
      });
    }
    const next = run.active;
    if (next?.waiting === true) {
      next.waiting = false;
      this.sendDeadLetters(run);
      return;
    }
    if (done.external !== undefined || !done.sourceDone) this.next();
  }

  private ingest(command: Extract<PipelineCommand, { type: 'ingest' }>): void {
    const state = this.state;
    if (state.status !== 'empty' && state.recentBatchIds.includes(command.batchId)) {
      command.replyTo?.tell({ ok: true, state, duplicate: true });
      return;
    }
    if (state.status !== 'running') {
      this.decide('ingest', { type: 'ingest', batchId: command.batchId }, command.replyTo);
      return;
    }
    if (this.queued.some((q) => q.batchId === command.batchId) || this.run?.active?.batchId === command.batchId) {
      command.replyTo?.tell({
        ok: false,
        error: new PipelineUnavailableError(this.id, `batch ${command.batchId} is already being processed`, { retriable: true }),
        state,
      });
      return;
    }
    if (this.queued.length >= (this.options.maxQueuedIngests ?? 16)) {
      command.replyTo?.tell({
        ok: false,
        error: new PipelineUnavailableError(this.id, `${this.queued.length} ingested batches are already waiting`, { retriable: true }),
        state,
      });
      return;
    }
    this.queued.push({ batchId: command.batchId, records: command.records, replyTo: command.replyTo });
    this.next();
  }

  // ---- failures --------------------------------------------------------------------

  private timedOut(batchId: string): void {
    if (this.state.status === 'empty') return;
    const timeoutMs = this.state.definition.batchTimeoutMs;
    this.ctx.system.events.emit({
      type: 'pipeline.batch.failed',
      pipelineId: this.id,
      batchId,
      error: new PipelineUnavailableError(this.id, `batch ${batchId} timed out after ${timeoutMs} ms`, { retriable: true }),
      retriable: true,
    });
    this.closeRun(`batch ${batchId} timed out`);
    this.entity.tell({
      type: 'decide',
      decision: { type: 'batch-timeout', batchId, timeoutMs },
      replyTo: this.adapt((reply: EntityReply) => ({ type: '$failure-decided', reply })),
    });
  }

  /** Records a failure in the journal (retry or fail) and stops the current run. */
  private reportFailure(batchId: string | undefined, error: unknown): void {
    const failure = classifyFailure(error);
    this.ctx.system.events.emit({ type: 'pipeline.batch.failed', pipelineId: this.id, batchId, error, retriable: failure.retriable });
    this.closeRun(`a stage failed: ${failure.message}`);
    this.entity.tell({
      type: 'decide',
      decision: { type: 'report-failure', batchId: batchId ?? `${this.id}:connectors`, error: failure },
      replyTo: this.adapt((reply: EntityReply) => ({ type: '$failure-decided', reply })),
    });
  }

  private failureDecided(reply: EntityReply): void {
    this.changed(reply.state);
    if (!reply.ok) return;
    const retry = reply.events.find((e) => e.type === 'RetryScheduled');
    if (retry?.type === 'RetryScheduled' && reply.state.status === 'running') {
      this.ctx.timers.startSingle('retry', { type: '$retry-due' }, retry.backoffMs);
    }
  }

  signal(signal: Signal): void {
    if (signal.type === 'child-terminated' && signal.ref === (this.entity as AnyActorRef)) {
      // The journal refused this incarnation (another writer, or an unrecoverable journal): stop rather than fork history.
      this.closeRun('its journal entity stopped');
      this.ctx.stopSelf();
      return;
    }
    const run = this.run;
    if (signal.type === 'child-terminated' && run !== undefined) {
      const ours = [run.source, run.sink, run.deadLetters].some((ref) => (ref as AnyActorRef | undefined) === signal.ref);
      if (ours && signal.reason.type === 'failed') this.reportFailure(run.active?.batchId, signal.reason.error);
    }
  }

  stopped(): void {
    this.closeRun('the pipeline actor stopped');
    for (const command of this.early.splice(0)) {
      if ('replyTo' in command && command.replyTo !== undefined && command.type !== 'get-state') {
        command.replyTo.tell({ ok: false, error: new PipelineUnavailableError(this.id, 'it stopped', { retriable: true }), state: undefined });
      }
    }
  }
}

function timeoutKey(batchId: string): string {
  return `batch-timeout:${batchId}`;
}

function countDeadLettered(active: ActiveBatch): number {
  return active.letters.length;
}

/**
 * The behavior of a pipeline actor. Spawn one per pipeline id; it recovers
 * from the journal and, if the pipeline was running, resumes from its last
 * checkpoint.
 *
 * @example
 * ```ts
 * const orders = system.spawn(pipelineActor({ pipelineId: 'orders', persistence, connectors }), 'pipeline-orders');
 * const created = await ask(orders, (replyTo) => ({ type: 'create', definition, replyTo }), { timeoutMs: 5_000 });
 * await ask(orders, (replyTo) => ({ type: 'start', replyTo }), { timeoutMs: 5_000 });
 * ```
 */
export function pipelineActor(options: PipelineActorOptions): Behavior<PipelineCommand, PipelineRuntime> {
  const inner: Behavior<Message, PipelineRuntime> = behavior<Message, PipelineRuntime>({
    initialState: () => undefined as unknown as PipelineRuntime,
    onStart: (_state, ctx) => {
      const runtime = new PipelineRuntime(options, ctx);
      runtime.start();
      return runtime;
    },
    onMessage: (runtime, message) => {
      runtime.handle(message);
      return runtime;
    },
    onSignal: (runtime, signal) => {
      runtime.signal(signal);
      return runtime;
    },
    onStop: (runtime) => {
      runtime.stopped();
    },
  });
  return inner;
}

/** True for the typed refusals and failures of a pipeline command. */
export function isPipelineRefusal(error: unknown): boolean {
  return isDataflowError(error) && (error.tag.startsWith('pipeline/') || error.tag === 'pipeline/invalid-definition');
}
