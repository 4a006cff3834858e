/**
 * Throughput of event-sourced entities on the in-memory journal:
 * - `1 event / append, awaited`: one command, one persist, wait for the reply, next;
 * - `1 event / append, pipelined`: all commands told at once; the entity stashes them and writes one append per command;
 * - `group commit`: the same, with `maxCommandsPerAppend`: stashed commands are decided together and written in one append;
 * - `100 events / append`: `persist([...100 events])`, one atomic append per command, awaited;
 * - `recovery`: replaying the events into state on start.
 * Commands are answered with `StatusReply`s, as callers of entities ask them: an
 * error reply rejects the run, and each mode checks the total it ends with, so
 * a write that failed is never counted as done.
 * Prints a table and one JSON line. Run: `npx tsx src/bench/event-sourcing.bench.ts`.
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { systemClock } from '../clock/clock.js';
import { systemScheduler } from '../clock/scheduler.js';
import { StatusReply } from '../actor/status-reply.js';
import type { ReplyTo } from '../event-sourcing/effect.js';
import { eventSourced } from '../event-sourcing/event-sourced.js';
import { EventSourcedEntity } from '../event-sourcing/event-sourced-entity.js';
import { recoverState, type EntityPersistence } from '../event-sourcing/recovery.js';
import { createInstrumentation } from '../instrumentation/instrumentation.js';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';

type Cmd =
  | { readonly type: 'add'; readonly n: number; readonly replyTo?: ReplyTo<StatusReply<number>> }
  | { readonly type: 'add-many'; readonly ns: readonly number[]; readonly replyTo: ReplyTo<StatusReply<number>> };
type Evt = { readonly type: 'added'; readonly n: number };

const counterWith = (maxCommandsPerAppend: number) => eventSourced<Cmd, Evt, { readonly total: number }>({
  persistenceId: (id) => `bench-${id}`,
  emptyState: { total: 0 },
  onCommand: (_state, cmd, { effects }) => {
    const events = cmd.type === 'add' ? [{ type: 'added' as const, n: cmd.n }] : cmd.ns.map((n) => ({ type: 'added' as const, n }));
    const effect = effects.persist(events);
    return cmd.replyTo === undefined ? effect : effect.thenReply(cmd.replyTo, (s) => StatusReply.success(s.total));
  },
  onEvent: (state, evt) => ({ total: state.total + evt.n }),
  tagger: () => ['bench'],
  stashCapacity: 1_000_000,
  maxCommandsPerAppend,
});
const benchCounter = counterWith(1);
type Entity = EventSourcedEntity<Cmd, Evt, { readonly total: number }>;

export interface EventSourcingBenchRow {
  readonly mode: string;
  readonly events: number;
  readonly appends: number;
  readonly ms: number;
  readonly eventsPerSecond: number;
}

export interface EventSourcingBenchOptions {
  /** Events written in each mode (default 20 000). */
  readonly events?: number;
  /** Events per append in the batched mode (default 100). */
  readonly batchSize?: number;
  /** A fresh store for each mode (default: a new in-memory store). */
  readonly persistence?: () => EntityPersistence;
}

const appendCounts = new WeakMap<Entity, { appends: number }>();

function startEntity(persistence: EntityPersistence, id: string, behavior = benchCounter): Promise<Entity> {
  const events = createInstrumentation();
  const count = { appends: 0 };
  events.on('event-sourced.persisted', () => count.appends++);
  const entity = new EventSourcedEntity(behavior, id, persistence, { scheduler: systemScheduler, clock: systemClock, events });
  appendCounts.set(entity, count);
  entity.start();
  return entity.whenIdle().then(() => entity);
}

function appendsOf(entity: Entity): number {
  return appendCounts.get(entity)?.appends ?? 0;
}

/** Sends a command and resolves with the value of its success reply; rejects with the error of an error reply. */
function send(entity: Entity, build: (replyTo: ReplyTo<StatusReply<number>>) => Cmd): Promise<number> {
  return new Promise((resolve, reject) =>
    entity.receive(build({ tell: (reply) => (reply.status === 'success' ? resolve(reply.value) : reject(reply.error)) })),
  );
}

/** A mode whose entity does not end with every event counted did not do the work it is timed for. */
function expectTotal(mode: string, total: number, expected: number): void {
  if (total !== expected) throw new Error(`event-sourcing bench, ${mode}: the entity ended with a total of ${total}, expected ${expected}`);
}

function row(mode: string, events: number, appends: number, ms: number): EventSourcingBenchRow {
  return { mode, events, appends, ms: Math.round(ms * 10) / 10, eventsPerSecond: Math.round((events / ms) * 1000) };
}

/**
 * Runs the benchmark and returns one row per mode.
 *
 * @example
 * ```ts
 * const rows = await runEventSourcingBench({ events: 10_000 });
 * ```
 */
export async function runEventSourcingBench(options: EventSourcingBenchOptions = {}): Promise<EventSourcingBenchRow[]> {
  const total = options.events ?? 20_000;
  const batchSize = options.batchSize ?? 100;
  // A short warm-up round lets the JIT settle before the measured one.
  const newStore = options.persistence ?? createInMemoryPersistence;
  await measure(Math.min(total, 2_000), batchSize, newStore);
  return measure(total, batchSize, newStore);
}

async function measure(total: number, batchSize: number, newStore: () => EntityPersistence): Promise<EventSourcingBenchRow[]> {
  const rows: EventSourcingBenchRow[] = [];

  {
    const persistence = newStore();
    const entity = await startEntity(persistence, 'awaited');
    const start = performance.now();
    let last = 0;
    for (let i = 0; i < total; i++) last = await send(entity, (replyTo) => ({ type: 'add', n: 1, replyTo }));
    const ms = performance.now() - start;
    expectTotal('awaited', last, total);
    rows.push(row('1 event / append, awaited', total, appendsOf(entity), ms));
  }
  {
    const persistence = newStore();
    const entity = await startEntity(persistence, 'pipelined');
    const start = performance.now();
    for (let i = 0; i < total - 1; i++) entity.receive({ type: 'add', n: 1 });
    const last = await send(entity, (replyTo) => ({ type: 'add', n: 1, replyTo }));
    const ms = performance.now() - start;
    expectTotal('pipelined', last, total);
    rows.push(row('1 event / append, pipelined', total, appendsOf(entity), ms));
  }
  {
    const persistence = newStore();
    const entity = await startEntity(persistence, 'grouped', counterWith(batchSize));
    const start = performance.now();
    for (let i = 0; i < total - 1; i++) entity.receive({ type: 'add', n: 1 });
    const last = await send(entity, (replyTo) => ({ type: 'add', n: 1, replyTo }));
    const ms = performance.now() - start;
    expectTotal('group commit', last, total);
    rows.push(row(`1 event / command, pipelined, group commit of ${batchSize}`, total, appendsOf(entity), ms));
  }
  const recoveryStore = newStore();
  {
    const entity = await startEntity(recoveryStore, 'batched');
    const ns = Array.from({ length: batchSize }, () => 1);
    const appends = Math.ceil(total / batchSize);
    const start = performance.now();
    let last = 0;
    for (let i = 0; i < appends; i++) last = await send(entity, (replyTo) => ({ type: 'add-many', ns, replyTo }));
    const ms = performance.now() - start;
    expectTotal('batched', last, appends * batchSize);
    rows.push(row(`${batchSize} events / append, awaited`, appends * batchSize, appends, ms));
  }
  {
    const start = performance.now();
    const recovered = await recoverState(benchCounter, 'bench-batched', recoveryStore);
    rows.push(row('recovery (replay into state)', recovered.eventsReplayed, 0, performance.now() - start));
  }
  return rows;
}

async function main(): Promise<void> {
  const rows = await runEventSourcingBench();
  console.table(rows);
  process.stdout.write(`${JSON.stringify({ bench: 'event-sourcing', journal: 'in-memory', node: process.version, rows })}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
