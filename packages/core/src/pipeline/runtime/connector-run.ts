/**
 * One generation of a pipeline's connectors: the source, sink and dead-letter
 * target created for one attempt, opened from the last checkpoint, and closed
 * when the attempt ends (a retry opens a new generation). The pipeline actor
 * calls them directly and gets the outcomes through `ctx.pipeToSelf`, so a
 * batch costs no hop through worker actors; calls to one connector are
 * serialised here (the batch cycle never asks for two at once, except an ack
 * behind a poll), and `close` runs after the connector's last call settled.
 *
 * Every generation has its own abort signal: `abort()` fires it (at a retry,
 * a stop, and in the actor's pre-stop phase), so a connector waiting on I/O
 * returns and `close` can follow.
 *
 * Two things happen around a poll, off the per-batch path of the actor:
 * with a `rateLimit` in the definition the records read are admitted by the
 * `RateLimiter` (in pieces of at most `burst`) before the batch is handed on,
 * and a source with `lag()` is asked for its lag at most every
 * `lagIntervalMs`, outside the source's lane (it never delays a poll), the
 * answer reported as a `pipeline.source.lag` event.
 */
import type { DeadLetter, DeadLetterTarget } from '../../connector/dead-letter.js';
import type { Sink, SinkBatch, SinkPosition, SinkWriteResult } from '../../connector/sink.js';
import type { Source, SourceBatch, SourceOffset, SourceTask } from '../../connector/source.js';
import type { ActorContext } from '../../actor/actor-context.js';
import type { InstrumentationEvent } from '../../instrumentation/instrumentation.js';
import { resolveRateLimit, type RateLimit, type RateLimiter } from '../../rate-limit/rate-limiter.js';
import type { PipelineDefinition } from '../definition/pipeline-definition.js';
import { pipelineTaskOf } from '../definition/pipeline-tasks.js';
import { createTransform } from '../../transforms/create-transform.js';
import type { LookupSource } from '../../transforms/enrich/lookup-source.js';
import type { ConfiguredPipelineState } from '../model/pipeline-state.js';
import { openCycle } from './batch-cycle.js';
import type { BatchCycle, CycleEffect, CycleEvent, QueuedIngest } from './batch-cycle-types.js';
import { prepareBatch, prepareFlush, type PreparationPlan } from './batch-preparation.js';
import './pipeline-instrumentation.js';
import type { ConnectorFactory } from './pipeline-protocol.js';

/** How often a source's lag is sampled by default, ms. */
export const DEFAULT_LAG_INTERVAL_MS = 5_000;

/** What a generation needs beyond its connectors: the rate limiter and how often to sample the source's lag. */
export interface ConnectorRunOptions {
  /** Admits the records of each poll when the definition has a `rateLimit` (without one, no limit applies). */
  readonly rateLimiter?: RateLimiter;
  /** Least time between two lag samples, ms (default {@link DEFAULT_LAG_INTERVAL_MS}). */
  readonly lagIntervalMs?: number;
}

/** Calls on one connector, one at a time, in order. */
class SerialLane {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(call: () => Promise<T>): Promise<T> {
    const result = this.tail.then(call);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Resolves once every call queued so far settled. */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}

/** The connectors of one generation and the chain they run. */
export class ConnectorRun {
  readonly plan: PreparationPlan;
  readonly pipelinedWrites: boolean;
  /** The sink commits source offsets itself (C1): the source is opened with `offsetsCommittedBySink`. */
  readonly commitsSourceOffsets: boolean;
  readonly hasDeadLetterTarget: boolean;
  private readonly abortController = new AbortController();
  private readonly sourceLane = new SerialLane();
  private readonly sinkLane = new SerialLane();
  private readonly deadLetterLane = new SerialLane();
  private readonly opened = { source: false, sink: false, deadLetters: false };
  private closing: Promise<void> | undefined;
  private readonly rateLimit: RateLimit | undefined;
  private readonly lagIntervalMs: number;
  private nextLagAt = Number.NEGATIVE_INFINITY;
  private lagInFlight = false;

  private constructor(
    readonly gen: number,
    readonly pipelineId: string,
    definition: PipelineDefinition,
    transforms: PreparationPlan['transforms'],
    private readonly source: Source,
    private readonly sink: Sink,
    private readonly deadLetters: DeadLetterTarget | undefined,
    private readonly options: ConnectorRunOptions,
  ) {
    this.plan = { definition, transforms, stateful: transforms.some((t) => t.kind === 'stateful') };
    this.commitsSourceOffsets = sink.commitsSourceOffsets === true;
    // A sink committing source offsets in its transaction gets one batch per checkpoint.
    this.pipelinedWrites = sink.pipelinedWrites === true && !this.commitsSourceOffsets;
    this.hasDeadLetterTarget = deadLetters !== undefined;
    this.rateLimit = options.rateLimiter === undefined ? undefined : resolveRateLimit(definition.rateLimit);
    this.lagIntervalMs = options.lagIntervalMs ?? DEFAULT_LAG_INTERVAL_MS;
  }

  /**
   * Creates the connectors and stages a definition names. Throws what the
   * factory or `createTransform` throws (an unknown lookup, bad options).
   */
  static create(
    gen: number,
    pipelineId: string,
    definition: PipelineDefinition,
    factory: ConnectorFactory,
    lookups: Readonly<Record<string, LookupSource>> | undefined,
    options: ConnectorRunOptions = {},
  ): ConnectorRun {
    const transforms = definition.transforms.map((t, i) => createTransform(t, { stage: `transforms[${i}]`, ...(lookups === undefined ? {} : { lookups }) }));
    const source = factory.createSource(definition.source);
    const sink = factory.createSink(definition.sink);
    const deadLetters = definition.deadLetter === undefined ? undefined : factory.createDeadLetterTarget(definition.deadLetter);
    return new ConnectorRun(gen, pipelineId, definition, transforms, source, sink, deadLetters, options);
  }

  /**
   * The batch cycle of this generation, starting from the pipeline's last
   * checkpoint (stateful stages from their checkpointed states).
   */
  cycleFrom(state: ConfiguredPipelineState, queue: readonly QueuedIngest[], maxBatchesPerCheckpoint: number): BatchCycle {
    const checkpoint = state.checkpoint;
    return openCycle(
      {
        pipelineId: this.pipelineId,
        definition: this.plan.definition,
        stateful: this.plan.stateful,
        pipelinedWrites: this.pipelinedWrites,
        hasDeadLetterTarget: this.hasDeadLetterTarget,
        maxBatchesPerCheckpoint,
      },
      {
        recorded: state.metrics.batches,
        committedStates: this.plan.transforms.map((t, i) => (t.kind === 'stateful' ? (checkpoint?.transformStates?.[i] ?? t.initialState()) : null)),
        offset: checkpoint?.sourceOffset ?? null,
        position: checkpoint?.sinkPosition ?? null,
        retry: state.retry === null ? null : { batchId: state.retry.batchId, attempt: state.retry.attempt },
        queue,
      },
    );
  }

  get signal(): AbortSignal {
    return this.abortController.signal;
  }

  /** The source's `task` when this entity is a task of a pipeline with parallelism > 1 (or a task id whatever the definition says). */
  private taskContext(): { task?: SourceTask } {
    const task = pipelineTaskOf(this.pipelineId);
    const count = Math.max(this.plan.definition.parallelism ?? 1, task.index + 1);
    return count > 1 ? { task: { pipelineId: task.pipelineId, index: task.index, count } } : {};
  }

  /** Opens every connector from the checkpoint; rejects with the first failure. */
  open(sourceOffset: SourceOffset | undefined, sinkPosition: SinkPosition | undefined): Promise<void> {
    const signal = this.signal;
    const pipelineId = this.pipelineId;
    const opening: Promise<void>[] = [
      this.sourceLane.run(async () => {
        await this.source.open({
          pipelineId,
          checkpoint: sourceOffset,
          signal,
          ...(this.commitsSourceOffsets ? { offsetsCommittedBySink: true } : {}),
          ...this.taskContext(),
        });
        this.opened.source = true;
      }),
      this.sinkLane.run(async () => {
        await this.sink.open({ pipelineId, checkpoint: sinkPosition, signal });
        this.opened.sink = true;
      }),
    ];
    const deadLetters = this.deadLetters;
    if (deadLetters !== undefined) {
      opening.push(
        this.deadLetterLane.run(async () => {
          await deadLetters.open();
          this.opened.deadLetters = true;
        }),
      );
    }
    return Promise.all(opening).then(() => undefined);
  }

  /**
   * The next batch of the source, once its records are admitted by the rate
   * limiter (outside the source's lane: an ack is not held up by the wait).
   * Aborting the generation cuts the wait; the batch is then dropped unacknowledged.
   */
  poll(maxRecords: number, maxWaitMs: number): Promise<SourceBatch> {
    const polled = this.sourceLane.run(() => this.source.poll(maxRecords, maxWaitMs));
    const { rateLimit } = this;
    const limiter = this.options.rateLimiter;
    if (rateLimit === undefined || limiter === undefined) return polled;
    return polled.then(async (batch) => {
      for (let left = batch.records.length; left > 0; left -= rateLimit.burst) {
        await limiter.acquire({ pipelineId: this.pipelineId, records: Math.min(left, rateLimit.burst), limit: rateLimit }, this.signal);
      }
      return batch;
    });
  }

  /**
   * Asks the source for its lag when it has `lag()`, is open, no sample is in
   * flight and `lagIntervalMs` passed since the last one; `emit` hears the
   * answer (or the failure) unless the generation ended meanwhile.
   */
  sampleLag(now: number, emit: (event: InstrumentationEvent) => void): void {
    const source = this.source;
    if (source.lag === undefined || !this.opened.source || this.lagInFlight || now < this.nextLagAt || this.signal.aborted) return;
    this.lagInFlight = true;
    this.nextLagAt = now + this.lagIntervalMs;
    const { pipelineId } = this;
    const sourceType = source.type;
    source
      .lag()
      .then(
        (partitions) => {
          if (!this.signal.aborted) emit({ type: 'pipeline.source.lag', pipelineId, sourceType, partitions });
        },
        (error: unknown) => {
          if (!this.signal.aborted) emit({ type: 'pipeline.source.lag-failed', pipelineId, sourceType, error });
        },
      )
      .finally(() => (this.lagInFlight = false));
  }

  ack(offset: SourceOffset): Promise<void> {
    return this.sourceLane.run(() => this.source.ack(offset));
  }

  write(batch: SinkBatch): Promise<SinkWriteResult> {
    return this.sinkLane.run(() => this.sink.write(batch));
  }

  sendDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    const target = this.deadLetters;
    if (target === undefined) return Promise.reject(new Error('no dead-letter target'));
    return this.deadLetterLane.run(() => target.send(letters));
  }

  /** Fires the generation's abort signal: connectors waiting on I/O return. */
  abort(reason: unknown): void {
    if (!this.abortController.signal.aborted) this.abortController.abort(reason);
  }

  /**
   * Aborts, then closes each opened connector after its last call settled.
   * Never rejects: a failing close is returned in `errors` for the caller to report.
   */
  close(reason: unknown): Promise<unknown[]> {
    this.abort(reason);
    this.closing ??= (async () => {
      const errors: unknown[] = [];
      const closeAfter = async (lane: SerialLane, opened: () => boolean, close: () => Promise<void>) => {
        await lane.idle();
        if (!opened()) return;
        try {
          await close();
        } catch (error) {
          errors.push(error);
        }
      };
      const deadLetters = this.deadLetters;
      await Promise.all([
        closeAfter(this.sourceLane, () => this.opened.source, () => this.source.close()),
        closeAfter(this.sinkLane, () => this.opened.sink, () => this.sink.close()),
        ...(deadLetters === undefined ? [] : [closeAfter(this.deadLetterLane, () => this.opened.deadLetters, () => deadLetters.close())]),
      ]);
      this.closeErrors = errors;
    })();
    return this.closing.then(() => this.closeErrors);
  }

  private closeErrors: unknown[] = [];
}

/** The timer key of a batch's timeout. */
export function batchTimeoutKey(batchId: string): string {
  return `batch-timeout:${batchId}`;
}

/**
 * Performs a cycle effect that concerns the connectors of `run` (poll,
 * prepare, dead letters, write, ack) or a batch timer; returns false for the
 * others. Outcomes come back as cycle events through `ctx.pipeToSelf`, except
 * a preparation that completes synchronously (stages without enrich), which
 * is pushed on `pending` to be fed in the same handler.
 */
export function performConnectorEffect<M>(
  ctx: ActorContext<M>,
  run: ConnectorRun,
  effect: CycleEffect,
  toCycle: (event: CycleEvent) => M,
  pending: CycleEvent[],
): boolean {
  switch (effect.type) {
      case 'poll':
        run.sampleLag(ctx.system.clock.now(), (event) => ctx.system.events.emit(event));
        ctx.pipeToSelf(run.poll(effect.maxRecords, effect.maxWaitMs), (o) =>
          toCycle(o.ok ? { type: 'polled', batch: o.value } : { type: 'failed', batchId: undefined, error: o.error }),
        );
        return true;
      case 'prepare':
      case 'prepare-flush': {
        const batchId = effect.batch.batchId;
        const context = { pipelineId: run.pipelineId, batchId, now: ctx.system.clock.now(), attempt: effect.batch.attempt };
        try {
          const result =
            effect.type === 'prepare' ? prepareBatch(run.plan, effect.states, effect.records, context) : prepareFlush(run.plan, effect.states, context);
          if (result instanceof Promise) {
            ctx.pipeToSelf(result, (o) => toCycle(o.ok ? { type: 'prepared', batchId, result: o.value } : { type: 'failed', batchId, error: o.error }));
          } else {
            pending.push({ type: 'prepared', batchId, result });
          }
        } catch (error) {
          pending.push({ type: 'failed', batchId, error });
        }
        return true;
      }
      case 'send-dead-letters': {
        const batchId = effect.batchId;
        ctx.pipeToSelf(run.sendDeadLetters(effect.letters), (o) => toCycle(o.ok ? { type: 'dead-lettered', batchId } : { type: 'failed', batchId, error: o.error }));
        return true;
      }
      case 'write': {
        const batchId = effect.batchId;
        ctx.pipeToSelf(run.write({ batchId, records: effect.records, sourceOffset: effect.sourceOffset }), (o) =>
          toCycle(o.ok ? { type: 'written', batchId, result: o.value } : { type: 'write-failed', batchId, error: o.error }),
        );
        return true;
      }
      case 'ack':
        // Only a failed acknowledgement matters to the cycle: a success costs no message.
        run.ack(effect.offset).catch((error: unknown) => ctx.self.tell(toCycle({ type: 'failed', batchId: undefined, error })));
        return true;
      case 'arm-timeout':
        ctx.timers.startSingle(batchTimeoutKey(effect.batchId), toCycle({ type: 'timeout', batchId: effect.batchId }), effect.delayMs);
        return true;
      case 'cancel-timeout':
        ctx.timers.cancel(batchTimeoutKey(effect.batchId));
        return true;
    default:
      return false;
  }
}
