/**
 * Single-writer safety of the Cassandra journal against the real Cassandra:
 * lease renewal at the boundaries of its validity, a randomized two-writer
 * soak in both modes, an abandoned partition claim, writes whose outcome is
 * unknown, and `close()` with appends in flight.
 */
import { errors, policies, type Client, type QueryOptions, type types } from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, it, type ExpectStatic } from 'vitest';
import {
  eventSourced,
  isConcurrencyConflict,
  isWriteOutcomeUnknown,
  isWriterLeaseHeld,
  recoverState,
  type PersistedEvent,
} from '@dataflow/core';
import { serviceSettings, uniqueName } from '@dataflow/test-env';
import { createCassandraPersistence, type CassandraPersistence } from './cassandra-persistence.js';
import type { CassandraPersistenceEvent, CassandraPersistenceSettings } from './cassandra-settings.js';
import { cassandraFixture, type CassandraFixture } from './cassandra-fixture.test.js';

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

interface Acked {
  readonly writer: string;
  readonly firstSequenceNr: number;
  readonly ids: readonly string[];
}

/** Every acknowledged event is in `history` at its sequence number, and the history has no hole or duplicate. */
function expectNothingLost(history: readonly PersistedEvent[], acked: readonly Acked[], check: ExpectStatic = expect): void {
  check(history.map((e) => e.sequenceNr)).toEqual(history.map((_, i) => i + 1));
  for (const append of acked) {
    append.ids.forEach((id, i) => {
      const stored = history[append.firstSequenceNr + i - 1];
      check({ sequenceNr: append.firstSequenceNr + i, payload: stored?.payload, writerId: stored?.writerId }).toEqual({
        sequenceNr: append.firstSequenceNr + i,
        payload: { id },
        writerId: append.writer,
      });
    });
  }
}

type Hook = (query: string, run: () => Promise<types.ResultSet>) => Promise<types.ResultSet>;

/** `client` with its `execute` and `batch` passed through `hook` (fault injection); everything else is the client's own. */
function hookedClient(client: Client, hook: { execute?: Hook; batch?: Hook }): Client {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'execute' && hook.execute !== undefined) {
        const h = hook.execute;
        return (query: string, params: unknown[], options: unknown) => h(query, () => target.execute(query, params, options as never));
      }
      if (prop === 'batch' && hook.batch !== undefined) {
        const h = hook.batch;
        return (queries: Array<{ query: string }>, options: unknown) =>
          h(queries.map((q) => q.query).join('\n'), () => target.batch(queries, options as never));
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const timedOut = (): Error => new errors.OperationTimedOutError('injected: no answer within the read timeout');

describe('Cassandra journal single-writer safety', () => {
  // One keyspace per single-writer mode: a keyspace refuses a journal of the other mode.
  let fx: CassandraFixture;
  let fxc: CassandraFixture;
  const open = (settings: Partial<CassandraPersistenceSettings> & { client?: Client } = {}): Promise<CassandraPersistence> =>
    createCassandraPersistence({ client: fx.client, keyspace: (settings.singleWriter === 'conditional' ? fxc : fx).keyspace, ...settings });
  const replayed = (singleWriter: 'lease' | 'conditional', pid: string): Promise<PersistedEvent[]> =>
    all((singleWriter === 'conditional' ? fxc : fx).plugin.journal.replay(pid, 1));

  beforeAll(async () => {
    fx = await cassandraFixture(import.meta.url);
    fxc = await cassandraFixture(import.meta.url, { singleWriter: 'conditional' });
  });
  afterAll(async () => {
    await Promise.all([fx.cleanup(), fxc.cleanup()]);
  });

  // The timelines run side by side (each takes 11.5 s of real time). At 3 s the lease is renewed in the background (the
  // write goes out under the held one), from 5.5 s on in line before the write.
  it.concurrent.for([3000, 5500, 7000, 9900, 10_500])(
    'lease mode: a pause of %i ms between appends never lets a second writer in while the first still writes (10 s TTL)',
    { timeout: 40_000 },
    async (gapMs, { expect }) => {
      // One local clock for both writers, set to each step's planned time once that much real time has passed, so the
      // local validity is computed exactly at the step times while the server's TTL runs on real time alongside.
      let clock = 0;
      const start = performance.now();
      const at = async (ms: number): Promise<void> => {
        await sleep(start + ms - performance.now());
        clock = ms;
      };
      const a = await open({ leaseClock: () => clock, nodeId: 'node-a', leaseTtlMs: 10_000 });
      const b = await open({ leaseClock: () => clock, nodeId: 'node-b', leaseTtlMs: 10_000 });
      const pid = uniqueName(`gap-${gapMs}`);
      const acked: Acked[] = [];
      const refused: unknown[] = [];
      const attempt = async (writer: 'a' | 'b', expected: number | undefined): Promise<void> => {
        const journal = (writer === 'a' ? a : b).journal;
        const head = expected ?? (await journal.highestSequenceNr(pid));
        const id = `${writer}@${clock}`;
        try {
          await journal.append(pid, [{ eventType: 'E', payload: { id } }], { expectedSequenceNr: head, writerId: writer });
          acked.push({ writer, firstSequenceNr: head + 1, ids: [id] });
        } catch (error) {
          refused.push(error);
        }
      };
      const steps: Array<[number, 'a' | 'b', number | undefined]> = [
        [0, 'a', 0],
        [gapMs, 'a', 1],
        [10_500, 'b', undefined],
        // A still believes it holds the lease and that 2 is the highest (the scenario of issue 10, item 1).
        [11_000, 'a', 2],
        [11_500, 'b', undefined],
      ];
      for (const [ms, writer, expected] of [...steps].sort((x, y) => x[0] - y[0])) {
        await at(ms);
        await attempt(writer, expected);
      }
      expect(acked.slice(0, 2).map((x) => x.writer)).toEqual(['a', 'a']);
      for (const error of refused) {
        // The loser is told to wait for the lease (retriable), or that its view was stale; never anything else.
        expect(isWriterLeaseHeld(error) || isConcurrencyConflict(error)).toBe(true);
        if (isWriterLeaseHeld(error)) {
          expect(error.retriable).toBe(true);
          expect(error.holder).toBe('node-a');
          expect(error.retryAfterMs).toBeGreaterThan(0);
          expect(error.retryAfterMs).toBeLessThanOrEqual(11_000);
        }
      }
      expectNothingLost(await all(fx.plugin.journal.replay(pid, 1)), acked, expect);
      await Promise.all([a.close(), b.close()]);
    },
  );

  it('lease mode: a write whose lease ran out while it waited for a slot is not sent under it; the lease is renewed first, or the write refused', async () => {
    let clock = 0;
    const pid = uniqueName('queued-past-lease');
    let gate: (() => void) | undefined;
    // The next batch waits here, holding the only slot; meanwhile the local clock passes the lease's validity.
    const client = hookedClient(fx.client, {
      batch: async (query, run) => {
        if (gate === undefined) return run();
        await new Promise<void>((resolve) => (gate = resolve));
        return run();
      },
    });
    const a = await open({ client, leaseClock: () => clock, maxInFlight: 1, nodeId: 'queued-a' });
    await a.journal.append(pid, [{ eventType: 'E', payload: { id: '1' } }], { expectedSequenceNr: 0, writerId: 'a' });
    gate = () => undefined;
    const blocker = a.journal.append(uniqueName('other'), [{ eventType: 'E', payload: { id: 'x' } }], { expectedSequenceNr: 0, writerId: 'a' });
    await sleep(200);
    const late = a.journal.append(pid, [{ eventType: 'E', payload: { id: '2a' } }], { expectedSequenceNr: 1, writerId: 'a' }).catch((e: unknown) => e);
    await sleep(200);
    // A's lease lapses (locally, and on the server: its row is gone), and another process takes the id over.
    clock = 60_000;
    await fx.client.execute(`DELETE FROM ${fx.keyspace}.writer_leases WHERE persistence_id = ?`, [pid], { prepare: true });
    const b = await open({ nodeId: 'queued-b' });
    await b.journal.append(pid, [{ eventType: 'E', payload: { id: '2b' } }], { expectedSequenceNr: 1, writerId: 'b' });
    const release = gate;
    gate = undefined;
    release();
    await blocker.catch(() => undefined);
    // The queued write was not sent under the lapsed lease; renewing failed (b holds it), so it is refused.
    expect(isWriterLeaseHeld(await late)).toBe(true);
    expect((await all(fx.plugin.journal.replay(pid, 1))).map((e) => e.payload)).toEqual([{ id: '1' }, { id: '2b' }]);
    await Promise.all([a.close(), b.close()]);
  });

  it('lease mode: a write whose lease ran out in the queue is sent once the lease is renewed in line', async () => {
    let clock = 0;
    const pid = uniqueName('queued-renewed');
    let gate: (() => void) | undefined;
    const order: string[] = [];
    const client = hookedClient(fx.client, {
      execute: (query, run) => {
        if (query.includes('writer_leases')) order.push(query.split(' ')[0] ?? '');
        return run();
      },
      batch: async (query, run) => {
        // Event batches only: every event also has a tag row (its slice tag), written after its append.
        if (query.includes('tag_views')) return run();
        if (gate !== undefined) await new Promise<void>((resolve) => (gate = resolve));
        order.push('BATCH');
        return run();
      },
    });
    const a = await open({ client, leaseClock: () => clock, maxInFlight: 1 });
    await a.journal.append(pid, [{ eventType: 'E', payload: { id: '1' } }], { expectedSequenceNr: 0, writerId: 'a' });
    gate = () => undefined;
    const blocker = a.journal.append(uniqueName('other'), [{ eventType: 'E', payload: { id: 'x' } }], { expectedSequenceNr: 0, writerId: 'a' });
    await sleep(200);
    const late = a.journal.append(pid, [{ eventType: 'E', payload: { id: '2' } }], { expectedSequenceNr: 1, writerId: 'a' });
    await sleep(200);
    clock = 60_000;
    order.length = 0;
    const release = gate;
    gate = undefined;
    release();
    await blocker;
    await late;
    // The blocker's batch, then the renewal (UPDATE ... IF holder = me) before the late batch is sent.
    expect(order).toEqual(['BATCH', 'UPDATE', 'BATCH']);
    expect((await all(fx.plugin.journal.replay(pid, 1))).map((e) => e.payload)).toEqual([{ id: '1' }, { id: '2' }]);
    await a.close();
  });

  it('lease mode: the driver never retries or re-sends an event batch, and stops waiting for it when the lease could lapse', async () => {
    const seen: QueryOptions[] = [];
    const spy = new Proxy(fx.client, {
      get(target, prop, receiver) {
        if (prop === 'batch') {
          return (queries: Array<{ query: string }>, options: QueryOptions) => {
            if (queries.some((q) => q.query.includes('.messages'))) seen.push(options);
            return target.batch(queries, options);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const a = await open({ client: spy });
    await a.journal.append(uniqueName('no-retry'), [{ eventType: 'E', payload: { id: '1' } }], { expectedSequenceNr: 0, writerId: 'a' });
    expect(seen).toHaveLength(1);
    const [options] = seen;
    // Not idempotent: no speculative execution and no retry after a timeout; no retry policy at all.
    expect(options?.isIdempotent).toBe(false);
    expect(options?.retry).toBeInstanceOf(policies.retry.FallthroughRetryPolicy);
    // At most the lease's validity (15 s) plus the margin (4 s), instead of the driver's 12 s per host and retries.
    expect(options?.readTimeout).toBeGreaterThan(0);
    expect(options?.readTimeout).toBeLessThanOrEqual(19_000);
    await a.close();
  });

  it.each(['lease', 'conditional'] as const)(
    '%s mode: a timed-out write is reported as of unknown outcome, and the head read afterwards shows whether it landed',
    async (singleWriter) => {
      const pid = uniqueName(`unknown-${singleWriter}`);
      let fail = false;
      let failRead = false;
      const inject: Hook = async (query, run) => {
        if (!fail || !query.includes('INSERT INTO') || !query.includes('.messages')) return run();
        fail = false;
        await run();
        throw timedOut();
      };
      // Lease mode sends a plain batch; conditional mode's batch is resolved with a SERIAL read of its own row,
      // so a timeout of the read after it is what stays unknown there.
      const client = hookedClient(fx.client, {
        batch: inject,
        execute: async (query, run) => {
          if (singleWriter === 'conditional' && failRead && query.includes('SELECT timestamp')) {
            failRead = false;
            throw timedOut();
          }
          return run();
        },
      });
      const a = await open({ client, singleWriter });
      await a.journal.append(pid, [{ eventType: 'E', payload: { id: '1' } }], { expectedSequenceNr: 0, writerId: 'a' });
      fail = true;
      failRead = true;
      const error = await a.journal.append(pid, [{ eventType: 'E', payload: { id: '2' } }], { expectedSequenceNr: 1, writerId: 'a' }).catch((e: unknown) => e);
      expect(isWriteOutcomeUnknown(error)).toBe(true);
      expect((error as { retriable: boolean }).retriable).toBe(true);
      // It was applied: the re-read head says so and the writer goes on from there.
      expect(await a.journal.highestSequenceNr(pid)).toBe(2);
      await a.journal.append(pid, [{ eventType: 'E', payload: { id: '3' } }], { expectedSequenceNr: 2, writerId: 'a' });
      expect((await replayed(singleWriter, pid)).map((e) => e.payload)).toEqual([{ id: '1' }, { id: '2' }, { id: '3' }]);
      await a.close();
    },
  );

  it('conditional mode: a partition move whose claim timed out leaves no hole; core recovery gets past it and the claimer cannot write later', async () => {
    const pid = uniqueName('claim');
    const events: CassandraPersistenceEvent[] = [];
    let failClaim = false;
    const client = hookedClient(fx.client, {
      execute: async (query, run) => {
        // The claim of the old partition's head (step one of a move into the next partition) is applied, its answer lost.
        if (failClaim && query.includes('SET highest_sequence_nr = ? WHERE') && query.includes('IF highest_sequence_nr = ?')) {
          failClaim = false;
          await run();
          throw timedOut();
        }
        return run();
      },
    });
    const settings = { singleWriter: 'conditional', targetPartitionSize: 5, maxBatchSize: 5 } as const;
    const a = await open({ ...settings, client });
    const evt = (id: string) => ({ eventType: 'E', payload: { id } });
    await a.journal.append(pid, [evt('1'), evt('2'), evt('3'), evt('4')], { expectedSequenceNr: 0, writerId: 'a' });
    failClaim = true;
    const error = await a.journal.append(pid, [evt('5'), evt('6'), evt('7')], { expectedSequenceNr: 4, writerId: 'a' }).catch((e: unknown) => e);
    expect(isWriteOutcomeUnknown(error)).toBe(true);

    // A new incarnation elsewhere recovers with core's recovery: the claimed 5..7 are not a hole.
    const b = await open({ ...settings, onEvent: (e) => events.push(e) });
    const behavior = eventSourced<never, { id: string }, string[]>({
      persistenceId: (id) => id,
      emptyState: [],
      onCommand: () => {
        throw new Error('no commands');
      },
      onEvent: (state, event) => [...state, event.id],
    });
    const recovered = await recoverState(behavior, pid, b);
    expect(recovered).toMatchObject({ state: ['1', '2', '3', '4'], sequenceNr: 4 });
    expect(events).toContainEqual({ type: 'partition-claim.released', persistenceId: pid, claimedTo: 7, highestSequenceNr: 4 });
    await b.journal.append(pid, [evt('5b')], { expectedSequenceNr: 4, writerId: 'b' });
    await b.journal.append(pid, [evt('6b'), evt('7b')], { expectedSequenceNr: 5, writerId: 'b' });

    // The claimer's second step (rows 5..7 into partition 1 if it is still empty) can never apply now.
    const late = await fx.client.execute(
      `UPDATE ${fxc.keyspace}.messages SET highest_sequence_nr = 7 WHERE persistence_id = ? AND partition_nr = 1 IF highest_sequence_nr = null`,
      [pid],
      { prepare: true },
    );
    expect(late.wasApplied()).toBe(false);
    const again = await recoverState(behavior, pid, await open(settings));
    expect(again).toMatchObject({ state: ['1', '2', '3', '4', '5b', '6b', '7b'], sequenceNr: 7 });
    // The writer whose claim timed out reads the head again and goes on after b.
    expect(await a.journal.highestSequenceNr(pid)).toBe(7);
    await a.journal.append(pid, [evt('8'), evt('9'), evt('10')], { expectedSequenceNr: 7, writerId: 'a' });
    expect((await replayed('conditional', pid)).map((e) => e.sequenceNr)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await Promise.all([a.close(), b.close()]);
  });

  it.each(['lease', 'conditional'] as const)('%s mode: close() waits for the appends already taken', async (singleWriter) => {
    const services = serviceSettings();
    // A plugin with its own client: close() shuts the client down, so an append still in flight would fail.
    const own = await createCassandraPersistence({
      contactPoints: [...services.cassandraContactPoints],
      localDataCenter: services.cassandraLocalDataCenter,
      keyspace: (singleWriter === 'conditional' ? fxc : fx).keyspace,
      singleWriter,
    });
    const pids = Array.from({ length: 30 }, (_, i) => uniqueName(`close-${i}`));
    const appends = pids.flatMap((pid) =>
      [0, 1, 2].map((n) => own.journal.append(pid, [{ eventType: 'E', payload: { id: `${n}` } }], { expectedSequenceNr: n, writerId: 'w' })),
    );
    await own.close();
    const outcomes = await Promise.allSettled(appends);
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    for (const pid of pids) expect((await replayed(singleWriter, pid)).length).toBe(3);
  });

  it('reads the head from the partition of the highest sequence number it knows, not from partition 0', async () => {
    const pid = uniqueName('head-walk');
    const writer = await open({ targetPartitionSize: 5, maxBatchSize: 5 });
    for (let n = 0; n < 50; n += 5) {
      await writer.journal.append(pid, Array.from({ length: 5 }, (_, i) => ({ eventType: 'E', payload: { id: `${n + i + 1}` } })), {
        expectedSequenceNr: n,
        writerId: 'w',
      });
    }
    await writer.close();
    let headReads = 0;
    const client = hookedClient(fx.client, {
      execute: (query, run) => {
        if (query.startsWith('SELECT highest_sequence_nr')) headReads++;
        return run();
      },
    });
    const reader = await open({ client, targetPartitionSize: 5, maxBatchSize: 5 });
    // As a recovery from a snapshot at 45 does: replay the tail, then ask for the highest sequence number.
    expect((await all(reader.journal.replay(pid, 46))).length).toBe(5);
    headReads = 0;
    expect(await reader.journal.highestSequenceNr(pid)).toBe(50);
    // Partition 9 holds the head; 10 does not exist. Walking from 0 took 11 reads.
    expect(headReads).toBe(2);
    await reader.close();
  });

  describe.each(['lease', 'conditional'] as const)('two writers in two plugins, randomized (%s mode)', (singleWriter) => {
    it('never overwrites or loses an acknowledged event', async () => {
      // A 3 s TTL (valid for 1 s after each renewal). The pauses are drawn where a renewal bug lets both writers in: a
      // holder quiet for longer than its validity but less than the TTL, then writing again soon, while the other polls.
      const seed = Math.floor(Math.random() * 2 ** 31);
      let state = seed;
      const random = (): number => {
        state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
        return state / 2 ** 31;
      };
      const pauses = [0, 100, 300, 700, 1000, 1300, 2200, 2500, 2800, 3200];
      const settings = { singleWriter, leaseTtlMs: 3000, leaseSafetyMarginMs: 1000, targetPartitionSize: 7, maxBatchSize: 5 } as const;
      const plugins = [await open({ ...settings, nodeId: 'soak-a' }), await open({ ...settings, nodeId: 'soak-b' })];
      const pid = uniqueName(`soak-${singleWriter}`);
      const acked: Acked[] = [];
      const unexpected: unknown[] = [];
      const until = performance.now() + 20_000;
      let counter = 0;
      await Promise.all(
        plugins.map(async (plugin, w) => {
          const writer = w === 0 ? 'a' : 'b';
          // As an entity: it goes on from its own last sequence number, and reads the head again (recovers) only after a failure.
          let known = await plugin.journal.highestSequenceNr(pid);
          while (performance.now() < until) {
            await sleep(pauses[Math.floor(random() * pauses.length)] ?? 0);
            const ids = Array.from({ length: 1 + Math.floor(random() * 3) }, () => `${writer}-${counter++}`);
            try {
              const { lastSequenceNr } = await plugin.journal.append(pid, ids.map((id) => ({ eventType: 'E', payload: { id } })), {
                expectedSequenceNr: known,
                writerId: writer,
              });
              acked.push({ writer, firstSequenceNr: known + 1, ids });
              known = lastSequenceNr;
            } catch (error) {
              if (!isConcurrencyConflict(error) && !isWriterLeaseHeld(error)) unexpected.push(error);
              known = await plugin.journal.highestSequenceNr(pid);
            }
          }
        }),
      );
      expect(unexpected, `seed ${seed}`).toEqual([]);
      expect(acked.length, `seed ${seed}`).toBeGreaterThan(5);
      const history = await replayed(singleWriter, pid);
      expectNothingLost(history, acked);
      expect(history.length).toBe(acked.reduce((n, x) => n + x.ids.length, 0));
      await Promise.all(plugins.map((p) => p.close()));
    }, 60_000);
  });
});
