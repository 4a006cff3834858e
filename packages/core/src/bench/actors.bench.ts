/**
 * Throughput of the typed actor layer against raw nact, in the same run:
 * a counter actor receives N messages and the last is awaited through an
 * ask/query. Several paired rounds after a warm-up; medians count.
 *
 * Run from packages/core: `npx tsx --conditions=@dataflow/source src/bench/actors.bench.ts`
 */
import { dispatch, query, spawn, start, stop } from 'nact';
import { pathToFileURL } from 'node:url';
import type { ActorRef } from '../actor/actor-ref.js';
import { createActorSystem } from '../actor/actor-system.js';
import { ask } from '../actor/ask.js';
import { behavior } from '../actor/behavior.js';

/** One benchmark's result; `ratio` is typed / raw throughput, median of paired rounds (higher is better, 1 = no overhead). */
export interface BenchResult {
  readonly bench: string;
  readonly messages: number;
  readonly rounds: number;
  readonly rawMsgsPerSec: number;
  readonly typedMsgsPerSec: number;
  readonly ratio: number;
}

type CounterMsg = { readonly type: 'add'; readonly n: number } | { readonly type: 'get'; readonly replyTo: ActorRef<number> };
type RawMsg = { readonly type: 'add'; readonly n: number } | { readonly type: 'get'; readonly replyTo: unknown };

const counter = behavior<CounterMsg, number>({
  initialState: 0,
  onMessage: (total, msg) => {
    if (msg.type === 'add') return total + msg.n;
    msg.replyTo.tell(total);
    return total;
  },
});

const ADD: CounterMsg & RawMsg = { type: 'add', n: 1 };

async function rawRound(messages: number, round: number): Promise<number> {
  const system = start();
  const ref = spawn(
    system,
    (total: number, msg: RawMsg) => {
      if (msg.type === 'add') return total + msg.n;
      dispatch(msg.replyTo as Parameters<typeof dispatch>[0], total);
      return total;
    },
    `raw-${round}`,
    { initialState: 0 },
  );
  const started = performance.now();
  for (let i = 0; i < messages; i++) dispatch(ref, ADD);
  const total: unknown = await query(ref, (replyTo): RawMsg => ({ type: 'get', replyTo }), 60_000);
  const elapsed = performance.now() - started;
  if (total !== messages) throw new Error(`raw nact counted ${String(total)} of ${messages}`);
  stop(system);
  return (messages / elapsed) * 1000;
}

async function typedRound(messages: number, round: number): Promise<number> {
  const system = createActorSystem({ name: `bench-${round}` });
  const ref = system.spawn(counter, 'counter');
  const started = performance.now();
  for (let i = 0; i < messages; i++) ref.tell(ADD);
  const total = await ask<CounterMsg, number>(ref, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 60_000 });
  const elapsed = performance.now() - started;
  if (total !== messages) throw new Error(`typed layer counted ${total} of ${messages}`);
  await system.terminate();
  return (messages / elapsed) * 1000;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};

/**
 * Runs the benchmark: `warmup` pairs are discarded, then `rounds` pairs are
 * measured, alternating which side goes first. The ratio is the median of the
 * per-pair ratios, which holds up better than a ratio of medians on a machine
 * whose load drifts during the run.
 */
export async function runActorsBench(options: { messages?: number; rounds?: number; warmup?: number } = {}): Promise<BenchResult> {
  const messages = options.messages ?? 100_000;
  const rounds = options.rounds ?? 11;
  const warmup = options.warmup ?? 3;
  const raw: number[] = [];
  const typed: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < warmup + rounds; round++) {
    let rawRate: number;
    let typedRate: number;
    if (round % 2 === 0) {
      rawRate = await rawRound(messages, round);
      typedRate = await typedRound(messages, round);
    } else {
      typedRate = await typedRound(messages, round);
      rawRate = await rawRound(messages, round);
    }
    if (round < warmup) continue;
    raw.push(rawRate);
    typed.push(typedRate);
    ratios.push(typedRate / rawRate);
  }
  return {
    bench: 'core.actors',
    messages,
    rounds,
    rawMsgsPerSec: Math.round(median(raw)),
    typedMsgsPerSec: Math.round(median(typed)),
    ratio: Math.round(median(ratios) * 1000) / 1000,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await runActorsBench();
  console.table([
    { layer: 'raw nact', 'msgs/s (median)': result.rawMsgsPerSec },
    { layer: 'typed', 'msgs/s (median)': result.typedMsgsPerSec },
  ]);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
