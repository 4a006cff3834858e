/**
 * A DataFlow node: the actor system, the journal, the coordinator and the
 * pipelines it hosts, behind one object. `startNode` opens the store, recovers
 * the coordinator and spawns every pipeline it lists (remember entities: a
 * pipeline that was running resumes from its last checkpoint by itself);
 * `shutdown` stops the pipelines without recording anything (their batches
 * in flight are abandoned), then the system, then closes the store. The
 * top actors are supervised (`node-supervisor.ts`): an outage makes the node
 * `degraded` and the actors are spawned again with backoff; a cause that
 * waiting cannot cure resolves `failure`.
 *
 * About 450 lines: the documented public interface (`DataflowNode`,
 * `NodeConfig`) and its one implementation stay together; supervision,
 * the registry and the store live in their own files.
 */
import {
  ask,
  askWithStatus,
  createActorSystem,
  InvalidPipelineDefinitionError,
  PipelineCommandRejectedError,
  pipelineTaskIds,
  pipelineTaskOf,
  spawnCoordinator,
  validatePipelineDefinition,
  type ActorRef,
  type ActorSystem,
  type Clock,
  type ConfiguredPipelineState,
  type ConnectorFactory,
  type ConnectorRegistry,
  type CoordinatorCommand,
  type DataRecord,
  type CoordinatorReply,
  type Instrumentation,
  type InstrumentationEvent,
  type LookupSource,
  type PipelineCommand,
  type PipelineDefinition,
  type PipelineReply,
  type PipelineState,
  type PipelineStatus,
  type PersistencePlugin,
  type RegisteredPipeline,
  type ResourceLimits,
  type Scheduler,
  type StatusReply,
  type SystemStatus,
} from '@dataflow/core';
import { localConnectorRegistry } from '@dataflow/connectors';
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { hostname } from 'node:os';
import { localConnectorFactory } from './connector-factory.js';
import { NodeFailedError, NodeUnavailableError, PipelineExistsError, PipelineNotFoundError } from './node-errors.js';
import type { NodeLogger } from './node-logger.js';
import { openNodeStore, type NodeStore, type OpenedStore } from './node-persistence.js';
import { createNodeRateLimiter, type NodeRateLimiter } from './node-rate-limiter.js';
import { PipelineRegistry } from './pipeline-registry.js';
import { SourceReachability } from './source-reachability.js';
import { describeError, NodeSupervisor, type NodeHealth, type RespawnBackoff } from './node-supervisor.js';

/** How to start a node. */
export interface NodeConfig {
  readonly store: NodeStore;
  readonly logger: NodeLogger;
  /** Names this node in resource reports (default `<hostname>-<pid>`). */
  readonly nodeId?: string;
  /**
   * Builds the connectors of pipelines (default: `@dataflow/connectors`). A
   * function is given the opened store first: connectors that use the node's
   * database (a Postgres sink or dead-letter table without connectionString
   * on the embedded store) have it already for the pipelines that resume
   * while the node starts.
   */
  readonly connectors?: ConnectorFactory | ((persistence: PersistencePlugin) => ConnectorFactory);
  /** Called on every definition given to `createPipeline` before it is validated (e.g. `withConnectionDefaults`). */
  readonly prepareDefinition?: (definition: unknown) => unknown;
  /** Connector types and options accepted by `createPipeline` (default: `localConnectorRegistry`). */
  readonly connectorRegistry?: ConnectorRegistry;
  readonly lookups?: Readonly<Record<string, LookupSource>>;
  /** Limits of the coordinator's resource check. */
  readonly resourceLimits?: ResourceLimits;
  /** How long a command waits for a pipeline or the coordinator (default 10 000). */
  readonly askTimeoutMs?: number;
  /** Record counts of a running pipeline go to the coordinator at most this often (default 5 000). */
  readonly statusReportIntervalMs?: number;
  /** Ids of new pipelines (default: random UUIDs). */
  readonly newPipelineId?: () => string;
  readonly clock?: Clock;
  readonly scheduler?: Scheduler;
  /** Backoff between respawns of a top actor that stopped during an outage (default 1 s doubling to 30 s). */
  readonly respawnBackoff?: RespawnBackoff;
  /** Least time between two samples of a pipeline source's lag (`pipeline_kafka_consumer_lag`), ms (default 5 000). */
  readonly lagIntervalMs?: number;
  /**
   * Cluster mode: the node starts without the coordinator (it forwards to
   * the singleton until `becomeCoordinator`) and runs only the pipelines
   * `hosts` names, adopted and released as shards move.
   */
  readonly cluster?: NodeClusterConfig;
}

/**
 * How a node takes part in a cluster (`src/cluster/`): which pipelines it
 * runs now, and how it reaches the coordinator while that runs elsewhere.
 */
export interface NodeClusterConfig {
  /** Whether this node runs `pipelineId` now (the lease of its shard is this node's). */
  readonly hosts: (pipelineId: string) => boolean;
  /** A local ref that forwards coordinator commands to the node running the coordinator (the cluster singleton). */
  readonly remoteCoordinator: (system: ActorSystem) => ActorRef<CoordinatorCommand>;
  /** Another node wrote a pipeline's journal (it took the pipeline over): called once the node let the pipeline go. */
  readonly onTakenOver?: (pipelineId: string, cause: unknown) => void;
  /**
   * The tasks of a parallel pipeline that run on other nodes (each task is
   * placed by its own shard; ADR 0013): reached through the node that runs
   * them. Without it, commands reach only the tasks hosted here.
   */
  readonly remoteTasks?: RemoteTasks;
}

/** A lifecycle command a pipeline fans out to its tasks. */
export type TaskAction = 'start' | 'stop' | 'pause' | 'resume' | 'reset';

/**
 * Commands to one task of a parallel pipeline that another node runs (in
 * `src/cluster`, through that node's admin API with the task's id). Errors
 * are the typed errors the API answers with (not found, lifecycle conflict,
 * unavailable).
 */
export interface RemoteTasks {
  /** The task's state; undefined when its node does not know it. */
  state(taskId: string): Promise<PipelineState | undefined>;
  command(taskId: string, action: TaskAction, reason?: string): Promise<PipelineState>;
  update(taskId: string, definition: PipelineDefinition): Promise<PipelineState>;
  resetOffsets(taskId: string): Promise<void>;
  delete(taskId: string): Promise<void>;
}

/** What `shutdown` leaves behind: the last state of every pipeline. */
export interface ShutdownReport {
  readonly pipelines: readonly ConfiguredPipelineState[];
}

/**
 * A running node.
 *
 * @example
 * ```ts
 * const node = await startNode({ store: { type: 'pglite', dataDir: './data' }, logger });
 * const created = await node.createPipeline(definition, { pipelineId: 'orders' });
 * await node.start(created.pipelineId);
 * const { pipelines } = await node.shutdown();
 * ```
 */
export interface DataflowNode {
  readonly nodeId: string;
  /** Where the journal lives, for logs. */
  readonly storeDescription: string;
  /** The journal's plugin: its queries (events by tag, by persistence id) and, on Postgres or PGlite, its database (`executor`, `schema`). */
  readonly persistence: PersistencePlugin;
  /** Instrumentation events of the node's actors and pipelines. */
  readonly events: Instrumentation<InstrumentationEvent>;
  /** Holds the pipelines' `rateLimit`: per node, or shared by all nodes once given a Redis bucket (`share`). */
  readonly rateLimiter: NodeRateLimiter;
  /** The pipelines found at start, as recovered from their journals: a running one resumes from this checkpoint. */
  readonly recovered: readonly ConfiguredPipelineState[];
  /** Whether the sources of the pipelines running here answer (as their lag samples tell: a Kafka source whose brokers are down). */
  readonly sources: SourceReachability;
  /**
   * Resolves when the node meets a cause that waiting cannot cure (another
   * node writes the same journal, a journal it cannot read): the node is
   * `failed` and should be shut down; the error names the component and why.
   */
  readonly failure: Promise<NodeFailedError>;
  /** `ok`, `degraded` (an outage: what is wrong, by component) or `failed`. */
  health(): NodeHealth;
  /**
   * Validates `definition` (unknown connector types and bad options are
   * field-level issues), registers it with the coordinator and creates the
   * pipeline in the `configured` state.
   */
  createPipeline(definition: unknown, options?: { readonly pipelineId?: string }): Promise<ConfiguredPipelineState>;
  start(pipelineId: string): Promise<PipelineState>;
  stop(pipelineId: string, reason?: string): Promise<PipelineState>;
  pause(pipelineId: string, reason?: string): Promise<PipelineState>;
  resume(pipelineId: string): Promise<PipelineState>;
  reset(pipelineId: string): Promise<PipelineState>;
  /**
   * Replaces the definition of a configured or stopped pipeline (prepared and
   * validated as in `createPipeline`; the name cannot change). Refused with a
   * lifecycle conflict while it runs, is paused or failed.
   */
  updatePipeline(pipelineId: string, definition: unknown): Promise<ConfiguredPipelineState>;
  /** Makes the source start from its beginning at the next start; refused unless configured, stopped or failed. */
  resetOffsets(pipelineId: string): Promise<ConfiguredPipelineState>;
  /** Deletes a configured, stopped or failed pipeline: unregistered, its actor stopped; its journal keeps the history. */
  deletePipeline(pipelineId: string): Promise<void>;
  /**
   * Pushes `records` through a running pipeline's transforms and sink as one
   * batch, answered once it is checkpointed. Idempotent by `batchId` (the
   * caller's): a batch id among the pipeline's recent ones (the last 256) is
   * not run again and answers `duplicate: true`. Refused with a lifecycle
   * conflict unless running.
   */
  ingest(pipelineId: string, batchId: string, records: readonly DataRecord[]): Promise<{ readonly state: PipelineState; readonly duplicate: boolean }>;
  /** The pipeline's state (of task 0 for a pipeline with parallelism > 1), or undefined when no pipeline has this id. */
  getPipeline(pipelineId: string): Promise<PipelineState | undefined>;
  /**
   * The state of every task of the pipeline in task order (ADR 0013): one for
   * a pipeline of parallelism 1; undefined when no pipeline has this id. In a
   * cluster, tasks on other nodes are asked there.
   */
  pipelineTasks(pipelineId: string): Promise<readonly PipelineState[] | undefined>;
  /** The coordinator's registry, optionally only pipelines in `status`. */
  listPipelines(status?: PipelineStatus): Promise<readonly RegisteredPipeline[]>;
  systemStatus(): Promise<SystemStatus>;
  /** Stops the pipelines (running ones stay running in their journals), the actor system, and closes the store it opened. */
  shutdown(): Promise<ShutdownReport>;
  /** The pipelines this node runs now. */
  hostedPipelines(): readonly string[];
  /** Cluster: runs `pipelineId` here (it recovers from its journal and resumes if it was running); its state after recovery. */
  adopt(pipelineId: string): Promise<PipelineState>;
  /** Cluster: stops running `pipelineId` here without recording anything (it stays running in its journal, for its next host). */
  release(pipelineId: string): Promise<void>;
  /** Cluster: this node now holds the coordinator singleton: it spawns the coordinator and waits for its recovery. */
  becomeCoordinator(): Promise<void>;
  /** Cluster: the singleton moved away: the local coordinator stops and commands are forwarded again. */
  resignCoordinator(): Promise<void>;
  /** Whether the coordinator runs in this node. */
  readonly runsCoordinator: boolean;
  /** Sends the coordinator the latest status of every hosted pipeline it has not taken yet (a report lost while the coordinator moved). */
  reportStatuses(): Promise<void>;
  /** Waits, `timeoutMs` at most (default 2 s), for the last statuses of released pipelines to reach the coordinator (`release` does not wait for them). */
  lastReports(timeoutMs?: number): Promise<void>;
  /** The coordinator actor when it runs in this node (forwarded commands are run against it). */
  localCoordinator(): ActorRef<CoordinatorCommand> | undefined;
}

const PIPELINE_ID = /^[A-Za-z0-9_-]{1,100}$/;

/** The persistence id of a pipeline's entity (`pipeline-<id>`, as `pipeline-entity.ts` names it in core). */
const pipelinePersistenceId = (pipelineId: string): string => `pipeline-${pipelineId}`;

/**
 * Starts a node and the pipelines its coordinator knows.
 *
 * @example
 * ```ts
 * const node = await startNode({ store: { type: 'postgres', url: 'postgres://postgres@127.0.0.1:5432/postgres' }, logger });
 * for (const p of await node.listPipelines('running')) logger.info(`resumed ${p.name}`);
 * ```
 */
export async function startNode(config: NodeConfig): Promise<DataflowNode> {
  const store = await openNodeStore(config.store, config.logger);
  let system: ActorSystem;
  try {
    system = createActorSystem({
    name: 'dataflow-node',
      ...(config.clock === undefined ? {} : { clock: config.clock }),
      ...(config.scheduler === undefined ? {} : { scheduler: config.scheduler }),
    });
  } catch (error) {
    if (store.owned) await store.plugin.close();
    throw error;
  }
  let node: Node | undefined;
  try {
    node = new Node(config, store, system);
    await node.recover();
    return node;
  } catch (error) {
    node?.abandon();
    await system.terminate();
    if (store.owned) await store.plugin.close();
    throw error;
  }
}

class Node implements DataflowNode {
  readonly nodeId: string;
  readonly storeDescription: string;
  readonly persistence: PersistencePlugin;
  private coordinator: ActorRef<CoordinatorCommand>;
  /** Cluster: the forwarding ref used while the coordinator runs on another node. */
  private remote: ActorRef<CoordinatorCommand> | undefined;
  private local: ActorRef<CoordinatorCommand> | undefined;
  private readonly registry: PipelineRegistry;
  readonly sources: SourceReachability;
  private readonly supervisor: NodeSupervisor;
  readonly rateLimiter: NodeRateLimiter;
  private readonly askTimeoutMs: number;
  private readonly unsubscribe: (() => void)[];
  private shuttingDown: Promise<ShutdownReport> | undefined;
  private readonly found: ConfiguredPipelineState[] = [];
  /** Last statuses of released pipelines on their way to the coordinator (the stop waits a little for them). */
  private readonly reporting = new Set<Promise<unknown>>();
  /** Pipeline ids being created here now. */
  private readonly creating = new Set<string>();

  constructor(
    private readonly config: NodeConfig,
    private readonly store: OpenedStore,
    private readonly system: ActorSystem,
  ) {
    this.nodeId = config.nodeId ?? `${hostname()}-${process.pid}`;
    this.storeDescription = store.description;
    this.persistence = store.plugin;
    this.askTimeoutMs = config.askTimeoutMs ?? 10_000;
    this.supervisor = new NodeSupervisor({
      system,
      logger: config.logger,
      ...(config.respawnBackoff === undefined ? {} : { backoff: config.respawnBackoff }),
    });
    if (config.cluster === undefined) {
      this.coordinator = this.spawnLocalCoordinator();
    } else {
      this.remote = config.cluster.remoteCoordinator(system);
      this.coordinator = this.remote;
    }
    this.rateLimiter = createNodeRateLimiter({ clock: system.clock, scheduler: system.scheduler });
    this.registry = new PipelineRegistry({
      system,
      rateLimiter: this.rateLimiter,
      ...(config.lagIntervalMs === undefined ? {} : { lagIntervalMs: config.lagIntervalMs }),
      persistence: store.plugin,
      coordinator: () => this.coordinator,
      connectors: typeof config.connectors === 'function' ? config.connectors(store.plugin) : (config.connectors ?? localConnectorFactory()),
      ...(config.lookups === undefined ? {} : { lookups: config.lookups }),
      logger: config.logger,
      askTimeoutMs: this.askTimeoutMs,
      statusReportIntervalMs: config.statusReportIntervalMs ?? 5_000,
    });
    this.sources = new SourceReachability(system.events, () => system.clock.now(), config.logger);
    this.unsubscribe = [...this.logEvents(config.logger), () => this.sources.close()];
  }

  get events(): Instrumentation<InstrumentationEvent> {
    return this.system.events;
  }

  get failure(): Promise<NodeFailedError> {
    return this.supervisor.failure;
  }

  health(): NodeHealth {
    return this.supervisor.health();
  }

  /** A start that failed: no more supervision. */
  abandon(): void {
    this.supervisor.close();
    for (const off of this.unsubscribe) off();
  }

  /** Spawns the coordinator in this node, under supervision. */
  private spawnLocalCoordinator(): ActorRef<CoordinatorCommand> {
    const ref = this.spawnCoordinator();
    this.local = ref;
    this.supervisor.watch({
      name: 'coordinator',
      path: ref.path,
      persistenceIds: ['coordinator'],
      respawn: () => {
        this.local = this.spawnCoordinator();
        this.coordinator = this.local;
      },
      ...(this.config.cluster === undefined
        ? {}
        : {
            onWriterConflict: (cause: unknown) => {
              // Another node runs the coordinator now: this one forwards again.
              this.config.logger.warn(`the coordinator was taken over by another node (${describeError(cause)}); forwarding to it`);
              this.local = undefined;
              if (this.remote !== undefined) this.coordinator = this.remote;
            },
          }),
    });
    return ref;
  }

  get runsCoordinator(): boolean {
    return this.local !== undefined;
  }

  localCoordinator(): ActorRef<CoordinatorCommand> | undefined {
    return this.local;
  }

  async becomeCoordinator(): Promise<void> {
    this.ensureRunning();
    if (this.local !== undefined) return;
    this.coordinator = this.spawnLocalCoordinator();
    // Answered once it recovered from its journal.
    await this.askCoordinator<readonly RegisteredPipeline[]>((replyTo) => ({ type: 'list-pipelines', replyTo }));
  }

  async resignCoordinator(): Promise<void> {
    const local = this.local;
    if (local === undefined || this.remote === undefined) return;
    this.local = undefined;
    this.coordinator = this.remote;
    this.supervisor.retire(local.path);
    await this.system.stop(local);
  }

  hostedPipelines(): readonly string[] {
    return this.registry.ids();
  }

  reportStatuses(): Promise<void> {
    return this.registry.flushStatuses();
  }

  async lastReports(timeoutMs = 2_000): Promise<void> {
    if (this.reporting.size === 0) return;
    await Promise.race([Promise.allSettled([...this.reporting]), new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }

  async adopt(pipelineId: string): Promise<PipelineState> {
    this.ensureRunning();
    if (!this.registry.has(pipelineId)) this.spawnPipeline(pipelineId);
    return this.stateOf(pipelineId);
  }

  async release(pipelineId: string): Promise<void> {
    if (!this.registry.has(pipelineId)) return;
    // Stopped first (its lease may be lapsing); its last status goes to the coordinator afterwards, not waited for.
    const last = this.registry.latest(pipelineId);
    await this.removePipeline(pipelineId);
    // Tasks 1..N-1 are not in the coordinator's registry (ADR 0013): nothing to report.
    if (last === undefined || last.status === 'empty' || pipelineTaskOf(pipelineId).index > 0) return;
    const update = { pipelineId, status: last.status, totalRecords: last.metrics.recordsProcessed, failedRecords: last.metrics.recordsFailed };
    const report = this.coordinatorCommand((replyTo) => ({ type: 'update-status', ...update, replyTo })).catch((error: unknown) =>
      this.config.logger.warn(`the last status of pipeline ${pipelineId} did not reach the coordinator: ${describeError(error)}`, { pipeline_id: pipelineId }),
    );
    this.reporting.add(report);
    void report.finally(() => this.reporting.delete(report));
  }

  private spawnCoordinator(): ActorRef<CoordinatorCommand> {
    return spawnCoordinator(this.system, {
      persistence: this.store.plugin,
      now: () => this.system.clock.now(),
      ...(this.config.resourceLimits === undefined ? {} : { limits: this.config.resourceLimits }),
    });
  }

  /** Spawns the actor of `pipelineId` under supervision. */
  private spawnPipeline(pipelineId: string): ActorRef<PipelineCommand> {
    const ref = this.registry.spawn(pipelineId);
    const cluster = this.config.cluster;
    this.supervisor.watch({
      name: `pipeline ${pipelineId}`,
      path: ref.path,
      persistenceIds: [pipelinePersistenceId(pipelineId)],
      pipelineId,
      respawn: () => {
        this.registry.respawn(pipelineId);
      },
      ...(cluster === undefined
        ? {}
        : {
            onWriterConflict: (cause: unknown) => {
              this.config.logger.warn(`pipeline ${pipelineId} was taken over by another node (${describeError(cause)}); letting it go`, { pipeline_id: pipelineId });
              void this.registry.remove(pipelineId).then(() => cluster.onTakenOver?.(pipelineId, cause));
            },
          }),
    });
    return ref;
  }

  private async removePipeline(pipelineId: string): Promise<void> {
    const ref = this.registry.ref(pipelineId);
    if (ref !== undefined) this.supervisor.retire(ref.path);
    await this.registry.remove(pipelineId);
  }

  /**
   * Waits for `work` unless an entity of the node fails to recover from its
   * journal first: at start the store's own error is the answer, not an ask
   * that times out (a damaged journal, an unreachable server).
   */
  private duringStart<T>(work: Promise<T>): Promise<T> {
    let off: (() => void) | undefined;
    const failed = new Promise<never>((_resolve, reject) => {
      off = this.system.events.on('event-sourced.recovery.failed', (e) => {
        const name = e.persistenceId === 'coordinator' ? 'the coordinator' : `pipeline ${e.persistenceId.replace(/^pipeline-/, '')}`;
        reject(new NodeFailedError(name, `cannot recover ${name} from the journal: ${describeError(e.error)}`, e.error));
      });
    });
    return Promise.race([work, failed]).finally(() => off?.());
  }

  get recovered(): readonly ConfiguredPipelineState[] {
    return this.found;
  }

  /** Spawns every registered pipeline and waits until each has recovered. */
  async recover(): Promise<void> {
    if (this.config.cluster !== undefined) {
      // The cluster runtime places the pipelines (and the coordinator) once this node has joined.
      this.supervisor.markStarted();
      return;
    }
    const registered = await this.duringStart(this.askCoordinator<readonly RegisteredPipeline[]>((replyTo) => ({ type: 'list-pipelines', replyTo })));
    // Every task of a parallel pipeline runs here (ADR 0013); task 0 has the pipeline's id and stands for it below.
    for (const p of registered) for (const taskId of pipelineTaskIds(p.pipelineId, p.parallelism)) this.spawnPipeline(taskId);
    for (const p of registered) {
      const state = await this.duringStart(this.stateOf(p.pipelineId));
      if (state.status !== 'empty') {
        this.found.push(state);
        continue;
      }
      // Registered, but the node stopped before the pipeline was created: nothing to resume.
      this.config.logger.warn(`pipeline ${p.pipelineId} (${p.name}) was registered but never created; unregistering it`, { pipeline_id: p.pipelineId });
      for (const taskId of pipelineTaskIds(p.pipelineId, p.parallelism)) await this.removePipeline(taskId);
      await this.coordinatorCommand((replyTo) => ({ type: 'unregister', pipelineId: p.pipelineId, replyTo }));
    }
    this.supervisor.markStarted();
  }

  async createPipeline(definition: unknown, options: { readonly pipelineId?: string } = {}): Promise<ConfiguredPipelineState> {
    this.ensureRunning();
    const valid = this.validated(definition);
    const pipelineId = options.pipelineId ?? (this.config.newPipelineId ?? randomUUID)();
    if (!PIPELINE_ID.test(pipelineId)) {
      throw new InvalidPipelineDefinitionError([{ path: 'pipelineId', message: 'A pipeline id is 1-100 letters, digits, - or _' }]);
    }
    if (this.config.cluster !== undefined && !this.config.cluster.hosts(pipelineId)) {
      throw new NodeUnavailableError(`pipeline ${pipelineId} belongs to a shard this node does not hold now: create it on the node that does (the admin API forwards there)`);
    }
    // One create per id at a time here: two racing would both register (idempotent) and the loser's cleanup would remove the winner's pipeline.
    if (this.creating.has(pipelineId)) throw new NodeUnavailableError(`a create of pipeline ${pipelineId} is in progress; retry in a moment`);
    this.creating.add(pipelineId);
    try {
      return await this.createNew(pipelineId, valid);
    } finally {
      this.creating.delete(pipelineId);
    }
  }

  private async createNew(pipelineId: string, valid: PipelineDefinition): Promise<ConfiguredPipelineState> {
    // Known here, or registered with the coordinator (its shard is ours; the cluster may not have adopted it yet): an existing pipeline is a conflict,
    // but a registration whose entity was never created (a create cut off between the two steps, e.g. its answer lost while the coordinator moved) is taken over.
    const known = this.registry.has(pipelineId) || (await this.askCoordinator<RegisteredPipeline | undefined>((replyTo) => ({ type: 'get-pipeline', pipelineId, replyTo }))) !== undefined;
    if (known) {
      const existing = await this.adopt(pipelineId);
      if (existing.status !== 'empty') throw new PipelineExistsError(pipelineId, existing, isDeepStrictEqual(existing.definition, valid));
      this.config.logger.warn(`pipeline ${pipelineId} was registered but never created (an earlier create was cut off); creating it now`, { pipeline_id: pipelineId });
    }
    // Tasks 1..N-1 first, before the registration makes them visible to other nodes (ADR 0013).
    const others = pipelineTaskIds(pipelineId, valid.parallelism).slice(1);
    await this.createTasks(others, valid);
    try {
      await this.register(pipelineId, valid, others.length + 1);
    } catch (error) {
      await this.discardTasks(others);
      throw error;
    }
    // Spawned already when taken over above, or adopted by the cluster as soon as it was registered.
    const ref = this.registry.ref(pipelineId) ?? this.spawnPipeline(pipelineId);
    const reply = await ask<PipelineCommand, PipelineReply>(ref, (replyTo) => ({ type: 'create', definition: valid, replyTo }), { timeoutMs: this.askTimeoutMs });
    if (reply.status === 'error' || reply.value.state.status === 'empty') {
      await this.removePipeline(pipelineId);
      await this.discardTasks(others);
      await this.coordinatorCommand((replyTo) => ({ type: 'unregister', pipelineId, replyTo }));
      throw reply.status === 'success' ? new NodeUnavailableError(`pipeline ${pipelineId} was not created`) : reply.error;
    }
    return reply.value.state;
  }

  /**
   * Creates the entities of `taskIds` with `definition`: hosted here, or in a
   * cluster, for a task whose shard another node holds, written by a
   * detached actor (its host recovers it created). All or nothing: the
   * tasks created before a failure are deleted again.
   */
  private async createTasks(taskIds: readonly string[], definition: PipelineDefinition): Promise<void> {
    const created: string[] = [];
    try {
      for (const taskId of taskIds) {
        const cluster = this.config.cluster;
        if (cluster !== undefined && !cluster.hosts(taskId)) {
          await this.registry.detached(taskId, (replyTo) => ({ type: 'create', definition, replyTo }));
        } else {
          const ref = this.spawnPipeline(taskId);
          const reply = await ask<PipelineCommand, PipelineReply>(ref, (replyTo) => ({ type: 'create', definition, replyTo }), { timeoutMs: this.askTimeoutMs });
          if (reply.status === 'error') {
            await this.removePipeline(taskId);
            throw reply.error;
          }
        }
        created.push(taskId);
      }
    } catch (error) {
      await this.discardTasks(created);
      throw error;
    }
  }

  /** Deletes tasks created for a pipeline that did not come to be (or lost them to a smaller parallelism); a failure is logged, the task stays configured and unregistered. */
  private async discardTasks(taskIds: readonly string[]): Promise<void> {
    for (const taskId of taskIds) {
      try {
        await this.deleteTask(taskId);
      } catch (error) {
        this.config.logger.warn(`task ${taskId} could not be deleted (${describeError(error)}); it stays in its journal, configured and not run`, { pipeline_id: taskId });
      }
    }
  }

  /** Deletes one task's entity: hosted here, on its node, or (not hosted anywhere) through a detached actor. */
  private async deleteTask(taskId: string): Promise<void> {
    if (this.registry.has(taskId)) {
      await this.command(taskId, (replyTo) => ({ type: 'delete', replyTo }));
      await this.removePipeline(taskId);
      return;
    }
    const cluster = this.config.cluster;
    if (cluster?.remoteTasks !== undefined && (await cluster.remoteTasks.state(taskId).catch(() => undefined)) !== undefined) {
      await cluster.remoteTasks.delete(taskId);
      return;
    }
    await this.registry.detached(taskId, (replyTo) => ({ type: 'delete', replyTo }));
  }

  /** The tasks a command on `pipelineId` goes to: a task id names itself; a pipeline id its tasks, per its definition (task 0's). */
  private async taskIdsOf(pipelineId: string): Promise<readonly string[]> {
    if (pipelineTaskOf(pipelineId).index > 0) return [pipelineId];
    const state = await this.getPipeline(pipelineId);
    if (state === undefined || state.status === 'empty') throw new PipelineNotFoundError(pipelineId);
    return pipelineTaskIds(pipelineId, state.definition.parallelism);
  }

  /** A task's state, hosted here or (cluster) asked on its node; undefined when unknown. */
  private async taskState(taskId: string): Promise<PipelineState | undefined> {
    if (this.registry.has(taskId)) return this.stateOf(taskId);
    return this.config.cluster?.remoteTasks?.state(taskId);
  }

  private taskCommand(taskId: string, action: TaskAction, reason: string | undefined): Promise<PipelineState> {
    if (!this.registry.has(taskId)) {
      const remote = this.config.cluster?.remoteTasks;
      if (remote === undefined) return Promise.reject(new PipelineNotFoundError(taskId));
      return remote.command(taskId, action, reason);
    }
    return this.command(taskId, (replyTo): PipelineCommand => {
      switch (action) {
        case 'start':
          return { type: 'start', replyTo };
        case 'stop':
          return { type: 'stop', reason: reason ?? 'stopped by request', replyTo };
        case 'pause':
          return { type: 'pause', reason: reason ?? 'paused by request', replyTo };
        case 'resume':
          return { type: 'resume', replyTo };
        case 'reset':
          return { type: 'reset', replyTo };
      }
    });
  }

  /**
   * A lifecycle command on a pipeline goes to each of its tasks (ADR 0013),
   * side by side. Tasks already where the command leads are left alone (a
   * command that half succeeded can be sent again), unless all are: then
   * every task gets it and answers as a single pipeline would (a refusal).
   * The first failure is thrown once every task answered; the answer is task
   * 0's state.
   */
  private async lifecycle(pipelineId: string, action: TaskAction, reason?: string): Promise<PipelineState> {
    const taskIds = await this.taskIdsOf(pipelineId);
    const [first] = taskIds;
    if (taskIds.length === 1 && first !== undefined) return this.taskCommand(first, action, reason);
    const states = await Promise.all(taskIds.map((id) => this.taskState(id)));
    const pending = taskIds.filter((_, i) => !alreadyAfter(states[i], action));
    const targets = new Set(pending.length === 0 ? taskIds : pending);
    const results = await Promise.allSettled(taskIds.map((id, i) => (targets.has(id) ? this.taskCommand(id, action, reason) : Promise.resolve(states[i] as PipelineState))));
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure !== undefined) throw failure.reason;
    const answer = results[0];
    if (answer?.status !== 'fulfilled') throw new PipelineNotFoundError(pipelineId);
    return answer.value;
  }

  async pipelineTasks(pipelineId: string): Promise<readonly PipelineState[] | undefined> {
    const state = await this.getPipeline(pipelineId);
    if (state === undefined || state.status === 'empty') return undefined;
    const taskIds = pipelineTaskIds(pipelineId, state.definition.parallelism);
    if (taskIds.length === 1) return [state];
    const others = await Promise.all(taskIds.slice(1).map((id) => this.taskState(id)));
    return [state, ...others.map((s): PipelineState => s ?? { status: 'empty' })];
  }

  /** `definition` prepared (connection defaults) and validated against the node's connector types. */
  private validated(definition: unknown): PipelineDefinition {
    const prepared = this.config.prepareDefinition === undefined ? definition : this.config.prepareDefinition(definition);
    const validation = validatePipelineDefinition(prepared, { connectors: this.config.connectorRegistry ?? localConnectorRegistry });
    if (!validation.ok) throw new InvalidPipelineDefinitionError(validation.issues);
    return validation.definition;
  }

  start(pipelineId: string): Promise<PipelineState> {
    return this.lifecycle(pipelineId, 'start');
  }

  stop(pipelineId: string, reason = 'stopped by request'): Promise<PipelineState> {
    return this.lifecycle(pipelineId, 'stop', reason);
  }

  pause(pipelineId: string, reason = 'paused by request'): Promise<PipelineState> {
    return this.lifecycle(pipelineId, 'pause', reason);
  }

  resume(pipelineId: string): Promise<PipelineState> {
    return this.lifecycle(pipelineId, 'resume');
  }

  reset(pipelineId: string): Promise<PipelineState> {
    return this.lifecycle(pipelineId, 'reset');
  }

  async updatePipeline(pipelineId: string, definition: unknown): Promise<ConfiguredPipelineState> {
    const current = await this.getPipeline(pipelineId);
    if (current === undefined || current.status === 'empty') throw new PipelineNotFoundError(pipelineId);
    const valid = this.validated(definition);
    if (valid.name !== current.definition.name) {
      throw new InvalidPipelineDefinitionError([{ path: 'name', message: `A pipeline keeps its name: this one is ${JSON.stringify(current.definition.name)} (create a new pipeline to rename)` }]);
    }
    // Task 0 first: its state decides whether an update is allowed now (configured or stopped).
    const state = await this.command(pipelineId, (replyTo) => ({ type: 'update-config', definition: valid, replyTo }));
    if (state.status === 'empty') throw new PipelineNotFoundError(pipelineId);
    if (pipelineTaskOf(pipelineId).index > 0) return state; // one task, updated through its node by the pipeline's
    const before = pipelineTaskIds(pipelineId, current.definition.parallelism);
    const after = pipelineTaskIds(pipelineId, valid.parallelism);
    // Kept tasks take the new definition; tasks beyond the new parallelism are deleted, new ones created
    // (their partitions start at the group's committed offsets, committed after the checkpoints; ADR 0013).
    for (const taskId of after.slice(1).filter((id) => before.includes(id))) {
      if (this.registry.has(taskId)) await this.command(taskId, (replyTo) => ({ type: 'update-config', definition: valid, replyTo }));
      else {
        const remote = this.config.cluster?.remoteTasks;
        if (remote === undefined) throw new PipelineNotFoundError(taskId);
        await remote.update(taskId, valid);
      }
    }
    await this.createTasks(after.filter((id) => !before.includes(id)), valid);
    // The registry shows the source and sink types and the parallelism: same name, so this updates them (or changes nothing).
    // Registered before removed tasks are deleted: a cluster node places tasks by the registry, and must not adopt a task again after its delete.
    await this.register(pipelineId, valid, after.length);
    for (const taskId of before.filter((id) => !after.includes(id))) await this.deleteTask(taskId);
    return state;
  }

  /** Registers `pipelineId` with the coordinator, or updates its registration (same name): types and parallelism (`tasks`, 1 = none). */
  private async register(pipelineId: string, definition: PipelineDefinition, tasks: number): Promise<void> {
    await this.coordinatorCommand((replyTo) => ({
      type: 'register',
      pipelineId,
      name: definition.name,
      sourceType: definition.source.type,
      sinkType: definition.sink.type,
      ...(tasks > 1 ? { parallelism: tasks } : {}),
      replyTo,
    }));
  }

  async resetOffsets(pipelineId: string): Promise<ConfiguredPipelineState> {
    const taskIds = await this.taskIdsOf(pipelineId);
    for (const taskId of taskIds.slice(1)) {
      if (this.registry.has(taskId)) await this.command(taskId, (replyTo) => ({ type: 'reset-offsets', sourceOffset: null, replyTo }));
      else {
        const remote = this.config.cluster?.remoteTasks;
        if (remote === undefined) throw new PipelineNotFoundError(taskId);
        await remote.resetOffsets(taskId);
      }
    }
    const state = await this.command(taskIds[0] ?? pipelineId, (replyTo) => ({ type: 'reset-offsets', sourceOffset: null, replyTo }));
    if (state.status === 'empty') throw new PipelineNotFoundError(pipelineId);
    return state;
  }

  async deletePipeline(pipelineId: string): Promise<void> {
    const taskIds = await this.taskIdsOf(pipelineId).catch(() => [pipelineId]);
    if (taskIds.length > 1) {
      // Nothing is deleted while any task still runs: the pipeline is deleted whole or not at all.
      const states = await Promise.all(taskIds.map((id) => this.taskState(id)));
      const busy = states.findIndex((s) => s?.status === 'running' || s?.status === 'paused');
      const state = states[busy];
      if (state !== undefined && state.status !== 'empty') {
        throw new PipelineCommandRejectedError(pipelineId, 'delete', state.status, `its task ${taskIds[busy] ?? ''} is ${state.status}: stop the pipeline first`);
      }
    }
    // Task 0 first: its state decides whether a delete is allowed now; then the other tasks.
    await this.command(pipelineId, (replyTo) => ({ type: 'delete', replyTo }));
    // Deleted in its journal first: a crash before the unregistration leaves a registered, empty pipeline, which the next start unregisters.
    await this.removePipeline(pipelineId);
    if (pipelineTaskOf(pipelineId).index > 0) return;
    for (const taskId of taskIds.slice(1)) await this.deleteTask(taskId);
    await this.coordinatorCommand((replyTo) => ({ type: 'unregister', pipelineId, replyTo }));
  }

  async ingest(pipelineId: string, batchId: string, records: readonly DataRecord[]): Promise<{ readonly state: PipelineState; readonly duplicate: boolean }> {
    this.ensureRunning();
    const ref = this.registry.ref(pipelineId);
    if (ref === undefined) throw new PipelineNotFoundError(pipelineId);
    const reply = await ask<PipelineCommand, PipelineReply>(ref, (replyTo) => ({ type: 'ingest', batchId, records, replyTo }), { timeoutMs: this.askTimeoutMs });
    if (reply.status === 'error') throw reply.error;
    return { state: reply.value.state, duplicate: reply.value.duplicate === true };
  }

  async getPipeline(pipelineId: string): Promise<PipelineState | undefined> {
    this.ensureRunning();
    if (!this.registry.has(pipelineId)) return undefined;
    return this.stateOf(pipelineId);
  }

  listPipelines(status?: PipelineStatus): Promise<readonly RegisteredPipeline[]> {
    this.ensureRunning();
    return this.askCoordinator<readonly RegisteredPipeline[]>((replyTo) =>
      status === undefined ? { type: 'list-pipelines', replyTo } : { type: 'list-pipelines', status, replyTo },
    );
  }

  systemStatus(): Promise<SystemStatus> {
    this.ensureRunning();
    return this.askCoordinator<SystemStatus>((replyTo) => ({ type: 'get-system-status', replyTo }));
  }

  shutdown(): Promise<ShutdownReport> {
    this.shuttingDown ??= this.close();
    return this.shuttingDown;
  }

  private async close(): Promise<ShutdownReport> {
    const failures: unknown[] = [];
    this.supervisor.close();
    await this.lastReports();
    await this.registry.stopAll();
    const pipelines = this.registry
      .ids()
      .map((id) => this.registry.latest(id))
      .filter((s): s is ConfiguredPipelineState => s !== undefined && s.status !== 'empty');
    if (this.health().state !== 'failed') await this.registry.flushStatuses().catch((error: unknown) => failures.push(error));
    for (const off of this.unsubscribe) off();
    await this.system.terminate();
    if (this.store.owned) await this.store.plugin.close().catch((error: unknown) => failures.push(error));
    if (failures.length > 0) {
      throw new AggregateError(failures, `the node stopped, but not cleanly: ${failures.map(describeError).join('; ')}`);
    }
    return { pipelines };
  }

  private ensureRunning(): void {
    if (this.shuttingDown !== undefined) throw new NodeUnavailableError('it is shutting down');
  }

  private async command(pipelineId: string, build: (replyTo: ActorRef<PipelineReply>) => PipelineCommand): Promise<PipelineState> {
    this.ensureRunning();
    const ref = this.registry.ref(pipelineId);
    if (ref === undefined) throw new PipelineNotFoundError(pipelineId);
    const reply = await ask<PipelineCommand, PipelineReply>(ref, build, { timeoutMs: this.askTimeoutMs });
    if (reply.status === 'error') throw reply.error;
    return reply.value.state;
  }

  private stateOf(pipelineId: string): Promise<PipelineState> {
    const ref = this.registry.ref(pipelineId);
    if (ref === undefined) return Promise.reject(new PipelineNotFoundError(pipelineId));
    return ask<PipelineCommand, PipelineState>(ref, (replyTo) => ({ type: 'get-state', replyTo }), { timeoutMs: this.askTimeoutMs });
  }

  /** Asks the coordinator; an error reply (a refused command, a failed journal write) rejects. */
  private askCoordinator<R>(build: (replyTo: ActorRef<StatusReply<R>>) => CoordinatorCommand): Promise<R> {
    return askWithStatus<CoordinatorCommand, R>(this.coordinator, build, { timeoutMs: this.askTimeoutMs });
  }

  private async coordinatorCommand(build: (replyTo: ActorRef<CoordinatorReply>) => CoordinatorCommand): Promise<void> {
    await this.askCoordinator<RegisteredPipeline | undefined>(build);
  }

  /** The node's own log lines from the instrumentation events. */
  private logEvents(logger: NodeLogger): (() => void)[] {
    const events = this.system.events;
    return [
      events.on('pipeline.status.changed', (e) => {
        if (e.from === 'empty' && e.to !== 'running') return;
        logger.info(`pipeline ${e.pipelineId}: ${e.from} -> ${e.to}`, { pipeline_id: e.pipelineId, from: e.from, to: e.to });
      }),
      events.on('pipeline.batch.failed', (e) =>
        logger.warn(`pipeline ${e.pipelineId}: batch ${e.batchId ?? '(connectors)'} failed${e.retriable ? ', will retry' : ''}: ${describeError(e.error)}`, {
          pipeline_id: e.pipelineId,
          batch_id: e.batchId,
          retriable: e.retriable,
        }),
      ),
      events.on('pipeline.batch.completed', (e) =>
        logger.debug(`pipeline ${e.pipelineId}: batch ${e.batchId} done`, {
          pipeline_id: e.pipelineId,
          records: e.records,
          failed: e.failed,
          duration_ms: e.durationMs,
        }),
      ),
      events.on('actor.failed', (e) => logger.error(`actor ${e.path} failed during ${e.during}: ${describeError(e.error)}`, { path: e.path, directive: e.directive })),
    ];
  }
}

/** Whether a task in `state` is already where `action` leads (a fanned-out command leaves it alone). */
function alreadyAfter(state: PipelineState | undefined, action: TaskAction): boolean {
  const status = state?.status;
  switch (action) {
    case 'start':
    case 'resume':
      return status === 'running';
    case 'stop':
      return status === 'stopped' || status === 'configured';
    case 'pause':
      return status === 'paused';
    case 'reset':
      return status !== 'failed';
  }
}

