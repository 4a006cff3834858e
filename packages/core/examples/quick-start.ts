import { ask, createActorSystem, createInMemoryPersistence, every, eventSourced, none, persist, spawnEventSourced, unhandled, type ReplyTo } from '@dataflow/core';

type Command = { type: 'add'; n: number; replyTo: ReplyTo<number> } | { type: 'get'; replyTo: ReplyTo<number> };
type Event = { type: 'added'; n: number };
type State = { total: number };

// A behavior is a plain value: testable without a running system.
export const counter = eventSourced<Command, Event, State>({
  persistenceId: (id) => `counter-${id}`,
  emptyState: { total: 0 },
  onCommand: (state, cmd) => {
    if (cmd.type === 'get') return none<Event, State>().thenReply(cmd.replyTo, (s) => s.total);
    if (cmd.n <= 0) return unhandled();
    return persist<Event, State>({ type: 'added', n: cmd.n }).thenReply(cmd.replyTo, (s) => s.total);
  },
  onEvent: (state, evt) => ({ total: state.total + evt.n }),
  tagger: () => ['counter'],
  snapshot: every(100, { keep: 2 }),
});

export async function quickStart(): Promise<number> {
  const persistence = createInMemoryPersistence(); // or Postgres, PGlite, Cassandra from @dataflow/persistence
  const system = createActorSystem({ name: 'quick-start' });
  const one = spawnEventSourced(system, counter, '1', { persistence });
  await ask<Command, number>(one, (replyTo) => ({ type: 'add', n: 2, replyTo }), { timeoutMs: 1_000 });
  await system.terminate();

  // A new incarnation recovers its state from the journal.
  const again = createActorSystem({ name: 'quick-start-again' });
  const recovered = spawnEventSourced(again, counter, '1', { persistence });
  const total = await ask<Command, number>(recovered, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 });
  await again.terminate();
  return total; // 2
}
