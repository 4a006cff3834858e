/**
 * A node's part in the cluster, one tick at a time (default every second):
 *
 * 1. heartbeat its membership and read the live members;
 * 2. work out the shards it should own (rendezvous over the live members) and
 *    whether it should hold the coordinator singleton;
 * 3. hand back what it should no longer own: stop those pipelines first,
 *    then release the leases (a clean hand-off: the next owner recovers them
 *    from their last checkpoint);
 * 4. renew what it keeps, take what it should own and is free;
 * 5. run exactly the registered pipelines of the shards it holds (in a
 *    loop of its own: asking the coordinator and recovering pipelines may
 *    be slow during a journal outage, and heartbeats must not wait for it);
 *    a pipeline with `parallelism: N` is N tasks, each placed by the shard of
 *    its own id (ADR 0013).
 *
 * The read-model projections are split the same way: K slice ranges, each
 * a lease (`projections-<min>-<max>`) placed by rendezvous like a shard;
 * the node runs the ranges it holds (`projectionRanges.onRange`), stops a
 * range before it releases its lease, and stops it when the lease lapses.
 *
 * A lease this node cannot renew in time is treated as lost by its own
 * monotonic clock, before the server copy can expire (a watchdog checks every
 * 200 ms, apart from the tick, so a Redis call that hangs cannot delay it):
 * the pipelines of that shard stop and the coordinator resigns, so a node cut
 * off from Redis stops writing before another node may start. The journal's
 * write-time check is the last line: a pipeline another node wrote meanwhile
 * is let go (`onTakenOver`) instead of failing the node.
 */
import { isDataflowError, pipelineTaskIds } from '@dataflow/core';
import type { NodeLogger } from '../node/node-logger.js';
import type { DataflowNode } from '../node/dataflow-node.js';
import type { ClusterMember, ClusterRedis, HeldLease } from './cluster-redis.js';
import type { PipelineOwner } from './pipeline-routing.js';
import { DEFAULT_SHARDS, ownerOf, shardLeaseName, shardOf, shardsOf } from './rendezvous.js';
import type { SliceRange } from '@dataflow/projections';
import { NodeConfigError } from '../node/node-errors.js';

/** The singleton's lease name. */
export const COORDINATOR_LEASE = 'coordinator';

export interface ClusterRuntimeOptions {
  readonly redis: ClusterRedis;
  readonly logger: NodeLogger;
  /** Default 64; every node of a cluster must use the same number. */
  readonly shards?: number;
  /** Default 1 000 ms. */
  readonly tickMs?: number;
  /** Told when this node starts or stops running the coordinator. */
  readonly onCoordinator?: (runs: boolean) => Promise<void>;
  /**
   * The read-model projections split into slice ranges, each held by one
   * live node: `onRange(range, true)` once this node holds the range's
   * lease, `onRange(range, false)` before it releases it (or once it
   * lapsed); the stop must be complete when it resolves. Every node of a
   * cluster must split into the same ranges (a node joining with another
   * count is refused, see `start`).
   */
  readonly projectionRanges?: {
    readonly ranges: readonly SliceRange[];
    readonly onRange: (range: SliceRange, runs: boolean) => Promise<void>;
  };
}

/** The lease name of a projection slice range. */
export function projectionRangeLeaseName(range: SliceRange): string {
  return `projections-${range.min}-${range.max}`;
}

/** What `/ready` and the API show about the cluster. */
export interface ClusterView {
  readonly nodeId: string;
  readonly members: readonly ClusterMember[];
  readonly shards: readonly number[];
  readonly coordinator: boolean;
  /** The projection slice ranges this node holds (lease names `projections-<min>-<max>`). */
  readonly projectionRanges: readonly string[];
  /** Redis answered the last heartbeat. */
  readonly connected: boolean;
  /** Why this node is not a member although Redis answers (another process holds its node id). */
  readonly conflict?: string;
}

/**
 * @example
 * ```ts
 * const cluster = new ClusterRuntime({ redis: new ClusterRedis(client, { nodeId }), logger });
 * const node = await startNode({ ...config, nodeId, cluster: { hosts: (id) => cluster.hosts(id), remoteCoordinator } });
 * await cluster.start(node, 'http://10.0.0.5:8080');
 * // ... at SIGTERM
 * await cluster.stop();
 * ```
 */
export class ClusterRuntime {
  private readonly shards: number;
  private readonly held = new Map<string, HeldLease>();
  private members: readonly ClusterMember[] = [];
  private node: DataflowNode | undefined;
  /** The registry as the coordinator last listed it: placement goes on from it while the coordinator moves. */
  private lastRegistry: readonly { pipelineId: string; parallelism?: number }[] | undefined;
  private ticking: Promise<void> | undefined;
  private placing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private placeTimer: NodeJS.Timeout | undefined;
  /** The coordinator being started in this node (it recovers from the journal, which may take long). */
  private becoming: Promise<void> | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private stopped = false;
  private connected = false;
  private url = '';
  /** Another live process holds this node id (its message), until it is free again. */
  private idConflict: string | undefined;
  private readonly startedAt = Date.now();
  /** The projection ranges by lease name. */
  private readonly rangeLeases: ReadonlyMap<string, SliceRange>;
  /** Projection ranges being handed back (stopping, then released). */
  private readonly handingBack = new Map<string, Promise<void>>();

  constructor(private readonly options: ClusterRuntimeOptions) {
    this.shards = options.shards ?? DEFAULT_SHARDS;
    this.rangeLeases = new Map((options.projectionRanges?.ranges ?? []).map((range) => [projectionRangeLeaseName(range), range]));
  }

  get nodeId(): string {
    return this.options.redis.nodeId;
  }

  /** Whether this node runs `pipelineId` now: it holds the lease of its shard and the lease is valid by its own clock. */
  hosts(pipelineId: string): boolean {
    const lease = this.held.get(shardLeaseName(shardOf(pipelineId, this.shards)));
    return lease !== undefined && this.options.redis.isValid(lease);
  }

  /** Where `pipelineId` runs now (for forwarding). */
  ownerOf(pipelineId: string): PipelineOwner {
    if (this.hosts(pipelineId)) return { self: true };
    const owner = ownerOf(shardLeaseName(shardOf(pipelineId, this.shards)), this.members.map((m) => m.nodeId));
    if (owner === undefined || owner === this.nodeId) return undefined;
    const member = this.members.find((m) => m.nodeId === owner);
    return member === undefined ? undefined : { self: false, nodeId: owner, url: member.url };
  }

  /** The admin URL of the node that runs (or is about to run) the coordinator; undefined when none can now. */
  coordinatorUrl(): string | undefined {
    const owner = ownerOf(COORDINATOR_LEASE, this.members.map((m) => m.nodeId));
    if (owner === undefined || owner === this.nodeId) return undefined;
    return this.members.find((m) => m.nodeId === owner)?.url;
  }

  /** Where the coordinator runs now (the projections' API is served there; their ranges run spread over the nodes). */
  coordinatorOwner(): PipelineOwner {
    if (this.node?.runsCoordinator === true) return { self: true };
    const url = this.coordinatorUrl();
    const nodeId = ownerOf(COORDINATOR_LEASE, this.members.map((m) => m.nodeId));
    return url === undefined || nodeId === undefined ? undefined : { self: false, nodeId, url };
  }

  view(): ClusterView {
    return {
      nodeId: this.nodeId,
      members: this.members,
      shards: [...this.held.keys()].filter((k) => k.startsWith('shard-')).map((k) => Number(k.slice(6))).sort((a, b) => a - b),
      coordinator: this.held.has(COORDINATOR_LEASE),
      projectionRanges: [...this.held.keys()].filter((k) => this.rangeLeases.has(k)).sort(),
      connected: this.connected,
      ...(this.idConflict === undefined ? {} : { conflict: this.idConflict }),
    };
  }

  /** Joins as `url` (this node's admin API, as the other nodes reach it) and runs the first tick; then ticks until `stop`. */
  async start(node: DataflowNode, url: string): Promise<void> {
    await this.checkProjectionRanges();
    this.node = node;
    this.url = url;
    await this.tick();
    await this.place(node);
    const tickMs = this.options.tickMs ?? 1_000;
    // Two loops: memberships and leases never wait for the pipelines (a journal outage can make placing them slow).
    const scheduleTick = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.ticking = this.tick().finally(scheduleTick);
      }, tickMs);
      this.timer.unref();
    };
    const schedulePlace = () => {
      if (this.stopped) return;
      this.placeTimer = setTimeout(() => {
        this.placing = this.place(node).finally(schedulePlace);
      }, tickMs);
      this.placeTimer.unref();
    };
    scheduleTick();
    schedulePlace();
    this.watchdog = setInterval(() => void this.expireLapsed(), 200);
    this.watchdog.unref();
  }

  /**
   * Leaves cleanly: stops this node's pipelines (they stay running in their
   * journals) and releases their shards, gives up the coordinator once the
   * pipelines' last statuses reached it, stops the projection ranges,
   * releases every other lease and leaves the membership, so the other
   * nodes take over at their next tick instead of after the lease time.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.placeTimer);
    clearInterval(this.watchdog);
    await this.ticking;
    await this.placing;
    await Promise.all([...this.handingBack.values()]);
    const node = this.node;
    if (node !== undefined) {
      for (const id of node.hostedPipelines()) await node.release(id);
      // Their shards go at once, so the others start the pipelines while this node still hands the coordinator over.
      await Promise.all(
        [...this.held].filter(([name]) => name.startsWith('shard-')).map(async ([name, lease]) => {
          this.held.delete(name);
          await this.options.redis.release(lease).catch(() => undefined);
        }),
      );
      // The pipelines' last statuses may be on their way to the coordinator running here: it stops once they arrived (2 s at most).
      if (node.runsCoordinator) {
        await node.lastReports();
        await this.resign();
      }
    }
    // The projections of the ranges held stop before their leases are released.
    for (const [name, range] of this.rangeLeases) {
      if (!this.held.has(name)) continue;
      await this.options.projectionRanges
        ?.onRange(range, false)
        .catch((error: unknown) => this.options.logger.error(`cluster: stopping the projections of ${name} failed: ${messageOf(error)}`));
    }
    for (const lease of [...this.held.values()]) await this.options.redis.release(lease).catch(() => undefined);
    this.held.clear();
    await this.options.redis.leave().catch((error: unknown) => this.options.logger.warn(`could not leave the cluster cleanly: ${messageOf(error)}; the others see this node go after the lease time`));
  }

  /**
   * Refuses to join a cluster whose live members split the projections into
   * another number of ranges: two splits would apply events twice. (Two
   * nodes joining at the same instant with different numbers are not told
   * apart.) Members that run no projection, or do not say (older versions),
   * are not counted.
   */
  private async checkProjectionRanges(): Promise<void> {
    const count = this.rangeLeases.size;
    if (count === 0) return; // this node runs no projection
    const members = await this.options.redis.members().catch(() => undefined);
    if (members === undefined) return; // Redis is down: the first ticks wait for it, and the check is left to the members that joined
    const other = members.find((m) => m.nodeId !== this.nodeId && m.projectionRanges !== undefined && m.projectionRanges !== 0 && m.projectionRanges !== count);
    if (other !== undefined) {
      throw new NodeConfigError(
        'cluster.projectionRanges',
        `is ${count}, but live member ${other.nodeId} splits the projections into ${other.projectionRanges} ranges; every node of a cluster must use the same number (DATAFLOW_CLUSTER_PROJECTION_RANGES): stop every node to change it`,
      );
    }
  }

  private async tick(): Promise<void> {
    const node = this.node;
    if (node === undefined || this.stopped) return;
    const { redis, logger } = this.options;
    try {
      await redis.heartbeat({ url: this.url, startedAt: this.startedAt, load: node.hostedPipelines().length, projectionRanges: this.rangeLeases.size });
      if (this.idConflict !== undefined) logger.info(`cluster: node id ${this.nodeId} is this process's now`);
      this.idConflict = undefined;
      this.members = await redis.members();
      if (!this.connected) logger.info(`cluster: member ${this.nodeId}; live members: ${this.members.map((m) => m.nodeId).join(', ')}`);
      this.connected = true;
    } catch (error) {
      if (isDataflowError(error, 'cluster/node-id-in-use')) {
        // Not a member while another process holds the id: hold nothing, run nothing, and say so.
        if (this.idConflict === undefined) logger.error(`cluster: ${error.message}; this node runs no pipeline until the id is free`);
        this.idConflict = error.message;
        this.connected = false;
        for (const [name, lease] of [...this.held]) {
          await this.giveUp(name);
          await redis.release(lease).catch(() => undefined);
        }
        return;
      }
      if (this.connected) logger.warn(`cluster: Redis does not answer (${messageOf(error)}); leases this node cannot renew are given up before they expire`);
      this.connected = false;
    }
    await this.expireLapsed();
    const ids = this.members.map((m) => m.nodeId);
    // Without Redis the view is stale: keep what is held (a blip shorter than the lease changes nothing); the watchdog gives up what lapses.
    const desired = new Set(this.connected ? shardsOf(this.nodeId, ids, this.shards).map(shardLeaseName) : this.held.keys());
    if (this.connected && ownerOf(COORDINATOR_LEASE, ids) === this.nodeId) desired.add(COORDINATOR_LEASE);
    if (this.connected && this.rangeLeases.size > 0) {
      // Ranges go to the members that split the projections as this node does (not to one that runs none).
      const runners = this.members.filter((m) => m.projectionRanges === this.rangeLeases.size).map((m) => m.nodeId);
      for (const name of this.rangeLeases.keys()) if (ownerOf(name, runners) === this.nodeId) desired.add(name);
    }

    // Hand back first: stop, then release. A projection range is handed back beside the tick (its stop waits for the statement in flight).
    for (const [name, lease] of [...this.held]) {
      if (desired.has(name)) continue;
      if (this.rangeLeases.has(name)) {
        this.handBackRange(name, lease);
        continue;
      }
      await this.giveUp(name);
      await redis.release(lease).catch(() => undefined);
    }
    // Keep what is ours: renewed side by side (one round trip for all, ioredis pipelines them), so many leases never outlast their validity.
    await Promise.all(
      [...this.held].map(async ([name, lease]) => {
        try {
          const renewed = await redis.renew(lease);
          if (renewed === undefined) {
            logger.warn(`cluster: lease ${name} was lost (another node holds it now)`);
            // A projection range's stop may wait for a statement in flight: it does not hold up the tick (giveUp logs its failure).
            if (this.rangeLeases.has(name)) void this.giveUp(name);
            else await this.giveUp(name);
          } else if (this.held.has(name)) {
            this.held.set(name, renewed);
          }
        } catch {
          // Not renewed: the watchdog gives it up when its local validity ends.
        }
      }),
    );
    // Take what should be ours and is free.
    for (const name of desired) {
      if (this.held.has(name)) continue;
      try {
        const lease = await redis.acquire(name);
        if (lease === undefined) continue; // the previous owner still holds it (handing over, or until it expires)
        this.held.set(name, lease);
        // Not awaited: the coordinator recovers from the journal, and leases must keep being renewed meanwhile.
        if (name === COORDINATOR_LEASE) this.becoming = this.becomeCoordinator(lease).finally(() => (this.becoming = undefined));
        const range = this.rangeLeases.get(name);
        // Not awaited either (a stop of the same range may still be under way); its start is queued behind it.
        if (range !== undefined) void this.runRange(name, range, lease);
      } catch {
        // Redis went away mid-tick: try again at the next one.
      }
    }
  }

  /**
   * Runs the registered pipelines of the held shards, and only those; then
   * sends the coordinator the status reports it missed while it moved. Its
   * own loop: the coordinator and the journal may be slow to answer.
   */
  private async place(node: DataflowNode): Promise<void> {
    if (this.stopped) return;
    let registered: readonly { pipelineId: string; parallelism?: number }[];
    try {
      registered = await node.listPipelines();
      this.lastRegistry = registered;
    } catch {
      // The coordinator is moving (or its journal is down). The shards this node holds are its own either way: it runs
      // their pipelines as the registry last listed them, so a hand-over does not wait for the coordinator to settle.
      // (A pipeline deleted meanwhile recovers as deleted and runs nothing; one created meanwhile waits for the next list.)
      if (this.lastRegistry === undefined) return;
      registered = this.lastRegistry;
    }
    await Promise.all(node.hostedPipelines().filter((id) => !this.hosts(id)).map((id) => node.release(id)));
    const hosted = new Set(node.hostedPipelines());
    // Recovered side by side: a node taking over many pipelines does not start them one journal read at a time.
    // The lease is checked right before each adopt (no await between): a shard given up meanwhile is not adopted.
    // Each task of a parallel pipeline is placed by the shard of its own id (ADR 0013): the tasks spread over the nodes.
    await Promise.all(
      registered
        .flatMap((p) => pipelineTaskIds(p.pipelineId, p.parallelism))
        .filter((id) => !hosted.has(id) && this.hosts(id) && !this.stopped)
        .map((id) =>
          node.adopt(id).catch((error: unknown) => this.options.logger.warn(`cluster: could not start pipeline ${id} here yet: ${messageOf(error)}`, { pipeline_id: id })),
        ),
    );
    await node.reportStatuses().catch(() => undefined);
  }

  /** Gives up every lease whose local validity ended (Redis did not renew it in time). */
  private async expireLapsed(): Promise<void> {
    const lapsed = [...this.held].filter(([, lease]) => !this.options.redis.isValid(lease)).map(([name]) => name);
    for (const name of lapsed) this.options.logger.warn(`cluster: lease ${name} lapsed without renewal; stopping what it covers before another node may take it`);
    // Side by side: the coordinator's stop (its journal may be slow) must not hold up stopping the pipelines of lapsed shards,
    // and a projection range's stop may wait for a statement in flight (a bulk catch-up): it holds up nothing.
    const stops: Promise<void>[] = [];
    for (const name of lapsed) {
      const stopping = this.giveUp(name);
      if (!this.rangeLeases.has(name)) stops.push(stopping);
    }
    await Promise.all(stops);
  }

  /**
   * Hands a projection range back without holding up the tick: its actors
   * stop (their statement in flight may take a while), then the lease is
   * released. Meanwhile the lease stays held and renewed; the watchdog still
   * gives it up if it lapses.
   */
  private handBackRange(name: string, lease: HeldLease): void {
    const range = this.rangeLeases.get(name);
    if (range === undefined || this.handingBack.has(name)) return;
    const run = (async () => {
      await this.options.projectionRanges
        ?.onRange(range, false)
        .catch((error: unknown) => this.options.logger.error(`cluster: stopping the projections of ${name} failed: ${messageOf(error)}`));
      const current = this.held.get(name);
      if (current === undefined || current.token !== lease.token) return; // given up meanwhile (lapsed or lost)
      this.held.delete(name);
      await this.options.redis.release(current).catch(() => undefined);
      this.options.logger.info(`cluster: handed back the projections of ${name}`);
    })().finally(() => this.handingBack.delete(name));
    this.handingBack.set(name, run);
  }

  /** Forgets lease `name` locally and stops what it covers. */
  private async giveUp(name: string): Promise<void> {
    if (!this.held.delete(name)) return;
    const node = this.node;
    if (node === undefined) return;
    if (name === COORDINATOR_LEASE) {
      await this.resign();
      return;
    }
    const range = this.rangeLeases.get(name);
    if (range !== undefined) {
      await this.options.projectionRanges
        ?.onRange(range, false)
        .catch((error: unknown) => this.options.logger.error(`cluster: stopping the projections of ${name} failed: ${messageOf(error)}`));
      return;
    }
    const shard = Number(name.slice('shard-'.length));
    await Promise.all(node.hostedPipelines().filter((id) => shardOf(id, this.shards) === shard).map((id) => node.release(id)));
  }

  /** Starts the projections of a range just taken; a failure gives the lease back (another node, or the next tick, tries again). */
  private async runRange(name: string, range: SliceRange, lease: HeldLease): Promise<void> {
    try {
      await this.options.projectionRanges?.onRange(range, true);
      this.options.logger.info(`cluster: this node runs the projections of ${name} (fencing token ${lease.token})`);
    } catch (error) {
      this.options.logger.warn(`cluster: could not start the projections of ${name} here: ${messageOf(error)}; releasing it`);
      if (this.held.get(name)?.token === lease.token) this.held.delete(name);
      await this.options.projectionRanges?.onRange(range, false).catch(() => undefined);
      await this.options.redis.release(lease).catch(() => undefined);
    }
  }

  private async becomeCoordinator(lease: HeldLease): Promise<void> {
    const node = this.node;
    if (node === undefined) return;
    try {
      await node.becomeCoordinator();
      if (this.held.get(COORDINATOR_LEASE)?.token !== lease.token) {
        // The lease was given up while the coordinator recovered.
        await node.resignCoordinator();
        return;
      }
      this.options.logger.info(`cluster: this node runs the coordinator (fencing token ${lease.token})`);
      await this.options.onCoordinator?.(true);
    } catch (error) {
      this.options.logger.warn(`cluster: could not start the coordinator here: ${messageOf(error)}; releasing it`);
      if (this.held.get(COORDINATOR_LEASE)?.token === lease.token) this.held.delete(COORDINATOR_LEASE);
      await node.resignCoordinator().catch(() => undefined);
      await this.options.redis.release(lease).catch(() => undefined);
    }
  }

  private async resign(): Promise<void> {
    const node = this.node;
    if (node === undefined || !node.runsCoordinator) return;
    // The coordinator stops first (the lease may be lapsing), then its companions (the projections).
    await node.resignCoordinator();
    this.options.logger.info('cluster: this node no longer runs the coordinator');
    await this.options.onCoordinator?.(false).catch((error: unknown) => this.options.logger.warn(`cluster: stopping the coordinator's companions failed: ${messageOf(error)}`));
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
