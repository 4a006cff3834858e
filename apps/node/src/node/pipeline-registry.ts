/**
 * The pipelines hosted by a node: one pipeline actor per registered pipeline,
 * each one's latest state, and the status reports that keep the coordinator's
 * registry current. A status change is reported at once; record counts of a
 * running pipeline at most every `statusReportIntervalMs` (every batch would
 * be one coordinator event per batch), counts held back by that limit once
 * the interval is over (a pipeline that goes quiet must not leave the
 * registry behind), and the last counts at shutdown.
 */
import {
  askWithStatus,
  pipelineActor,
  pipelineTaskOf,
  type ActorRef,
  type ActorSystem,
  type Cancellable,
  type ConnectorFactory,
  type CoordinatorCommand,
  type CoordinatorReply,
  type EntityPersistence,
  type LookupSource,
  type PipelineCommand,
  type PipelineResult,
  type PipelineState,
  type PipelineStatus,
  type RateLimiter,
  type RegisteredPipeline,
  type StatusReply,
} from '@dataflow/core';
import type { NodeLogger } from './node-logger.js';

export interface PipelineRegistryOptions {
  readonly system: ActorSystem;
  readonly persistence: EntityPersistence;
  /** The current coordinator (it is spawned again after an outage). */
  readonly coordinator: () => ActorRef<CoordinatorCommand>;
  readonly connectors: ConnectorFactory;
  readonly lookups?: Readonly<Record<string, LookupSource>>;
  /** Holds the pipelines' `rateLimit` (default: a local bucket per pipeline actor). */
  readonly rateLimiter?: RateLimiter;
  /** Least time between two samples of a source's lag, ms (default 5 000). */
  readonly lagIntervalMs?: number;
  readonly logger: NodeLogger;
  readonly askTimeoutMs: number;
  readonly statusReportIntervalMs: number;
}

interface Reported {
  readonly status: PipelineStatus;
  readonly totalRecords: number;
  readonly failedRecords: number;
  readonly at: number;
}

interface Tracked {
  latest: PipelineState;
  reported: Reported | undefined;
  /** The report of counts held back by the interval, due when it is over. */
  heldBack: Cancellable | undefined;
}

interface Hosted extends Tracked {
  ref: ActorRef<PipelineCommand>;
}

/**
 * Spawns and tracks the pipeline actors of a node.
 *
 * @example
 * ```ts
 * const registry = new PipelineRegistry({ system, persistence, coordinator: () => coordinator, connectors, logger, askTimeoutMs: 10_000, statusReportIntervalMs: 5_000 });
 * const demo = registry.spawn('demo'); // recovers, and resumes if it was running
 * ```
 */
export class PipelineRegistry {
  private readonly hosted = new Map<string, Hosted>();
  private detachedCount = 0;

  constructor(private readonly options: PipelineRegistryOptions) {}

  /** The ids of the hosted pipelines, in spawn order. */
  ids(): readonly string[] {
    return [...this.hosted.keys()];
  }

  has(pipelineId: string): boolean {
    return this.hosted.has(pipelineId);
  }

  ref(pipelineId: string): ActorRef<PipelineCommand> | undefined {
    return this.hosted.get(pipelineId)?.ref;
  }

  /** The last state the pipeline reported (empty until it recovered). */
  latest(pipelineId: string): PipelineState | undefined {
    return this.hosted.get(pipelineId)?.latest;
  }

  /** Spawns the actor of `pipelineId`; it recovers from its journal and resumes if it was running. */
  spawn(pipelineId: string): ActorRef<PipelineCommand> {
    const existing = this.hosted.get(pipelineId);
    if (existing !== undefined) return existing.ref;
    const tracked: Tracked = { latest: { status: 'empty' }, reported: undefined, heldBack: undefined };
    const ref = this.spawnActor(pipelineId, tracked);
    this.hosted.set(pipelineId, Object.assign(tracked, { ref }));
    return ref;
  }

  /** Spawns the actor of a hosted pipeline again after it stopped (an outage outlasted its entity's restarts). */
  respawn(pipelineId: string): ActorRef<PipelineCommand> | undefined {
    const hosted = this.hosted.get(pipelineId);
    if (hosted === undefined) return undefined;
    hosted.ref = this.spawnActor(pipelineId, hosted);
    return hosted.ref;
  }

  private spawnActor(pipelineId: string, tracked: Tracked): ActorRef<PipelineCommand> {
    const { system, persistence, connectors, lookups, rateLimiter, lagIntervalMs } = this.options;
    return system.spawn(
      pipelineActor({
        pipelineId,
        persistence,
        connectors,
        ...(lookups === undefined ? {} : { lookups }),
        ...(rateLimiter === undefined ? {} : { rateLimiter }),
        ...(lagIntervalMs === undefined ? {} : { lagIntervalMs }),
        onStateChange: (state) => this.changed(pipelineId, tracked, state),
      }),
      `pipeline-${pipelineId}`,
    );
  }

  /**
   * Runs `command` against the entity of `pipelineId` without hosting it: an
   * actor spawned for this one command, then stopped (cluster: a task of a
   * new pipeline whose shard another node holds is created here, before the
   * pipeline is registered, so its host recovers it created; ADR 0013).
   */
  async detached(pipelineId: string, build: (replyTo: ActorRef<StatusReply<PipelineResult>>) => PipelineCommand): Promise<PipelineResult> {
    const { system, persistence, connectors, lookups } = this.options;
    const ref = system.spawn(pipelineActor({ pipelineId, persistence, connectors, ...(lookups === undefined ? {} : { lookups }) }), `detached-${pipelineId}-${++this.detachedCount}`);
    try {
      return await askWithStatus<PipelineCommand, PipelineResult>(ref, build, { timeoutMs: this.options.askTimeoutMs });
    } finally {
      await system.stop(ref);
    }
  }

  /** Stops the actor of `pipelineId` (its in-flight batch is abandoned) and forgets it. */
  async remove(pipelineId: string): Promise<void> {
    const hosted = this.hosted.get(pipelineId);
    if (hosted === undefined) return;
    this.hosted.delete(pipelineId);
    hosted.heldBack?.cancel();
    await this.options.system.stop(hosted.ref);
  }

  /**
   * Stops every pipeline actor. Nothing is recorded in the journals: a running
   * pipeline stays running there and resumes from its last checkpoint when a
   * node spawns it again; the batch in flight is abandoned, not checkpointed.
   */
  async stopAll(): Promise<void> {
    for (const hosted of this.hosted.values()) hosted.heldBack?.cancel();
    await Promise.all([...this.hosted.values()].map((h) => this.options.system.stop(h.ref)));
  }

  /** Reports to the coordinator every latest state it has not seen, and waits for its answers. */
  async flushStatuses(): Promise<void> {
    const pending = [...this.hosted.entries()].filter(([, h]) => h.latest.status !== 'empty' && !sameAsReported(h.latest, h.reported));
    const failures: unknown[] = [];
    await Promise.all(
      pending.map(async ([pipelineId, hosted]) => {
        const update = this.statusUpdate(pipelineId, hosted.latest);
        if (update === undefined) return;
        try {
          await askWithStatus<CoordinatorCommand, RegisteredPipeline | undefined>(
            this.options.coordinator(),
            (replyTo) => ({ type: 'update-status', ...update, replyTo }),
            { timeoutMs: this.options.askTimeoutMs },
          );
          hosted.reported = { ...update, at: this.now() };
        } catch (error) {
          failures.push(error);
        }
      }),
    );
    if (failures.length > 0) {
      const causes = failures.map((f) => (f instanceof Error ? f.message : String(f))).join('; ');
      throw new AggregateError(failures, `the coordinator did not take the last status of ${failures.length} pipelines (${causes})`);
    }
  }

  private now(): number {
    return this.options.system.clock.now();
  }

  private changed(pipelineId: string, hosted: Tracked, state: PipelineState): void {
    const before = hosted.latest;
    hosted.latest = state;
    if (state.status === 'empty') return;
    // A failure recovered from the journal is the past (the host logs what it does about it); only a new one is logged here.
    if (state.status === 'failed' && before.status !== 'failed' && before.status !== 'empty') {
      this.options.logger.error(`pipeline ${pipelineId} failed: ${state.error.message}`, {
        pipeline_id: pipelineId,
        error_tag: state.error.tag,
        total_records: state.metrics.recordsProcessed,
      });
    }
    const reported = hosted.reported;
    const interval = this.options.statusReportIntervalMs;
    if (reported !== undefined && reported.status === state.status && this.now() - reported.at < interval) {
      // Only counts changed: report the latest ones when the interval is over (the state may be the last for a long while).
      hosted.heldBack ??= this.options.system.scheduler.schedule(reported.at + interval - this.now(), () => {
        hosted.heldBack = undefined;
        this.report(pipelineId, hosted);
      });
      return;
    }
    this.report(pipelineId, hosted);
  }

  /** Tells the coordinator the latest state of a pipeline unless it was the last one reported. */
  private report(pipelineId: string, hosted: Tracked): void {
    const state = hosted.latest;
    if (sameAsReported(state, hosted.reported)) return;
    const update = this.statusUpdate(pipelineId, state);
    if (update === undefined) return;
    hosted.reported = { ...update, at: this.now() };
    const logger = this.options.logger;
    this.options.coordinator().tell({
      type: 'update-status',
      ...update,
      replyTo: {
        path: `/node/status-report/${pipelineId}`,
        tell: (reply: CoordinatorReply) => {
          if (reply.status === 'success') return;
          // Reported again with the next change (or at shutdown): the coordinator compares values, not deltas.
          hosted.reported = undefined;
          // Retriable: the coordinator is moving between nodes (a hand-over, a failover); the cluster reports the missed statuses once it answers again.
          if ((reply.error as { retriable?: unknown }).retriable === true) {
            logger.debug(`the status of pipeline ${pipelineId} waits for the coordinator: ${reply.error.message}`, { pipeline_id: pipelineId });
          } else {
            logger.warn(`the coordinator refused the status of pipeline ${pipelineId}: ${reply.error.message}`, { pipeline_id: pipelineId });
          }
        },
      },
    });
  }

  private statusUpdate(pipelineId: string, state: PipelineState): Omit<Reported, 'at'> & { pipelineId: string } | undefined {
    if (state.status === 'empty') return undefined;
    // Tasks 1..N-1 of a parallel pipeline are not registered: the registry shows task 0 (the API aggregates the tasks; ADR 0013).
    if (pipelineTaskOf(pipelineId).index > 0) return undefined;
    return { pipelineId, status: state.status, totalRecords: state.metrics.recordsProcessed, failedRecords: state.metrics.recordsFailed };
  }
}

function sameAsReported(state: PipelineState, reported: Reported | undefined): boolean {
  return (
    reported !== undefined &&
    state.status !== 'empty' &&
    reported.status === state.status &&
    reported.totalRecords === state.metrics.recordsProcessed &&
    reported.failedRecords === state.metrics.recordsFailed
  );
}
