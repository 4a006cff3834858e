/**
 * The pipeline actor: one per pipeline. It hosts the pipeline's event-sourced
 * entity (the journal and the state machine), and wires the batch cycle
 * (`batch-cycle.ts`, pure) to the world: it performs the cycle's effects on
 * the connectors of the current generation (`connector-run.ts`) and on the
 * entity, and feeds their outcomes back through `ctx.pipeToSelf`. Outcomes
 * that are known at once (synchronous transforms) are fed back in the same
 * handler, without a mailbox hop.
 *
 * A transient failure (or a batch timeout) is recorded as `RetryScheduled`
 * and re-driven after the backoff by opening a new generation from the last
 * checkpoint; a permanent one, or the last retry, fails the pipeline. A
 * command the journal could not record is answered with its error; one the
 * pipeline sent itself (a failure, the end of the source) is sent again after
 * a backoff, so a journal outage delays the pipeline but never strands it.
 */
import type { ActorContext } from '../../actor/actor-context.js';
import type { ActorRef, AnyActorRef } from '../../actor/actor-ref.js';
import { ask } from '../../actor/ask.js';
import { behavior, type Behavior, type Signal } from '../../actor/behavior.js';
import { StatusReply } from '../../actor/status-reply.js';
import { DataflowError } from '../../errors/dataflow-error.js';
import { spawnEventSourced } from '../../event-sourcing/spawn-event-sourced.js';
import { backoffDelayMs } from '../../supervision/backoff.js';
import { InvalidPipelineDefinitionError } from '../definition/invalid-pipeline-definition-error.js';
import { validatePipelineDefinition } from '../definition/pipeline-definition.js';
import { classifyFailure } from '../model/classify-failure.js';
import type { CompletedBatch, PipelineDecision } from '../model/pipeline-decider.js';
import type { PipelineState } from '../model/pipeline-state.js';
import { prepareBatch, prepareFlush } from './batch-preparation.js';
import { batchesInFlight, openCycle, stepCycle, type BatchCycle, type CycleEffect, type CycleEvent, type QueuedIngest } from './batch-cycle.js';
import { ConnectorRun } from './connector-run.js';
import { pipelineEntity, type EntityCommand, type EntityOutcome, type EntityReply } from './pipeline-entity.js';
import './pipeline-instrumentation.js';
import {
  ingestBatchId,
  PipelineUnavailableError,
  type PipelineActorOptions,
  type PipelineCommand,
  type PipelineReplyRef,
} from './pipeline-protocol.js';

export * from './pipeline-protocol.js';

/** Messages the pipeline sends itself; `gen` ties an outcome to the connector generation that asked. */
type Internal =
  | { readonly type: '$loaded'; readonly state: PipelineState | undefined }
  | { readonly type: '$decided'; readonly command: PipelineCommand['type']; readonly outcome: Result; readonly replyTo: PipelineReplyRef | undefined }
  | { readonly type: '$cycle'; readonly gen: number; readonly event: CycleEvent }
  | { readonly type: '$checkpointed'; readonly gen: number; readonly batchId: string; readonly outcome: Result }
  | { readonly type: '$recorded'; readonly what: 'failure' | 'exhausted'; readonly outcome: Result }
  | { readonly type: '$retry-due' }
  | { readonly type: '$record-exhausted' };

type Result = { readonly ok: true; readonly value: EntityOutcome } | { readonly ok: false; readonly error: unknown };
type Message = PipelineCommand | Internal;

interface Generation {
  readonly run: ConnectorRun;
  cycle: BatchCycle;
}

const NOT_LOADED: PipelineState = { status: 'empty' };
const DEFAULT_JOURNAL_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_BATCHES_PER_CHECKPOINT = 16;

class PipelineRuntime {
  private state: PipelineState = NOT_LOADED;
  private loaded = false;
  private entity!: ActorRef<EntityCommand>;
  private current: Generation | undefined;
  private gen = 0;
  /** Ingests accepted while no generation runs (a retry's backoff); they seed the next one. */
  private waiting: QueuedIngest[] = [];
  private readonly ingestReplies = new Map<string, PipelineReplyRef | undefined>();
  /** Consecutive journal refusals of what the pipeline records itself, for the backoff. */
  private journalFailures = 0;
  private readonly early: PipelineCommand[] = [];
  private closing: Promise<unknown>[] = [];

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
    this.load();
  }

  private load(): void {
    const loading = ask<EntityCommand, PipelineState>(this.entity, (replyTo) => ({ type: 'get-state', replyTo }), { timeoutMs: this.journalTimeoutMs() });
    this.ctx.pipeToSelf(loading, (outcome) => ({ type: '$loaded', state: outcome.ok ? outcome.value : undefined }));
  }

  private journalTimeoutMs(): number {
    return this.options.journalTimeoutMs ?? DEFAULT_JOURNAL_TIMEOUT_MS;
  }

  /** Asks the entity to decide; resolves with the outcome, rejects with the refusal or the journal's error. */
  private askEntity(decision: PipelineDecision): Promise<EntityOutcome> {
    return ask<EntityCommand, unknown>(this.entity, (replyTo) => ({ type: 'decide', decision, replyTo: replyTo as ActorRef<EntityReply> }), {
      timeoutMs: this.journalTimeoutMs(),
    }).then((reply) => {
      if (StatusReply.isStatusReply(reply)) {
        if (reply.status === 'success') return reply.value as EntityOutcome;
        throw reply.error;
      }
      // An entity that cannot take commands answers with the error itself.
      throw reply instanceof Error ? reply : new PipelineUnavailableError(this.id, 'its journal entity gave no status', { retriable: true });
    });
  }

  private pipeEntity(decision: PipelineDecision, toMessage: (outcome: Result) => Internal): void {
    this.ctx.pipeToSelf(this.askEntity(decision), (outcome) => toMessage(outcome.ok ? { ok: true, value: outcome.value } : { ok: false, error: outcome.error }));
  }

  handle(message: Message): void {
    if (!this.loaded && message.type !== '$loaded') {
      if (message.type.startsWith('$')) return;
      this.early.push(message as PipelineCommand);
      return;
    }
    switch (message.type) {
      case '$loaded':
        if (message.state === undefined) {
          this.load();
          return;
        }
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
        this.decided(message.outcome, message.replyTo);
        return;
      case '$cycle':
        if (this.current?.run.gen === message.gen) this.feed(message.event);
        return;
      case '$checkpointed':
        this.checkpointed(message.gen, message.batchId, message.outcome);
        return;
      case '$recorded':
        this.recorded(message.what, message.outcome);
        return;
      case '$retry-due':
        if (this.state.status === 'running' && this.current === undefined) this.openRun();
        return;
      case '$record-exhausted':
        this.pipeEntity({ type: 'stop', reason: 'the source is exhausted' }, (outcome) => ({ type: '$recorded', what: 'exhausted', outcome }));
        return;
    }
  }

  private decide(command: PipelineCommand['type'], decision: PipelineDecision, replyTo: PipelineReplyRef | undefined): void {
    this.pipeEntity(decision, (outcome) => ({ type: '$decided', command, outcome, replyTo }));
  }

  private decided(outcome: Result, replyTo: PipelineReplyRef | undefined): void {
    if (!outcome.ok) {
      replyTo?.tell({ ok: false, error: asDataflowError(this.id, outcome.error), state: this.state });
      return;
    }
    this.changed(outcome.value.state);
    replyTo?.tell({ ok: true, state: outcome.value.state });
    this.followStatus();
  }

  /** Brings the connectors in line with the status. */
  private followStatus(): void {
    const status = this.state.status;
    const current = this.current;
    if (status === 'running') {
      if (current === undefined) this.openRun();
      else this.feed({ type: 'resume' });
    } else if (status === 'paused') {
      if (current !== undefined) this.feed({ type: 'pause' });
    } else if (status === 'stopped') {
      // Finish what is being written, flush open windows, then close.
      if (current !== undefined) this.feed({ type: 'drain' });
    } else if (current !== undefined) {
      this.closeRun(`the pipeline is ${status}`);
    }
    if (status !== 'running') this.refuseWaiting(`the pipeline is ${status}`);
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

  // ---- generations -------------------------------------------------------------------

  private openRun(): void {
    if (this.state.status !== 'running' || this.current !== undefined) return;
    const state = this.state;
    const gen = ++this.gen;
    let run: ConnectorRun;
    try {
      run = ConnectorRun.create(gen, this.id, state.definition, this.options.connectors, this.options.lookups);
    } catch (error) {
      this.reportFailure(undefined, error);
      return;
    }
    const checkpoint = state.checkpoint;
    const transforms = run.plan.transforms;
    const cycle = openCycle(
      { pipelineId: this.id, definition: state.definition, stateful: run.plan.stateful, pipelinedWrites: run.pipelinedWrites, hasDeadLetterTarget: run.hasDeadLetterTarget,
        maxBatchesPerCheckpoint: this.options.maxBatchesPerCheckpoint ?? DEFAULT_MAX_BATCHES_PER_CHECKPOINT,
      },
      {
        recorded: state.metrics.batches,
        committedStates: transforms.map((t, i) => (t.kind === 'stateful' ? (checkpoint?.transformStates?.[i] ?? t.initialState()) : null)),
        offset: checkpoint?.sourceOffset ?? null,
        position: checkpoint?.sinkPosition ?? null,
        retry: state.retry === null ? null : { batchId: state.retry.batchId, attempt: state.retry.attempt },
        queue: this.waiting.splice(0),
      },
    );
    this.current = { run, cycle };
    this.ctx.pipeToSelf(run.open(checkpoint?.sourceOffset ?? undefined, checkpoint?.sinkPosition ?? undefined), (outcome) => ({
      type: '$cycle',
      gen,
      event: outcome.ok ? { type: 'opened' } : { type: 'failed', batchId: undefined, error: outcome.error },
    }));
  }

  /** Ends the current generation: aborts its I/O and closes its connectors once their calls settled. */
  private closeRun(reason: string): void {
    const current = this.current;
    if (current === undefined) return;
    this.current = undefined;
    for (const batch of batchesInFlight(current.cycle)) {
      this.ctx.timers.cancel(timeoutKey(batch.batchId));
      this.answerIngest(batch.batchId, false, reason);
    }
    if (this.state.status === 'running') this.waiting.push(...current.cycle.queue);
    else for (const queued of current.cycle.queue) this.answerIngest(queued.batchId, false, reason);
    const closing = current.run.close(new PipelineUnavailableError(this.id, reason, { retriable: true })).then((errors) => {
      for (const error of errors) this.ctx.system.events.emit({ type: 'pipeline.connector.close-failed', pipelineId: this.id, error });
    });
    this.closing.push(closing);
    void closing.finally(() => (this.closing = this.closing.filter((c) => c !== closing)));
  }

  /** Steps the cycle, performs its effects, and feeds outcomes known at once back without a hop. */
  private feed(first: CycleEvent): void {
    const pending: CycleEvent[] = [first];
    for (let event = pending.shift(); event !== undefined; event = pending.shift()) {
      const current = this.current;
      if (current === undefined) return;
      const { cycle, effects } = stepCycle(current.cycle, event, this.now());
      current.cycle = cycle;
      for (const effect of effects) this.perform(current, effect, pending);
    }
  }

  private perform(current: Generation, effect: CycleEffect, pending: CycleEvent[]): void {
    const { run } = current;
    const gen = run.gen;
    const toCycle = (event: CycleEvent): Internal => ({ type: '$cycle', gen, event });
    switch (effect.type) {
      case 'poll':
        this.ctx.pipeToSelf(run.poll(effect.maxRecords, effect.maxWaitMs), (o) =>
          toCycle(o.ok ? { type: 'polled', batch: o.value } : { type: 'failed', batchId: undefined, error: o.error }),
        );
        return;
      case 'prepare':
      case 'prepare-flush': {
        const batchId = effect.batch.batchId;
        const context = { pipelineId: this.id, batchId, now: this.now(), attempt: effect.batch.attempt };
        try {
          const result =
            effect.type === 'prepare' ? prepareBatch(run.plan, effect.states, effect.records, context) : prepareFlush(run.plan, effect.states, context);
          if (result instanceof Promise) {
            this.ctx.pipeToSelf(result, (o) => toCycle(o.ok ? { type: 'prepared', batchId, result: o.value } : { type: 'failed', batchId, error: o.error }));
          } else {
            pending.push({ type: 'prepared', batchId, result });
          }
        } catch (error) {
          pending.push({ type: 'failed', batchId, error });
        }
        return;
      }
      case 'send-dead-letters': {
        const batchId = effect.batchId;
        this.ctx.pipeToSelf(run.sendDeadLetters(effect.letters), (o) => toCycle(o.ok ? { type: 'dead-lettered', batchId } : { type: 'failed', batchId, error: o.error }));
        return;
      }
      case 'write': {
        const batchId = effect.batchId;
        this.ctx.pipeToSelf(run.write({ batchId, records: effect.records }), (o) =>
          toCycle(o.ok ? { type: 'written', batchId, result: o.value } : { type: 'write-failed', batchId, error: o.error }),
        );
        return;
      }
      case 'checkpoint': {
        const stateful = run.plan.stateful;
        const at = this.now();
        const batches = effect.batches.map(
          (b): CompletedBatch => ({
            batchId: b.batchId,
            recordCount: b.input,
            sourceOffset: b.offset,
            sinkPosition: b.position,
            transformStates: stateful ? b.transformStates : null,
            successCount: b.input - b.failed,
            failureCount: b.failed,
            deadLetterCount: b.deadLettered,
            processingMs: Math.max(0, at - b.startedAt),
          }),
        );
        const newest = batches[batches.length - 1] as CompletedBatch;
        const decision: PipelineDecision = batches.length === 1 ? { type: 'complete-batch', ...newest } : { type: 'complete-batches', batches };
        this.pipeEntity(decision, (outcome) => ({ type: '$checkpointed', gen, batchId: newest.batchId, outcome }));
        return;
      }
      case 'ack':
        // Only a failed acknowledgement matters to the cycle: a success costs no message.
        run.ack(effect.offset).catch((error: unknown) => this.ctx.self.tell(toCycle({ type: 'failed', batchId: undefined, error })));
        return;
      case 'arm-timeout':
        this.ctx.timers.startSingle(timeoutKey(effect.batchId), toCycle({ type: 'timeout', batchId: effect.batchId }), effect.delayMs);
        return;
      case 'cancel-timeout':
        this.ctx.timers.cancel(timeoutKey(effect.batchId));
        return;
      case 'completed': {
        const b = effect.batch;
        this.ctx.system.events.emit({
          type: 'pipeline.batch.completed',
          pipelineId: this.id,
          batchId: b.batchId,
          records: b.input,
          succeeded: b.input - b.failed,
          failed: b.failed,
          deadLettered: b.deadLettered,
          durationMs: Math.max(0, this.now() - b.startedAt),
        });
        if (b.kind === 'ingest') this.answerIngest(b.batchId, true, undefined, effect.duplicate);
        return;
      }
      case 'abandoned':
        if (effect.batch.kind === 'ingest') this.answerIngest(effect.batch.batchId, false, 'the pipeline stopped before it was recorded');
        return;
      case 'fail':
        this.reportFailure(effect.batchId, effect.error, effect.timedOutAfterMs);
        return;
      case 'drained':
        this.closeRun(effect.reason === 'stopped' ? 'the pipeline stopped' : 'the source is exhausted');
        if (effect.reason === 'source-exhausted') this.ctx.self.tell({ type: '$record-exhausted' });
        return;
    }
  }

  private checkpointed(gen: number, batchId: string, outcome: Result): void {
    if (outcome.ok) this.changed(outcome.value.state);
    if (this.current?.run.gen !== gen) return;
    if (!outcome.ok) {
      this.feed({ type: 'failed', batchId, error: outcome.error });
      return;
    }
    const state = outcome.value.state;
    this.journalFailures = 0;
    this.feed({ type: 'checkpointed', batchId, recorded: state.status === 'empty' ? 0 : state.metrics.batches, duplicate: outcome.value.duplicate });
  }

  private ingest(command: Extract<PipelineCommand, { type: 'ingest' }>): void {
    const state = this.state;
    const batchId = ingestBatchId(this.id, command.batchId);
    if (state.status !== 'empty' && state.recentBatchIds.includes(batchId)) {
      command.replyTo?.tell({ ok: true, state, duplicate: true });
      return;
    }
    if (state.status !== 'running') {
      this.decide('ingest', { type: 'ingest', batchId }, command.replyTo);
      return;
    }
    const refuse = (reason: string) => command.replyTo?.tell({ ok: false, error: new PipelineUnavailableError(this.id, reason, { retriable: true }), state });
    if (this.ingestReplies.has(batchId)) {
      refuse(`batch ${command.batchId} is already being processed`);
      return;
    }
    const queued = this.waiting.length + (this.current?.cycle.queue.length ?? 0);
    if (queued >= (this.options.maxQueuedIngests ?? 16)) {
      refuse(`${queued} ingested batches are already waiting`);
      return;
    }
    this.ingestReplies.set(batchId, command.replyTo);
    const ingest: QueuedIngest = { batchId, records: command.records };
    if (this.current === undefined) this.waiting.push(ingest);
    else this.feed({ type: 'ingest', ingest });
  }

  private answerIngest(batchId: string, ok: boolean, reason: string | undefined, duplicate = false): void {
    if (!this.ingestReplies.has(batchId)) return;
    const replyTo = this.ingestReplies.get(batchId);
    this.ingestReplies.delete(batchId);
    if (ok) replyTo?.tell({ ok: true, state: this.state, duplicate });
    else replyTo?.tell({ ok: false, error: new PipelineUnavailableError(this.id, reason ?? 'it stopped', { retriable: true }), state: this.state });
  }

  private refuseWaiting(reason: string): void {
    for (const queued of this.waiting.splice(0)) this.answerIngest(queued.batchId, false, reason);
  }

  // ---- failures --------------------------------------------------------------------

  /** Records a failure in the journal (retry or fail) and ends the current generation. */
  private reportFailure(batchId: string | undefined, error: unknown, timedOutAfterMs?: number): void {
    const failure = classifyFailure(error);
    this.ctx.system.events.emit({ type: 'pipeline.batch.failed', pipelineId: this.id, batchId, error, retriable: failure.retriable });
    this.closeRun(timedOutAfterMs === undefined ? `a stage failed: ${failure.message}` : `batch ${batchId ?? ''} timed out`);
    const key = batchId ?? `${this.id}:connectors`;
    const decision: PipelineDecision =
      timedOutAfterMs === undefined ? { type: 'report-failure', batchId: key, error: failure } : { type: 'batch-timeout', batchId: key, timeoutMs: timedOutAfterMs };
    this.pipeEntity(decision, (outcome) => ({
      type: '$recorded',
      what: 'failure',
      outcome,
    }));
  }

  /** The answer to something the pipeline recorded itself (a failure, the end of its source). */
  private recorded(what: 'failure' | 'exhausted', outcome: Result): void {
    if (!outcome.ok) {
      // The journal refused: try again after a backoff (a failure re-drives the batch from the checkpoint).
      const delayMs = backoffDelayMs(this.journalFailures++, { minBackoffMs: 100, maxBackoffMs: 10_000, randomFactor: 0.2, ...this.options.journalBackoff }, (this.options.random ?? Math.random)());
      this.ctx.system.events.emit({ type: 'pipeline.journal.refused', pipelineId: this.id, error: outcome.error, retryInMs: delayMs });
      this.ctx.timers.startSingle('journal-retry', what === 'failure' ? { type: '$retry-due' } : { type: '$record-exhausted' }, delayMs);
      return;
    }
    this.journalFailures = 0;
    this.changed(outcome.value.state);
    if (what === 'exhausted') {
      this.followStatus();
      return;
    }
    const retry = outcome.value.events.find((e) => e.type === 'RetryScheduled');
    if (retry?.type === 'RetryScheduled' && this.state.status === 'running') {
      this.ctx.timers.startSingle('retry', { type: '$retry-due' }, retry.backoffMs);
    } else {
      this.followStatus();
    }
  }

  signal(signal: Signal): void {
    if (signal.type === 'child-terminated' && signal.ref === (this.entity as AnyActorRef)) {
      // The journal refused this incarnation (another writer, or an unrecoverable journal): stop rather than fork history.
      this.closeRun('its journal entity stopped');
      this.ctx.stopSelf();
    }
  }

  /** Aborts in-flight connector I/O (before the children stop, and again at stop). */
  abortIo(): void {
    this.current?.run.abort(new PipelineUnavailableError(this.id, 'the pipeline actor is stopping', { retriable: true }));
  }

  async stopped(): Promise<void> {
    this.closeRun('the pipeline actor stopped');
    for (const command of this.early.splice(0)) {
      if ('replyTo' in command && command.replyTo !== undefined && command.type !== 'get-state') {
        command.replyTo.tell({ ok: false, error: new PipelineUnavailableError(this.id, 'it stopped', { retriable: true }), state: undefined });
      }
    }
    this.refuseWaiting('it stopped');
    await Promise.all(this.closing);
  }
}

function timeoutKey(batchId: string): string {
  return `batch-timeout:${batchId}`;
}

function asDataflowError(pipelineId: string, error: unknown): DataflowError {
  if (error instanceof DataflowError) return error;
  return new PipelineUnavailableError(pipelineId, classifyFailure(error).message, { retriable: classifyFailure(error).retriable, cause: error });
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
    onStop: (runtime) => runtime.stopped(),
  });
  return inner;
}
