/**
 * Placement: pipelines map to a fixed number of shards by a stable hash of
 * their id, and each shard (and each singleton) goes to the live member with
 * the highest rendezvous weight `hash(member, shard)`. Every node computes
 * the same answer from the same member list; a member joining or leaving
 * moves only the shards it wins or held (about 1/N of them), none between
 * the others.
 */
import { createHash } from 'node:crypto';

/** Default number of shards: enough to spread 3-10 nodes evenly, few enough to lease each. */
export const DEFAULT_SHARDS = 64;

function weight(text: string): bigint {
  return createHash('sha256').update(text).digest().readBigUInt64BE(0);
}

/** The shard of a pipeline, 0 ... shards - 1. */
export function shardOf(pipelineId: string, shards: number = DEFAULT_SHARDS): number {
  return Number(weight(`pipeline:${pipelineId}`) % BigInt(shards));
}

/** The lease name of a shard. */
export function shardLeaseName(shard: number): string {
  return `shard-${shard}`;
}

/** The member that should own `key` (a shard's lease name or a singleton's), or undefined without members. */
export function ownerOf(key: string, memberIds: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1n;
  for (const id of memberIds) {
    const w = weight(`${id}\u0000${key}`);
    if (w > bestWeight || (w === bestWeight && best !== undefined && id < best)) {
      best = id;
      bestWeight = w;
    }
  }
  return best;
}

/** The shards `memberId` should own among `memberIds`. */
export function shardsOf(memberId: string, memberIds: readonly string[], shards: number = DEFAULT_SHARDS): number[] {
  const mine: number[] = [];
  for (let shard = 0; shard < shards; shard++) if (ownerOf(shardLeaseName(shard), memberIds) === memberId) mine.push(shard);
  return mine;
}
