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
 *
 * About 440 lines: the user commands, the following of the recorded status
 * and the cycle effects that involve the journal or the callers stay together
 * because each reads and changes the same generation and state; the pure
 * parts and the connector calls live in the modules named above.
 */
import type { ActorContext, Outcome } from '../../actor/actor-context.js';
import type { AnyActorRef } from '../../actor/actor-ref.js';
import { behavior, type Behavior, type Signal } from '../../actor/behavior.js';
import { StatusReply } from '../../actor/status-reply.js';
import { localTokenBucket, rateLimiterOf, type RateLimiter } from '../../rate-limit/rate-limiter.js';
import { Backoff } from '../../supervision/backoff.js';
import { InvalidPipelineDefinitionError } from '../definition/invalid-pipeline-definition-error.js';
import type { DefinitionIssue } from '../definition/invalid-pipeline-definition-error.js';
import { validatePipelineDefinition } from '../definition/pipeline-definition.js';
import { checkRecordBounds } from '../definition/value-bounds.js';
import { classifyFailure } from '../model/classify-failure.js';
import type { PipelineDecision } from '../model/pipeline-decider.js';
import type { PipelineState } from '../model/pipeline-state.js';
import { batchesInFlight, stepCycle, type BatchCycle, type CycleEffect, type CycleEvent } from './batch-cycle.js';
import { batchTimeoutKey, ConnectorRun, performConnectorEffect } from './connector-run.js';
import { failureStage } from './failure-stage.js';
import type { EntityOutcome } from './pipeline-entity.js';
import './pipeline-instrumentation.js';
import { IngestDesk } from './pipeline-ingests.js';
import { asDataflowError, completeBatches, PipelineJournal } from './pipeline-journal.js';
import {
  ingestBatchId,
  InvalidRecordError,
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

type Result = Outcome<EntityOutcome>;
type Message = PipelineCommand | Internal;

interface Generation {
  readonly run: ConnectorRun;
  cycle: BatchCycle;
}

const NOT_LOADED: PipelineState = { status: 'empty' };
const DEFAULT_MAX_BATCHES_PER_CHECKPOINT = 16;

class PipelineRuntime {
  private state: PipelineState = NOT_LOADED;
  private loaded = false;
  private journal!: PipelineJournal;
  private current: Generation | undefined;
  private gen = 0;
  private readonly ingests: IngestDesk;
  /** Between attempts to record what the journal refused (a failure, the end of the source). */
  private readonly journalBackoff: Backoff;
  private readonly early: PipelineCommand[] = [];
  private closing: Promise<unknown>[] = [];
  private rateLimiter: RateLimiter | undefined;

  constructor(
    private readonly options: PipelineActorOptions,
    private readonly ctx: ActorContext<Message>,
  ) {
    this.ingests = new IngestDesk(options.pipelineId, options.maxQueuedIngests ?? 16);
    this.journalBackoff = new Backoff({ minBackoffMs: 100, maxBackoffMs: 10_000, randomFactor: 0.2, ...options.journalBackoff }, options.random ?? Math.random);
  }

  private get id(): string {
    return this.options.pipelineId;
  }

  private now(): number {
    return this.ctx.system.clock.now();
  }

  start(): void {
    this.journal = PipelineJournal.spawn(this.ctx, this.options);
    this.load();
  }

  private load(): void {
    this.ctx.pipeToSelf(this.journal.state(), (outcome) => ({ type: '$loaded', state: outcome.ok ? outcome.value : undefined }));
  }

  private pipeEntity(decision: PipelineDecision, toMessage: (outcome: Result) => Internal): void {
    this.ctx.pipeToSelf(this.journal.decide(decision), toMessage);
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
          message.replyTo?.tell(StatusReply.error(new InvalidPipelineDefinitionError(validation.issues)));
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
      case 'reset-offsets':
        this.decide(message.type, { type: 'reset-offsets', sourceOffset: message.sourceOffset }, message.replyTo);
        return;
      case 'delete':
        this.decide(message.type, { type: 'delete' }, message.replyTo);
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
      replyTo?.tell(StatusReply.error(asDataflowError(this.id, outcome.error)));
      return;
    }
    this.changed(outcome.value.state);
    replyTo?.tell(StatusReply.success({ state: outcome.value.state }));
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
    if (status !== 'running') this.ingests.refuseWaiting(this.state, `the pipeline is ${status}`);
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
      // One default bucket per actor, so a retry's new generation does not start with a full burst.
      this.rateLimiter ??= this.options.rateLimiter ?? rateLimiterOf(localTokenBucket(this.ctx.system.clock), this.ctx.system.scheduler);
      run = ConnectorRun.create(gen, this.id, state.definition, this.options.connectors, this.options.lookups, {
        rateLimiter: this.rateLimiter,
        ...(this.options.lagIntervalMs === undefined ? {} : { lagIntervalMs: this.options.lagIntervalMs }),
      });
    } catch (error) {
      this.reportFailure(undefined, error, 'connectors');
      return;
    }
    const checkpoint = state.checkpoint;
    const cycle = run.cycleFrom(state, this.ingests.takeWaiting(), this.options.maxBatchesPerCheckpoint ?? DEFAULT_MAX_BATCHES_PER_CHECKPOINT);
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
      this.ctx.timers.cancel(batchTimeoutKey(batch.batchId));
      this.ingests.answer(batch.batchId, this.state, { ok: false, reason });
    }
    if (this.state.status === 'running') this.ingests.park(...current.cycle.queue);
    else for (const queued of current.cycle.queue) this.ingests.answer(queued.batchId, this.state, { ok: false, reason });
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
      const before = current.cycle;
      const { cycle, effects } = stepCycle(before, event, this.now());
      current.cycle = cycle;
      for (const effect of effects) {
        if (effect.type === 'fail') this.reportFailure(effect.batchId, effect.error, failureStage(before, event, effect.error), effect.timedOutAfterMs);
        else this.perform(current, effect, pending);
      }
    }
  }

  private perform(current: Generation, effect: CycleEffect, pending: CycleEvent[]): void {
    const { run } = current;
    const gen = run.gen;
    if (performConnectorEffect(this.ctx, run, effect, (event): Internal => ({ type: '$cycle', gen, event }), pending)) return;
    switch (effect.type) {
      case 'checkpoint': {
        const { decision, newest } = completeBatches(effect.batches, run.plan.stateful, this.now());
        this.pipeEntity(decision, (outcome) => ({ type: '$checkpointed', gen, batchId: newest, outcome }));
        return;
      }
      case 'completed': {
        const b = effect.batch;
        this.ctx.system.events.emit({
          type: 'pipeline.batch.completed',
          pipelineId: this.id,
          batchId: b.batchId,
          records: b.input,
          succeeded: b.input - b.failed,
          failed: b.failed,
          failedByStage: b.failedByStage,
          deadLettered: b.deadLettered,
          durationMs: Math.max(0, this.now() - b.startedAt),
        });
        if (b.kind === 'ingest') this.ingests.answer(b.batchId, this.state, { ok: true, duplicate: effect.duplicate });
        return;
      }
      case 'abandoned':
        if (effect.batch.kind === 'ingest') this.ingests.answer(effect.batch.batchId, this.state, { ok: false, reason: 'the pipeline stopped before it was recorded' });
        return;
      case 'fail':
        // Reported by `feed`, which knows the cycle's phase before the failure.
        return;
      case 'drained':
        this.closeRun(effect.reason === 'stopped' ? 'the pipeline stopped' : 'the source is exhausted');
        if (effect.reason === 'source-exhausted') this.ctx.self.tell({ type: '$record-exhausted' });
        // Started again while the stop drained: a new generation resumes from the checkpoint.
        else if (this.state.status === 'running') this.openRun();
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
    this.journalBackoff.reset();
    this.feed({ type: 'checkpointed', batchId, recorded: state.status === 'empty' ? 0 : state.metrics.batches, duplicate: outcome.value.duplicate });
  }

  private ingest(command: Extract<PipelineCommand, { type: 'ingest' }>): void {
    const state = this.state;
    const batchId = ingestBatchId(this.id, command.batchId);
    const invalid = recordIssues(command.records);
    if (invalid.length > 0) {
      command.replyTo?.tell(StatusReply.error(new InvalidRecordError(this.id, command.batchId, invalid)));
      return;
    }
    if (state.status !== 'empty' && state.recentBatchIds.includes(batchId)) {
      command.replyTo?.tell(StatusReply.success({ state, duplicate: true }));
      return;
    }
    if (state.status !== 'running') {
      this.decide('ingest', { type: 'ingest', batchId }, command.replyTo);
      return;
    }
    const accepted = this.ingests.accept(batchId, command.records, command.replyTo, this.current?.cycle.queue.length ?? 0);
    if (typeof accepted === 'string') {
      command.replyTo?.tell(StatusReply.error(new PipelineUnavailableError(this.id, `batch ${command.batchId} ${accepted}`, { retriable: true })));
      return;
    }
    if (this.current === undefined) this.ingests.park(accepted);
    else this.feed({ type: 'ingest', ingest: accepted });
  }

  // ---- failures --------------------------------------------------------------------

  /** Records a failure in the journal (retry or fail) and ends the current generation. */
  private reportFailure(batchId: string | undefined, error: unknown, stage: string, timedOutAfterMs?: number): void {
    const failure = classifyFailure(error);
    this.ctx.system.events.emit({ type: 'pipeline.batch.failed', pipelineId: this.id, batchId, error, retriable: failure.retriable, stage });
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
      const delayMs = this.journalBackoff.next();
      this.ctx.system.events.emit({ type: 'pipeline.journal.refused', pipelineId: this.id, error: outcome.error, retryInMs: delayMs });
      this.ctx.timers.startSingle('journal-retry', what === 'failure' ? { type: '$retry-due' } : { type: '$record-exhausted' }, delayMs);
      return;
    }
    this.journalBackoff.reset();
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
    if (signal.type === 'pre-stop') {
      // Before the children stop: connector calls waiting on I/O return now.
      this.abortIo();
      return;
    }
    if (signal.type === 'child-terminated' && signal.ref === (this.journal.ref as AnyActorRef)) {
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
        command.replyTo.tell(StatusReply.error(new PipelineUnavailableError(this.id, 'it stopped', { retriable: true })));
      }
    }
    this.ingests.refuseWaiting(this.state, 'it stopped');
    await Promise.all(this.closing);
  }
}

/** The bounds issues of ingested records (at most 10), each path prefixed with `records[i]`. */
function recordIssues(records: readonly unknown[]): DefinitionIssue[] {
  const issues: DefinitionIssue[] = [];
  for (let i = 0; i < records.length && issues.length < 10; i++) {
    const issue = checkRecordBounds(records[i]);
    if (issue === undefined) continue;
    const separator = issue.path === '' || issue.path.startsWith('[') ? '' : '.';
    issues.push({ path: `records[${i}]${separator}${issue.path}`, message: issue.message });
  }
  return issues;
}

/**
 * The behavior of a pipeline actor. Spawn one per pipeline id; it recovers
 * from the journal and, if the pipeline was running, resumes from its last
 * checkpoint.
 *
 * @example
 * ```ts
 * const orders = system.spawn(pipelineActor({ pipelineId: 'orders', persistence, connectors }), 'pipeline-orders');
 * await askWithStatus<PipelineCommand, PipelineResult>(orders, (replyTo) => ({ type: 'create', definition, replyTo }), { timeoutMs: 5_000 });
 * const { state } = await askWithStatus<PipelineCommand, PipelineResult>(orders, (replyTo) => ({ type: 'start', replyTo }), { timeoutMs: 5_000 });
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
