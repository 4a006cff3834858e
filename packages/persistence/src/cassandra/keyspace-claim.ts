/**
 * One process per keyspace, for applications that must not share one (a
 * DataFlow node outside a cluster). Two nodes started on the same keyspace
 * used to both run: they took each other's writer leases in turn, ran the
 * same pipelines and wrote the same sinks (a file sink of one truncated back
 * what the other had written). The claim is a row of `writer_leases` under a
 * key no persistence id can have (`KEYSPACE_CLAIM_KEY`), taken and kept with
 * the same Paxos writes as a writer lease: `INSERT ... IF NOT EXISTS USING
 * TTL`, renewed with `UPDATE ... USING TTL ... IF holder = me` every third
 * of the TTL. The holder is unique per process (name, pid, host, start), so a
 * copy of the configuration started elsewhere cannot pass for the holder.
 *
 * A process killed with SIGKILL leaves its row until the TTL runs out: a
 * claim finding another holder waits up to `waitMs` (default one TTL) for
 * it to lapse before it gives up, so a restart after a crash takes it over.
 * While Cassandra cannot be reached, the row may lapse: once it can be
 * reached again the claim takes it back if it is free, and is `lost` if
 * another process took it meanwhile (its holder must then stop).
 */
import { types, type Client } from 'cassandra-driver';
import { DataflowError } from '@dataflow/core';
import { toOptionalNumber } from './event-row.js';
import { writerLeaseStatements } from './writer-leases.js';

/** The `writer_leases` key of the claim (a persistence id is never empty and never starts with a NUL). */
export const KEYSPACE_CLAIM_KEY = '\u0000dataflow-keyspace-claim';

/** Another process holds the keyspace (and kept it for `waitMs`); not retriable. */
export class KeyspaceClaimedError extends DataflowError<'journal/keyspace-claimed'> {
  constructor(
    readonly keyspace: string,
    readonly holder: string,
    readonly lapsesWithinMs: number | undefined,
  ) {
    super(
      'journal/keyspace-claimed',
      `keyspace ${keyspace} is in use by ${holder}` + (lapsesWithinMs === undefined ? '' : ` (its claim lapses within ${Math.ceil(lapsesWithinMs / 1000)} s unless renewed)`),
      { retriable: false },
    );
  }
}

/** Another process took the keyspace while this one could not renew its claim; this one must stop writing. */
export class KeyspaceClaimLostError extends DataflowError<'journal/keyspace-claim-lost'> {
  constructor(
    readonly keyspace: string,
    readonly holder: string,
  ) {
    super('journal/keyspace-claim-lost', `keyspace ${keyspace} was taken by ${holder} while this process could not renew its claim`, { retriable: false });
  }
}

/** The claim was still waiting for another holder's row to lapse when its `signal` aborted (the process is told to stop). */
export class KeyspaceClaimAbortedError extends DataflowError<'journal/keyspace-claim-aborted'> {
  constructor(
    readonly keyspace: string,
    readonly holder: string,
  ) {
    super('journal/keyspace-claim-aborted', `stopped waiting for keyspace ${keyspace}, in use by ${holder}`, { retriable: false });
  }
}

/** What a claim reports (for logs). */
export type KeyspaceClaimEvent =
  | { readonly type: 'waiting'; readonly holder: string; readonly lapsesWithinMs: number | undefined }
  | { readonly type: 'renewal-failed'; readonly error: unknown }
  | { readonly type: 'renewed'; readonly afterFailedMs: number }
  | { readonly type: 'taken-again'; readonly afterFailedMs: number };

export interface KeyspaceClaimOptions {
  /** Unique per process, e.g. `node-a (pid 4242 on host-1, started 2026-12-06T05:00:00.000Z)`. */
  readonly holder: string;
  /** The row's TTL (default 15 000 ms, whole seconds); renewed every third of it. */
  readonly ttlMs?: number;
  /** How long a claim held by another waits for it to lapse before `KeyspaceClaimedError` (default `ttlMs`). */
  readonly waitMs?: number;
  readonly onEvent?: (event: KeyspaceClaimEvent) => void;
  /** Ends a wait for another holder's row at once, with `KeyspaceClaimAbortedError`. */
  readonly signal?: AbortSignal;
}

/** A claim held on a keyspace. */
export interface KeyspaceClaim {
  /** Resolves if another process took the keyspace; never resolves otherwise. */
  readonly lost: Promise<KeyspaceClaimLostError>;
  /** Stops renewing and deletes the row (if it still names this holder). */
  release(): Promise<void>;
}

const DEFAULT_TTL_MS = 15_000;

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Takes the claim on `keyspace` (its `writer_leases` table must exist), or
 * throws `KeyspaceClaimedError` naming the holder.
 *
 * @example
 * ```ts
 * const claim = await claimCassandraKeyspace(client, 'dataflow', { holder: `node-a (pid ${process.pid})` });
 * void claim.lost.then((error) => stop(error));
 * // ... at the end, after the last journal write:
 * await claim.release();
 * ```
 */
export async function claimCassandraKeyspace(client: Client, keyspace: string, options: KeyspaceClaimOptions): Promise<KeyspaceClaim> {
  const ttlSeconds = Math.max(1, Math.ceil((options.ttlMs ?? DEFAULT_TTL_MS) / 1000));
  const ttlMs = ttlSeconds * 1000;
  const { holder } = options;
  const onEvent = options.onEvent ?? (() => undefined);
  const cas = { prepare: true, consistency: types.consistencies.quorum, serialConsistency: types.consistencies.serial, isIdempotent: false };
  const q = writerLeaseStatements(keyspace);
  /** Takes the row if free: undefined when taken, else the other holder (and how long its row has left, when known). */
  const take = async (): Promise<{ holder: string; lapsesWithinMs: number | undefined } | undefined> => {
    const result = await client.execute(q.acquire, [KEYSPACE_CLAIM_KEY, holder, Date.now(), ttlSeconds], cas);
    if (result.wasApplied()) return undefined;
    const current = (result.first()?.['holder'] as string | null | undefined) ?? 'another process';
    // Our own row (a renewal whose answer was lost): renew it rather than wait for it.
    if (current === holder && (await renew())) return undefined;
    const row = (await client.execute(q.holder, [KEYSPACE_CLAIM_KEY], { prepare: true, consistency: types.consistencies.serial, isIdempotent: true }).catch(() => undefined))?.first();
    const ttl = toOptionalNumber(row?.['ttl']);
    return { holder: current, lapsesWithinMs: ttl === undefined ? undefined : (ttl + 1) * 1000 };
  };
  const renew = async (): Promise<boolean> => (await client.execute(q.renew, [ttlSeconds, holder, KEYSPACE_CLAIM_KEY, holder], cas)).wasApplied();

  const deadline = Date.now() + (options.waitMs ?? ttlMs);
  for (let reported = false; ; reported = true) {
    const other = await take();
    if (other === undefined) break;
    const waitFor = Math.min(other.lapsesWithinMs ?? 1_000, 1_000);
    if (Date.now() + waitFor > deadline) throw new KeyspaceClaimedError(keyspace, other.holder, other.lapsesWithinMs);
    if (!reported) onEvent({ type: 'waiting', holder: other.holder, lapsesWithinMs: other.lapsesWithinMs });
    await sleep(waitFor, options.signal);
    if (options.signal?.aborted === true) throw new KeyspaceClaimAbortedError(keyspace, other.holder);
  }

  let released = false;
  let resolveLost: (error: KeyspaceClaimLostError) => void = () => undefined;
  const lost = new Promise<KeyspaceClaimLostError>((resolve) => (resolveLost = resolve));
  let failingSince: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  const schedule = (ms: number): void => {
    if (released) return;
    timer = setTimeout(() => void keep(), ms);
    timer.unref();
  };
  const keep = async (): Promise<void> => {
    try {
      if (await renew()) {
        if (failingSince !== undefined) onEvent({ type: 'renewed', afterFailedMs: Date.now() - failingSince });
      } else if (released) {
        return; // released while this renewal was on its way: the row is gone, and stays gone
      } else {
        // The row lapsed (Cassandra was out of reach for longer than its TTL) or another process holds it.
        const other = await take();
        if (other !== undefined) {
          if (!released) resolveLost(new KeyspaceClaimLostError(keyspace, other.holder));
          return;
        }
        onEvent({ type: 'taken-again', afterFailedMs: failingSince === undefined ? 0 : Date.now() - failingSince });
      }
      failingSince = undefined;
      schedule(ttlMs / 3);
    } catch (error) {
      if (failingSince === undefined) {
        failingSince = Date.now();
        onEvent({ type: 'renewal-failed', error });
      }
      schedule(1_000);
    }
  };
  schedule(ttlMs / 3);

  return {
    lost,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      clearTimeout(timer);
      // Best effort: a row that cannot be deleted lapses within its TTL.
      await client.execute(q.release, [KEYSPACE_CLAIM_KEY, holder], cas).catch(() => undefined);
    },
  };
}
