import { askWithStatus, createActorSystem, createInMemoryPersistence, every, eventSourced, spawnEventSourced, StatusReply, type ReplyTo } from '@dataflow/core';

type Command = { type: 'add'; n: number; replyTo: ReplyTo<StatusReply<number>> } | { type: 'get'; replyTo: ReplyTo<StatusReply<number>> };
type Event = { type: 'added'; n: number };
type State = { total: number };

// A behavior is a plain value: testable without a running system.
export const counter = eventSourced<Command, Event, State>({
  persistenceId: (id) => `counter-${id}`,
  emptyState: { total: 0 },
  // Every command is answered with a StatusReply: the value, or an error (a failed write, an unhandled command, ...).
  onCommand: (state, cmd, { effects }) => {
    if (cmd.type === 'get') return effects.reply(cmd.replyTo, StatusReply.success(state.total));
    if (cmd.n <= 0) return effects.unhandled(); // the caller gets CommandUnhandledError
    return effects.persist({ type: 'added', n: cmd.n }).thenReply(cmd.replyTo, (s) => StatusReply.success(s.total));
  },
  onEvent: (state, evt) => ({ total: state.total + evt.n }),
  tagger: () => ['counter'],
  snapshot: every(100, { keep: 2 }),
});

export async function quickStart(): Promise<number> {
  const persistence = createInMemoryPersistence(); // or Postgres, PGlite, Cassandra from @dataflow/persistence
  const system = createActorSystem({ name: 'quick-start' });
  const one = spawnEventSourced(system, counter, '1', { persistence });
  // askWithStatus resolves with the value of a success and rejects with the error of an error reply.
  await askWithStatus<Command, number>(one, (replyTo) => ({ type: 'add', n: 2, replyTo }), { timeoutMs: 1_000 });
  await system.terminate();

  // A new incarnation recovers its state from the journal.
  const again = createActorSystem({ name: 'quick-start-again' });
  const recovered = spawnEventSourced(again, counter, '1', { persistence });
  const total = await askWithStatus<Command, number>(recovered, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 });
  await again.terminate();
  return total; // 2
}
