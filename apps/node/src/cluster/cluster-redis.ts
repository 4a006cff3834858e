/**
 * The cluster's shared state in Redis: who is alive (membership) and who
 * owns what (leases with fencing tokens). Every operation is one Lua script,
 * so it is atomic, and every expiry uses Redis's own clock (`TIME`, `PX`):
 * nodes' clocks never decide who is alive or who holds a lease.
 *
 * - Members: a sorted set `<prefix>members` scored by expiry (server ms), and
 *   `<prefix>member:<id>` with the member's details (JSON). A heartbeat moves
 *   the expiry forward; any reader drops expired members. A node that stops
 *   heartbeating leaves after the TTL; `leave()` removes it at once.
 * - Leases: `<prefix>lease:<name>` holds `<nodeId> <token>` with a `PX` TTL.
 *   Every acquisition increments `<prefix>fence:<name>` (never expires) and
 *   lifts it to at least Redis's clock in ms, so tokens grow across holders,
 *   tenures and a lost counter; renewing or releasing checks the holder and
 *   its token. See docs/adr/0011-cluster-on-redis-leases.md.
 *
 * The holder's local view of a lease is what protects against a partition:
 * `validUntil` is computed from a monotonic clock read *before* the request
 * was sent, minus a safety margin, so a node cut from Redis treats its lease
 * as lost before the server copy can expire and someone else takes it.
 */
import type { Redis } from 'ioredis';
import { DataflowError } from '@dataflow/core';
import { randomUUID } from 'node:crypto';
import { RedisUnavailableError } from '../redis/redis-errors.js';

/** A live member of the cluster. */
export interface ClusterMember {
  readonly nodeId: string;
  /** Where its admin API answers (forwarded requests go there). */
  readonly url: string;
  readonly startedAt: number;
  /** Pipelines it runs. */
  readonly load: number;
  /** How many slice ranges it splits the projections into (absent from older members). */
  readonly projectionRanges?: number;
}

/** A lease as this node knows it. */
export interface HeldLease {
  readonly name: string;
  /** Grows with every new holder: the fencing token. */
  readonly token: number;
  /** Monotonic ms (`performance.now()`) until which this node may act as the holder. */
  readonly validUntil: number;
}

// KEYS: members zset, member key. ARGV: node id, details json, ttl ms.
// KEYS: members zset, member key. ARGV: node id, details json (with this process's instance id), ttl ms, instance id.
// Returns { 1 } when the membership is this process's, or { 0, url, ms left } when another live process holds the node id.
const HEARTBEAT_LUA = `
local current = redis.call('GET', KEYS[2])
if current then
  local ok, details = pcall(cjson.decode, current)
  if ok and type(details) == 'table' and details.instance ~= nil and details.instance ~= ARGV[4] then
    return { 0, tostring(details.url or ''), redis.call('PTTL', KEYS[2]) }
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', tonumber(ARGV[3]))
return { 1, '', 0 }
`;

// KEYS: members zset. ARGV: member key prefix. Returns a flat list id, details, ...
const MEMBERS_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  local details = redis.call('GET', ARGV[1] .. id)
  if details then
    table.insert(out, id)
    table.insert(out, details)
  end
end
return out
`;

// KEYS: members zset, member key. ARGV: node id.
// KEYS: members zset, member key. ARGV: node id, instance id. Only this process's membership is removed.
const LEAVE_LUA = `
local current = redis.call('GET', KEYS[2])
if current then
  local ok, details = pcall(cjson.decode, current)
  if ok and type(details) == 'table' and details.instance ~= nil and details.instance ~= ARGV[2] then return 0 end
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
`;

// KEYS: lease, fence. ARGV: node id, ttl ms. Returns the new token, or false when another node holds it.
// A lease still naming this node id is taken again with a new token: the caller does not hold it (a restarted
// process, or a lease it gave up by its own clock), so the old tenure must be fenced off (its renew now fails).
// The token is at least Redis's clock in ms: a counter lost with a Redis restart without persistence, an
// eviction or a failover to a replica that missed writes does not send tokens back to 1.
const ACQUIRE_LUA = `
local held = redis.call('GET', KEYS[1])
if held then
  local holder = string.match(held, '^(.*) %d+$')
  if holder ~= ARGV[1] then
    return false
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local token = redis.call('INCR', KEYS[2])
if token < now then
  token = now
  redis.call('SET', KEYS[2], string.format('%d', now))
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. string.format('%d', token), 'PX', tonumber(ARGV[2]))
return token
`;

// KEYS: lease. ARGV: node id, token, ttl ms. 1 when renewed, 0 when the lease is not (or no longer) this holder's.
const RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] .. ' ' .. ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  return 1
end
return 0
`;

// KEYS: lease. ARGV: node id, token.
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] .. ' ' .. ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

type ClusterRedisClient = Redis & {
  dataflowHeartbeat(members: string, member: string, nodeId: string, details: string, ttlMs: number, instance: string): Promise<[number, string, number]>;
  dataflowMembers(members: string, memberPrefix: string): Promise<string[]>;
  dataflowLeave(members: string, member: string, nodeId: string, instance: string): Promise<number>;
  dataflowAcquire(lease: string, fence: string, nodeId: string, ttlMs: number): Promise<number | null>;
  dataflowRenew(lease: string, nodeId: string, token: number, ttlMs: number): Promise<number>;
  dataflowRelease(lease: string, nodeId: string, token: number): Promise<number>;
};

export interface ClusterRedisOptions {
  /** Default `dataflow:cluster:`; nodes of one cluster share it. */
  readonly keyPrefix?: string;
  readonly nodeId: string;
  /** Lease and membership time-to-live (default 10 000 ms). */
  readonly ttlMs?: number;
  /**
   * How long before the server copy could expire this node stops acting on a
   * lease (default 2 000 ms, and at most a third of the TTL): it covers the
   * time a request is in flight and the drift of clock rates.
   */
  readonly safetyMarginMs?: number;
  /** Monotonic milliseconds (default `performance.now`); tests inject one. */
  readonly monotonicNow?: () => number;
  /** Tells this process from another one started with the same node id (default: a random UUID). */
  readonly instanceId?: string;
}

/**
 * Another live process holds this node id in the cluster (two processes
 * started with the same `node.id`, or a restarted one whose predecessor's
 * membership has not expired yet). Retriable: the membership expires `ttlMs`
 * after its holder stops; until then this process takes nothing.
 */
export class NodeIdInUseError extends DataflowError<'cluster/node-id-in-use'> {
  constructor(
    readonly nodeId: string,
    readonly holderUrl: string,
    readonly expiresInMs: number,
  ) {
    super(
      'cluster/node-id-in-use',
      `node id ${nodeId} is in use by another process (${holderUrl || 'no address'}); its membership expires in ${Math.max(0, expiresInMs)} ms unless it is alive (give every node its own node.id / DATAFLOW_NODE_ID)`,
      { retriable: true },
    );
  }
}

/**
 * Membership and leases of one node on `client` (a client that fails fast
 * while disconnected: `enableOfflineQueue: false`, so a call during an outage
 * rejects at once instead of waiting).
 *
 * @example
 * ```ts
 * const cluster = new ClusterRedis(client, { nodeId: 'node-a' });
 * await cluster.heartbeat({ url: 'http://10.0.0.5:8080', startedAt: Date.now(), load: 3 });
 * const lease = await cluster.acquire('shard-7'); // undefined when another node holds it
 * ```
 */
export class ClusterRedis {
  readonly nodeId: string;
  readonly ttlMs: number;
  readonly safetyMarginMs: number;
  private readonly prefix: string;
  private readonly redis: ClusterRedisClient;
  private readonly now: () => number;
  private readonly instanceId: string;

  constructor(client: Redis, options: ClusterRedisOptions) {
    if (!/^[A-Za-z0-9_.:-]{1,200}$/.test(options.nodeId)) throw new TypeError(`cluster node id ${JSON.stringify(options.nodeId)}: 1-200 letters, digits, _ . : -`);
    this.nodeId = options.nodeId;
    this.ttlMs = options.ttlMs ?? 10_000;
    if (!Number.isInteger(this.ttlMs) || this.ttlMs < 1_000) throw new TypeError(`cluster lease ttl ${this.ttlMs} ms: at least 1 000 ms`);
    this.safetyMarginMs = Math.min(options.safetyMarginMs ?? 2_000, Math.floor(this.ttlMs / 3));
    this.prefix = options.keyPrefix ?? 'dataflow:cluster:';
    this.now = options.monotonicNow ?? (() => performance.now());
    this.instanceId = options.instanceId ?? randomUUID();
    const redis = client as ClusterRedisClient;
    const define = (name: string, numberOfKeys: number, lua: string) => {
      if (typeof (redis as unknown as Record<string, unknown>)[name] !== 'function') redis.defineCommand(name, { numberOfKeys, lua });
    };
    define('dataflowHeartbeat', 2, HEARTBEAT_LUA);
    define('dataflowMembers', 1, MEMBERS_LUA);
    define('dataflowLeave', 2, LEAVE_LUA);
    define('dataflowAcquire', 2, ACQUIRE_LUA);
    define('dataflowRenew', 1, RENEW_LUA);
    define('dataflowRelease', 1, RELEASE_LUA);
    this.redis = redis;
  }

  /** Announces (or keeps) this node as a live member for another TTL. */
  async heartbeat(details: Omit<ClusterMember, 'nodeId'>): Promise<void> {
    const [ours, holderUrl, expiresInMs] = await this.call('heartbeat', () =>
      this.redis.dataflowHeartbeat(
        this.key('members'),
        this.key(`member:${this.nodeId}`),
        this.nodeId,
        JSON.stringify({ ...details, nodeId: this.nodeId, instance: this.instanceId }),
        this.ttlMs,
        this.instanceId,
      ),
    );
    if (Number(ours) !== 1) throw new NodeIdInUseError(this.nodeId, String(holderUrl), Number(expiresInMs));
  }

  /** The live members, sorted by node id (the same list on every node). */
  async members(): Promise<ClusterMember[]> {
    const flat = await this.call('members', () => this.redis.dataflowMembers(this.key('members'), this.key('member:')));
    const members: ClusterMember[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      try {
        const parsed = JSON.parse(flat[i + 1] as string) as Partial<ClusterMember>;
        if (typeof parsed.url !== 'string') continue;
        members.push({
          nodeId: flat[i] as string,
          url: parsed.url,
          startedAt: Number(parsed.startedAt) || 0,
          load: Number(parsed.load) || 0,
          ...(typeof parsed.projectionRanges === 'number' ? { projectionRanges: parsed.projectionRanges } : {}),
        });
      } catch {
        // A foreign or damaged entry is not a member.
      }
    }
    return members.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /** Leaves the cluster at once (a graceful stop). */
  async leave(): Promise<void> {
    await this.call('leave', () => this.redis.dataflowLeave(this.key('members'), this.key(`member:${this.nodeId}`), this.nodeId, this.instanceId));
  }

  /**
   * Takes `name` if it is free or still names this node (then as a new tenure: a new token, and the
   * old tenure's renew fails); undefined when another node holds it. Every success has a higher token.
   */
  async acquire(name: string): Promise<HeldLease | undefined> {
    const sentAt = this.now();
    const token = await this.call(`acquire ${name}`, () => this.redis.dataflowAcquire(this.key(`lease:${name}`), this.key(`fence:${name}`), this.nodeId, this.ttlMs));
    if (token === null || token === undefined) return undefined;
    return { name, token: Number(token), validUntil: sentAt + this.ttlMs - this.safetyMarginMs };
  }

  /** Extends a held lease; undefined when it is no longer this node's (it expired and another node took it). */
  async renew(lease: HeldLease): Promise<HeldLease | undefined> {
    const sentAt = this.now();
    const renewed = await this.call(`renew ${lease.name}`, () => this.redis.dataflowRenew(this.key(`lease:${lease.name}`), this.nodeId, lease.token, this.ttlMs));
    return renewed === 1 ? { ...lease, validUntil: sentAt + this.ttlMs - this.safetyMarginMs } : undefined;
  }

  /** Gives a held lease back (only if it is still this node's). */
  async release(lease: HeldLease): Promise<void> {
    await this.call(`release ${lease.name}`, () => this.redis.dataflowRelease(this.key(`lease:${lease.name}`), this.nodeId, lease.token));
  }

  /** Whether this node may still act on `lease` by its own clock. */
  isValid(lease: HeldLease): boolean {
    return this.now() < lease.validUntil;
  }

  private key(name: string): string {
    return `${this.prefix}${name}`;
  }

  private async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new RedisUnavailableError(`cluster ${operation}`, error);
    }
  }
}
