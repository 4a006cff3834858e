/**
 * Placement as pure functions: a pipeline's shard never changes (a rolling
 * upgrade that changed the hash would move every pipeline at once), every
 * node computes the same owner from the same members in any order, every
 * shard has exactly one owner, the shards spread fairly over 3-10 members,
 * and a member joining or leaving moves only the shards it wins or held.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SHARDS, ownerOf, shardLeaseName, shardOf, shardsOf } from './rendezvous.js';

const idSets: Record<string, (n: number) => string[]> = {
  numbered: (n) => Array.from({ length: n }, (_, i) => `node-${i + 1}`),
  addresses: (n) => Array.from({ length: n }, (_, i) => `10.0.${i}.${17 + i}:8080`),
  pods: (n) => Array.from({ length: n }, (_, i) => `dataflow-${(0x5f3a + i * 7919).toString(36)}-${i}`),
};

/** Owner of every shard, by shard number. */
function placement(members: readonly string[], shards = DEFAULT_SHARDS): (string | undefined)[] {
  return Array.from({ length: shards }, (_, shard) => ownerOf(shardLeaseName(shard), members));
}

describe('shardOf', () => {
  it('is pinned: the same pipeline lands on the same shard in every version', () => {
    // Changing these numbers moves every running pipeline during a rolling upgrade.
    expect([shardOf('orders'), shardOf('payments'), shardOf('')]).toEqual([5, 37, 16]);
  });

  it('stays within 0 ... shards - 1 and spreads pipeline ids over every shard', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 5_000; i++) {
      const shard = shardOf(`pipeline-${i}`);
      expect(shard).toBeGreaterThanOrEqual(0);
      expect(shard).toBeLessThan(DEFAULT_SHARDS);
      seen.add(shard);
    }
    expect(seen.size).toBe(DEFAULT_SHARDS);
    expect(shardOf('orders', 7)).toBeLessThan(7);
  });
});

describe('ownerOf (rendezvous)', () => {
  it('answers nothing without members', () => {
    expect(ownerOf('shard-1', [])).toBeUndefined();
    expect(shardsOf('node-1', [])).toEqual([]);
  });

  it('gives the same owner whatever the order the members are listed in', () => {
    const members = idSets['numbered']!(7);
    const reference = placement(members);
    for (const order of [[...members].reverse(), [...members].sort(), [members[3]!, ...members.filter((m) => m !== members[3])]]) {
      expect(placement(order)).toEqual(reference);
    }
  });

  it('gives every shard exactly one owner, and shardsOf agrees with ownerOf', () => {
    for (let n = 1; n <= 10; n++) {
      const members = idSets['numbered']!(n);
      const owners = placement(members);
      const byMember = members.map((m) => shardsOf(m, members));
      expect(byMember.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: DEFAULT_SHARDS }, (_, s) => s));
      members.forEach((m, i) => expect(byMember[i]).toEqual(owners.flatMap((o, s) => (o === m ? [s] : []))));
    }
  });

  it.each(Object.keys(idSets))('spreads the shards fairly over 3-10 members (%s ids)', (scheme) => {
    for (let n = 3; n <= 10; n++) {
      const members = idSets[scheme]!(n);
      // 64 shards: coarse (whole shards), but nobody is left out or gets more than 2.5 shares.
      const counts = members.map((m) => shardsOf(m, members).length);
      const share = DEFAULT_SHARDS / n;
      expect(Math.min(...counts), `${n} members: ${counts.join(',')}`).toBeGreaterThanOrEqual(1);
      expect(Math.max(...counts), `${n} members: ${counts.join(',')}`).toBeLessThanOrEqual(2.5 * share);
      // Many shards: the hash itself is fair, within 15 % of an equal share.
      const owners = placement(members, 4_096);
      const fine = members.map((m) => owners.filter((o) => o === m).length);
      for (const count of fine) expect(Math.abs(count / (4_096 / n) - 1), `${n} members: ${fine.join(',')}`).toBeLessThan(0.15);
    }
  });

  it('moves only the shards the joining member wins (about 1/N), none between the others', () => {
    for (let n = 3; n <= 10; n++) {
      const before = idSets['addresses']!(n);
      const joined = `new-node-${n}`;
      const after = [...before, joined];
      const now = placement(after);
      const moves = placement(before).map((owner, shard) => [owner, now[shard]] as const).filter(([from, to]) => from !== to);
      for (const [, to] of moves) expect(to).toBe(joined);
      expect(moves.length).toBe(shardsOf(joined, after).length);
      expect(moves.length).toBeGreaterThan(0);
      expect(moves.length).toBeLessThanOrEqual(2.5 * (DEFAULT_SHARDS / (n + 1)));
    }
  });

  it('moves only the shards the leaving member held, each to one of the others', () => {
    for (let n = 3; n <= 10; n++) {
      const before = idSets['pods']!(n);
      const left = before[n - 2]!;
      const after = before.filter((m) => m !== left);
      const old = placement(before);
      const now = placement(after);
      for (let shard = 0; shard < DEFAULT_SHARDS; shard++) {
        if (old[shard] === left) expect(after).toContain(now[shard]);
        else expect(now[shard]).toBe(old[shard]);
      }
    }
  });
});
