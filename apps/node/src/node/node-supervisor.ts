/**
 * Supervision of a node's top actors (the coordinator and one actor per
 * pipeline) and the node's health. An event-sourced entity gives up after a
 * bounded number of restarts and stops its actor; a journal outage longer
 * than that used to leave the node without its pipelines and the process
 * exiting 0 with nothing logged. Here a top actor that stops for a retriable
 * cause (an outage: the journal or a connector unreachable) is spawned again
 * after an exponential backoff without bound (it recovers from its journal
 * and resumes from its checkpoint), and the node reports `degraded` with the
 * reason until the component works again. A cause that retrying cannot cure
 * (another node writes the same journal: a concurrency conflict; a journal it
 * cannot read) makes the node `failed`: `failure` resolves with a
 * `NodeFailedError` that names the component and the cause, and the process
 * exits non-zero. Every change of state is logged.
 */
import { backoffDelayMs, isDataflowError, type ActorSystem, type Cancellable } from '@dataflow/core';
import { NodeFailedError } from './node-errors.js';
import type { NodeLogger } from './node-logger.js';

/** The health of a node. */
export type NodeState = 'starting' | 'ok' | 'degraded' | 'failed';

/** The state and, when not `ok`, what is wrong, by component (`coordinator`, `pipeline <id>`). */
export interface NodeHealth {
  readonly state: NodeState;
  readonly problems: ReadonlyMap<string, string>;
}

/** Backoff between respawns of a stopped top actor. */
export interface RespawnBackoff {
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly randomFactor: number;
}

/** Default: 1 s doubling up to 30 s, ±20 %. */
export const DEFAULT_RESPAWN_BACKOFF: RespawnBackoff = { minBackoffMs: 1_000, maxBackoffMs: 30_000, randomFactor: 0.2 };

/** A top actor under supervision. */
export interface SupervisedComponent {
  /** For logs and health: `coordinator` or `pipeline <id>`. */
  readonly name: string;
  /** The actor's path (`/user/...`). */
  readonly path: string;
  /** Persistence ids of the entities whose failures explain this actor's stop. */
  readonly persistenceIds: readonly string[];
  /** Spawns the actor again; returns its new path. */
  readonly respawn: () => void;
  readonly pipelineId?: string;
  /**
   * In a cluster another node may legitimately have taken this entity over
   * (its shard moved): then a lost single-writer race is handed here instead
   * of failing the node, and the component is retired.
   */
  readonly onWriterConflict?: (cause: unknown) => void;
}

interface Watched {
  readonly component: SupervisedComponent;
  lastError: unknown;
  attempts: number;
  timer: Cancellable | undefined;
  /** Stopped on purpose (removed, or the node stops): no respawn. */
  retired: boolean;
}

/** The message of an error and of its causes, without repeats. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 5; depth++) {
    const message = e instanceof Error ? e.message : typeof e === 'string' ? e : JSON.stringify(e);
    if (!parts.some((p) => p.includes(message))) parts.push(message);
    if (e instanceof AggregateError) {
      for (const inner of e.errors) {
        const text = describeError(inner);
        if (!parts.some((p) => p.includes(text))) parts.push(text);
      }
    }
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}

function isConflict(error: unknown): boolean {
  return isDataflowError(error, 'journal/concurrency-conflict');
}

/** Whether waiting may cure `error`: retriable DataflowErrors, and stops whose cause is unknown. */
function isCurable(error: unknown): boolean {
  if (error === undefined) return true;
  return isDataflowError(error) && error.retriable;
}

/**
 * Watches the top actors of `system`.
 *
 * @example
 * ```ts
 * const supervisor = new NodeSupervisor({ system, logger });
 * supervisor.watch({ name: 'coordinator', path: ref.path, persistenceIds: ['coordinator'], respawn });
 * supervisor.failure.then((error) => logger.error(error.message));
 * ```
 */
export class NodeSupervisor {
  /** Resolves when the node hits a cause it cannot cure. */
  readonly failure: Promise<NodeFailedError>;
  private failWith!: (error: NodeFailedError) => void;
  private failed: NodeFailedError | undefined;
  private started = false;
  private stopping = false;
  private reported: NodeState = 'starting';
  private readonly byPath = new Map<string, Watched>();
  private readonly byPersistenceId = new Map<string, Watched>();
  private readonly problemsOf = new Map<string, string>();
  /** Components whose problem is a batch being retried: only a completed batch (or a stop) ends it, not a journal write. */
  private readonly batchRetried = new Set<string>();
  private readonly unsubscribe: (() => void)[];
  private readonly backoff: RespawnBackoff;
  private readonly random: () => number;

  constructor(private readonly options: { readonly system: ActorSystem; readonly logger: NodeLogger; readonly backoff?: RespawnBackoff; readonly random?: () => number }) {
    this.failure = new Promise((resolve) => (this.failWith = resolve));
    this.backoff = options.backoff ?? DEFAULT_RESPAWN_BACKOFF;
    this.random = options.random ?? Math.random;
    this.unsubscribe = this.subscribe();
  }

  /** The node's health now. */
  health(): NodeHealth {
    return { state: this.state(), problems: new Map(this.problemsOf) };
  }

  /** The start is over: from now on the state is `ok` unless something is wrong. */
  markStarted(): void {
    this.started = true;
    this.report();
  }

  /** Puts `component` under supervision (again, after a respawn: the path is the same). */
  watch(component: SupervisedComponent): void {
    const existing = this.byPath.get(component.path);
    const watched: Watched = existing ?? { component, lastError: undefined, attempts: 0, timer: undefined, retired: false };
    watched.retired = false;
    this.byPath.set(component.path, watched);
    for (const id of component.persistenceIds) this.byPersistenceId.set(id, watched);
  }

  /** `path` is stopped on purpose: no respawn, no problem reported. */
  retire(path: string): void {
    const watched = this.byPath.get(path);
    if (watched === undefined) return;
    watched.retired = true;
    watched.timer?.cancel();
    this.byPath.delete(path);
    for (const id of watched.component.persistenceIds) this.byPersistenceId.delete(id);
    this.batchRetried.delete(watched.component.name);
    this.clear(watched.component.name);
  }

  /** The node stops: every actor stops on purpose from now on. */
  close(): void {
    this.stopping = true;
    for (const watched of this.byPath.values()) watched.timer?.cancel();
    for (const off of this.unsubscribe.splice(0)) off();
  }

  /** A cause the node cannot cure: reported once, the node becomes `failed`. */
  fail(component: string, message: string, cause: unknown): void {
    if (this.failed !== undefined || this.stopping) return;
    this.failed = new NodeFailedError(component, message, cause);
    this.options.logger.error(this.failed.message, { component, node_state: 'failed' });
    this.report();
    this.failWith(this.failed);
  }

  private state(): NodeState {
    if (this.failed !== undefined) return 'failed';
    if (!this.started) return 'starting';
    return this.problemsOf.size > 0 ? 'degraded' : 'ok';
  }

  private report(): void {
    const state = this.state();
    if (state === this.reported) return;
    const before = this.reported;
    this.reported = state;
    if (state === 'failed') return; // fail() logged the cause
    const problems = [...this.problemsOf].map(([name, problem]) => `${name}: ${problem}`).join('; ');
    const fields = { node_state: state, from: before };
    if (state === 'degraded') this.options.logger.warn(`node state ${before} -> degraded (${problems})`, fields);
    else this.options.logger.info(`node state ${before} -> ${state}`, fields);
  }

  private problem(name: string, problem: string): void {
    this.problemsOf.set(name, problem);
    this.report();
  }

  private clear(name: string): void {
    if (!this.problemsOf.delete(name)) return;
    this.options.logger.info(`${name} works again`, { component: name });
    this.report();
  }

  private subscribe(): (() => void)[] {
    const events = this.options.system.events;
    const entity = (persistenceId: string): Watched | undefined => this.byPersistenceId.get(persistenceId);
    return [
      events.on('event-sourced.recovery.failed', (e) => {
        const w = entity(e.persistenceId);
        if (w === undefined) return;
        w.lastError = e.error;
        this.problem(w.component.name, `cannot read its journal: ${describeError(e.error)}`);
      }),
      events.on('event-sourced.persist.failed', (e) => {
        const w = entity(e.persistenceId);
        if (w === undefined) return;
        w.lastError = e.error;
        this.problem(w.component.name, `cannot write its journal: ${describeError(e.error)}`);
      }),
      events.on('event-sourced.restarting', (e) => {
        const w = entity(e.persistenceId);
        if (w === undefined) return;
        this.options.logger.warn(`${w.component.name}: journal unavailable (${describeError(e.cause)}); retrying in ${e.delayMs} ms (attempt ${e.attempt})`, {
          component: w.component.name,
          attempt: e.attempt,
          delay_ms: e.delayMs,
        });
      }),
      events.on('event-sourced.concurrency-conflict', (e) => {
        const w = entity(e.persistenceId);
        if (w !== undefined) w.lastError = e.error;
      }),
      events.on('event-sourced.failed', (e) => {
        const w = entity(e.persistenceId);
        if (w !== undefined) w.lastError = e.error;
      }),
      // A journal that answers again cures a journal problem, not a batch that is still being retried (the pipeline records its
      // retries in its journal: "works again" was logged after every failed attempt).
      events.on('event-sourced.recovered', (e) => this.working(entity(e.persistenceId), 'journal')),
      events.on('event-sourced.persisted', (e) => this.working(entity(e.persistenceId), 'journal')),
      events.on('pipeline.batch.failed', (e) => {
        if (!e.retriable) return;
        const w = this.byPath.get(`/user/pipeline-${e.pipelineId}`);
        if (w === undefined) return;
        this.batchRetried.add(w.component.name);
        this.problem(w.component.name, `a batch failed and is retried: ${describeError(e.error)}`);
      }),
      events.on('pipeline.batch.completed', (e) => this.working(this.byPath.get(`/user/pipeline-${e.pipelineId}`), 'batch')),
      // A pipeline that no longer runs has no batch to retry (stopped, paused, reset or failed: a failure is reported on its own).
      events.on('pipeline.status.changed', (e) => {
        if (e.to !== 'running') this.working(this.byPath.get(`/user/pipeline-${e.pipelineId}`), 'batch');
      }),
      events.on('actor.stopped', (e) => {
        const w = this.byPath.get(e.path);
        if (w !== undefined) this.stopped(w);
      }),
    ];
  }

  /** `w` works: its journal answered (`journal`), or its batches go through again or it no longer runs them (`batch`). */
  private working(w: Watched | undefined, what: 'journal' | 'batch'): void {
    if (w === undefined) return;
    w.lastError = undefined;
    w.attempts = 0;
    const name = w.component.name;
    if (what === 'batch') this.batchRetried.delete(name);
    else if (this.batchRetried.has(name)) return;
    this.clear(name);
  }

  private stopped(w: Watched): void {
    if (w.retired || this.stopping || this.failed !== undefined) return;
    const { name } = w.component;
    const cause = w.lastError;
    if (isConflict(cause) && w.component.onWriterConflict !== undefined) {
      this.retire(w.component.path);
      w.component.onWriterConflict(cause);
      return;
    }
    if (isConflict(cause)) {
      this.fail(
        name,
        `${name} lost the single-writer race: another node writes its journal (${describeError(cause)}); this node stops rather than fork the history`,
        cause,
      );
      return;
    }
    if (!isCurable(cause)) {
      this.fail(name, `${name} stopped: ${describeError(cause)}`, cause);
      return;
    }
    const delayMs = backoffDelayMs(w.attempts, this.backoff, this.random());
    w.attempts++;
    const why = cause === undefined ? 'stopped without a reported cause' : `stopped (${describeError(cause)})`;
    this.options.logger.warn(`${name} ${why}; spawning it again in ${delayMs} ms (attempt ${w.attempts})`, {
      component: name,
      attempt: w.attempts,
      delay_ms: delayMs,
    });
    this.problem(name, `${why}; spawning it again (attempt ${w.attempts})`);
    w.timer = this.options.system.scheduler.schedule(delayMs, () => {
      w.timer = undefined;
      if (w.retired || this.stopping || this.failed !== undefined) return;
      try {
        w.component.respawn();
      } catch (error) {
        this.fail(name, `${name} could not be spawned again: ${describeError(error)}`, error);
      }
    });
  }
}
