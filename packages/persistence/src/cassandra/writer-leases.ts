/**
 * Writer leases of `singleWriter: 'lease'` (docs/adr/0002): a row per
 * persistence id in `writer_leases` naming the holder, with a server-side TTL.
 *
 * A lease is taken with `INSERT ... IF NOT EXISTS USING TTL` and extended with
 * `UPDATE ... USING TTL ... IF holder = me`; both are Paxos writes, so the row
 * names exactly one holder at any time and its TTL always counts from the
 * holder's latest successful request. The holder's local validity counts from
 * when it *sent* that request, on a monotonic clock, and ends
 * `leaseSafetyMarginMs` plus one second (the server rounds the TTL's start
 * down to a whole second) before the server copy can lapse. Validity is never
 * granted without a write that was applied: a row found naming this process is
 * renewed (`IF holder = me`, which restarts the TTL), never taken as a proof
 * of holding it.
 */
import { types } from 'cassandra-driver';
import { WriterLeaseHeldError } from '@dataflow/core';
import type { CassandraSession } from './cassandra-session.js';
import { toOptionalNumber } from './event-row.js';

/** A lease this process holds, on `settings.leaseClock`. */
export interface Lease {
  /** No write is sent after this. */
  readonly validUntil: number;
  /** The next append renews the lease after this. */
  readonly renewAfter: number;
}

/** The outcome of `WriterLeases.ensure`. */
export interface EnsuredLease {
  readonly lease: Lease;
  /**
   * True when the lease was not known to be held without a break since the
   * last write (it was taken anew): another holder may have written in
   * between, so the head must be read again.
   */
  readonly fresh: boolean;
}

/**
 * The Paxos statements on a `writer_leases` row (shared with the keyspace
 * claim): take it if free (key, holder, acquired_at, TTL seconds), renew it
 * if it names the holder (TTL seconds, holder, key, holder), delete it if it
 * names the holder (key, holder), and read its holder with the TTL left (key).
 */
export function writerLeaseStatements(keyspace: string): Record<'acquire' | 'renew' | 'release' | 'holder', string> {
  return {
    acquire: `INSERT INTO ${keyspace}.writer_leases (persistence_id, holder, acquired_at) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?`,
    renew: `UPDATE ${keyspace}.writer_leases USING TTL ? SET holder = ? WHERE persistence_id = ? IF holder = ?`,
    release: `DELETE FROM ${keyspace}.writer_leases WHERE persistence_id = ? IF holder = ?`,
    holder: `SELECT holder, TTL(holder) AS ttl FROM ${keyspace}.writer_leases WHERE persistence_id = ?`,
  };
}

export class WriterLeases {
  private readonly q: Record<'acquire' | 'renew' | 'release' | 'holder', string>;

  constructor(private readonly session: CassandraSession) {
    this.q = writerLeaseStatements(session.keyspace);
  }

  /**
   * Makes sure this process holds the lease of `persistenceId` for a while
   * longer: nothing to do before `current.renewAfter`; after it the lease is
   * renewed (also when it lapsed locally but the row still names this
   * process), else taken if free.
   *
   * @throws WriterLeaseHeldError when another process holds it (retriable after `retryAfterMs`).
   */
  async ensure(persistenceId: string, current: Lease | undefined): Promise<EnsuredLease> {
    const { leaseClock, leaseTtlMs, nodeId, now } = this.session.settings;
    const sentAt = leaseClock();
    if (current !== undefined && sentAt < current.renewAfter) return { lease: current, fresh: false };
    const ttlSeconds = Math.ceil(leaseTtlMs / 1000);
    if (current !== undefined && (await this.renew(persistenceId, ttlSeconds))) {
      return { lease: this.granted(sentAt), fresh: false };
    }
    const taken = await this.session.execute(this.q.acquire, [persistenceId, nodeId, now(), ttlSeconds], this.casOptions());
    if (taken.wasApplied()) return { lease: this.granted(sentAt), fresh: true };
    const holder = taken.first()?.['holder'] as string | null | undefined;
    // The row names us (a lease this journal forgot, or one that lapsed only locally): nobody else can have
    // written since, but validity is only granted by a write that restarts the server's TTL.
    if (holder === nodeId && (await this.renew(persistenceId, ttlSeconds))) return { lease: this.granted(sentAt), fresh: true };
    throw await this.heldError(persistenceId, holder ?? undefined);
  }

  /** Gives the lease up at once (`IF holder = me`); a lease of another holder is left alone. */
  async release(persistenceId: string): Promise<void> {
    await this.session.execute(this.q.release, [persistenceId, this.session.settings.nodeId], this.casOptions());
  }

  private async renew(persistenceId: string, ttlSeconds: number): Promise<boolean> {
    const { nodeId } = this.session.settings;
    const renewed = await this.session.execute(this.q.renew, [ttlSeconds, nodeId, persistenceId, nodeId], this.casOptions());
    return renewed.wasApplied();
  }

  private granted(sentAt: number): Lease {
    const { leaseValidityMs } = this.session.settings;
    return { validUntil: sentAt + leaseValidityMs, renewAfter: sentAt + leaseValidityMs / 2 };
  }

  /** The error for a lease held by `holder`, with the time left on its row when it can be read. */
  private async heldError(persistenceId: string, holder: string | undefined): Promise<WriterLeaseHeldError> {
    let retryAfterMs: number | undefined = this.session.settings.leaseTtlMs;
    let cause: unknown;
    try {
      const row = (await this.session.execute(this.q.holder, [persistenceId], { consistency: types.consistencies.serial, idempotent: true })).first();
      const ttl = toOptionalNumber(row?.['ttl']);
      // Gone meanwhile: try again at once. Else the row lapses within `ttl` whole seconds.
      retryAfterMs = row === null || row === undefined ? 0 : ttl === undefined ? retryAfterMs : (ttl + 1) * 1000;
    } catch (error) {
      cause = error;
    }
    return new WriterLeaseHeldError(persistenceId, holder, retryAfterMs, cause === undefined ? {} : { cause });
  }

  private casOptions(): { consistency: types.consistencies; idempotent: boolean; serialConsistency: types.consistencies } {
    return { consistency: this.session.settings.writeConsistency, idempotent: false, serialConsistency: types.consistencies.serial };
  }
}
