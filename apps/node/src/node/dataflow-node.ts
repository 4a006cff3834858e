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
  spawnCoordinator,
  validatePipelineDefinition,
  CoordinatorCommandRejectedError,
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
import { hostname } from 'node:os';
import { localConnectorFactory } from './connector-factory.js';
import { NodeFailedError, NodeUnavailableError, PipelineNotFoundError } from './node-errors.js';
import type { NodeLogger } from './node-logger.js';
import { openNodeStore, type NodeStore, type OpenedStore } from './node-persistence.js';
import { createNodeRateLimiter, type NodeRateLimiter } from './node-rate-limiter.js';
import { PipelineRegistry } from './pipeline-registry.js';
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
  /** The pipeline's state, or undefined when no pipeline has this id. */
  getPipeline(pipelineId: string): Promise<PipelineState | undefined>;
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
  private readonly supervisor: NodeSupervisor;
  readonly rateLimiter: NodeRateLimiter;
  private readonly askTimeoutMs: number;
  private readonly unsubscribe: (() => void)[];
  private shuttingDown: Promise<ShutdownReport> | undefined;
  private readonly found: ConfiguredPipelineState[] = [];
  /** Last statuses of released pipelines on their way to the coordinator (the stop waits a little for them). */
  private readonly reporting = new Set<Promise<unknown>>();

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
    this.unsubscribe = this.logEvents(config.logger);
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
    if (last === undefined || last.status === 'empty') return;
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
    for (const p of registered) this.spawnPipeline(p.pipelineId);
    for (const p of registered) {
      const state = await this.duringStart(this.stateOf(p.pipelineId));
      if (state.status !== 'empty') {
        this.found.push(state);
        continue;
      }
      // Registered, but the node stopped before the pipeline was created: nothing to resume.
      this.config.logger.warn(`pipeline ${p.pipelineId} (${p.name}) was registered but never created; unregistering it`, { pipeline_id: p.pipelineId });
      await this.removePipeline(p.pipelineId);
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
    if (this.registry.has(pipelineId)) throw new CoordinatorCommandRejectedError('register', pipelineId, 'a pipeline with this id exists');
    if (this.config.cluster !== undefined && !this.config.cluster.hosts(pipelineId)) {
      throw new NodeUnavailableError(`pipeline ${pipelineId} belongs to a shard this node does not hold now: create it on the node that does (the admin API forwards there)`);
    }
    // Registering an existing id under the same name is idempotent: ask first, so a failed create never unregisters a pipeline of another node.
    const known = await this.askCoordinator<RegisteredPipeline | undefined>((replyTo) => ({ type: 'get-pipeline', pipelineId, replyTo }));
    if (known !== undefined) throw new CoordinatorCommandRejectedError('register', pipelineId, 'a pipeline with this id exists');
    await this.coordinatorCommand((replyTo) => ({
      type: 'register',
      pipelineId,
      name: valid.name,
      sourceType: valid.source.type,
      sinkType: valid.sink.type,
      replyTo,
    }));
    const ref = this.spawnPipeline(pipelineId);
    const reply = await ask<PipelineCommand, PipelineReply>(ref, (replyTo) => ({ type: 'create', definition: valid, replyTo }), { timeoutMs: this.askTimeoutMs });
    if (reply.status === 'error' || reply.value.state.status === 'empty') {
      await this.removePipeline(pipelineId);
      await this.coordinatorCommand((replyTo) => ({ type: 'unregister', pipelineId, replyTo }));
      throw reply.status === 'success' ? new NodeUnavailableError(`pipeline ${pipelineId} was not created`) : reply.error;
    }
    return reply.value.state;
  }

  /** `definition` prepared (connection defaults) and validated against the node's connector types. */
  private validated(definition: unknown): PipelineDefinition {
    const prepared = this.config.prepareDefinition === undefined ? definition : this.config.prepareDefinition(definition);
    const validation = validatePipelineDefinition(prepared, { connectors: this.config.connectorRegistry ?? localConnectorRegistry });
    if (!validation.ok) throw new InvalidPipelineDefinitionError(validation.issues);
    return validation.definition;
  }

  start(pipelineId: string): Promise<PipelineState> {
    return this.command(pipelineId, (replyTo) => ({ type: 'start', replyTo }));
  }

  stop(pipelineId: string, reason = 'stopped by request'): Promise<PipelineState> {
    return this.command(pipelineId, (replyTo) => ({ type: 'stop', reason, replyTo }));
  }

  pause(pipelineId: string, reason = 'paused by request'): Promise<PipelineState> {
    return this.command(pipelineId, (replyTo) => ({ type: 'pause', reason, replyTo }));
  }

  resume(pipelineId: string): Promise<PipelineState> {
    return this.command(pipelineId, (replyTo) => ({ type: 'resume', replyTo }));
  }

  reset(pipelineId: string): Promise<PipelineState> {
    return this.command(pipelineId, (replyTo) => ({ type: 'reset', replyTo }));
  }

  async updatePipeline(pipelineId: string, definition: unknown): Promise<ConfiguredPipelineState> {
    const current = await this.getPipeline(pipelineId);
    if (current === undefined || current.status === 'empty') throw new PipelineNotFoundError(pipelineId);
    const valid = this.validated(definition);
    if (valid.name !== current.definition.name) {
      throw new InvalidPipelineDefinitionError([{ path: 'name', message: `A pipeline keeps its name: this one is ${JSON.stringify(current.definition.name)} (create a new pipeline to rename)` }]);
    }
    const state = await this.command(pipelineId, (replyTo) => ({ type: 'update-config', definition: valid, replyTo }));
    if (state.status === 'empty') throw new PipelineNotFoundError(pipelineId);
    // The registry shows the source and sink types: same name, so this updates them (or changes nothing).
    await this.coordinatorCommand((replyTo) => ({ type: 'register', pipelineId, name: valid.name, sourceType: valid.source.type, sinkType: valid.sink.type, replyTo }));
    return state;
  }

  async resetOffsets(pipelineId: string): Promise<ConfiguredPipelineState> {
    const state = await this.command(pipelineId, (replyTo) => ({ type: 'reset-offsets', sourceOffset: null, replyTo }));
    if (state.status === 'empty') throw new PipelineNotFoundError(pipelineId);
    return state;
  }

  async deletePipeline(pipelineId: string): Promise<void> {
    await this.command(pipelineId, (replyTo) => ({ type: 'delete', replyTo }));
    // Deleted in its journal first: a crash before the unregistration leaves a registered, empty pipeline, which the next start unregisters.
    await this.removePipeline(pipelineId);
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
    if (this.reporting.size > 0) await Promise.race([Promise.allSettled([...this.reporting]), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
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
        logger.warn(`pipeline ${e.pipelineId}: batch ${e.batchId ?? '(connectors)'} failed${e.retriable ? ', will retry' : ''}: ${messageOf(e.error)}`, {
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
      events.on('pipeline.source.lag-failed', (e) =>
        logger.warn(`pipeline ${e.pipelineId}: reading the lag of its ${e.sourceType} source failed: ${messageOf(e.error)}`, { pipeline_id: e.pipelineId }),
      ),
      events.on('actor.failed', (e) => logger.error(`actor ${e.path} failed during ${e.during}: ${messageOf(e.error)}`, { path: e.path, directive: e.directive })),
    ];
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
