/**
 * The usage part of docs-event-sourcing.md: spawn the counter in an actor
 * system, send commands, restart, and see the state recovered from the journal.
 */
import { askWithStatus } from '../../actor/status-reply.js';
import { createActorSystem } from '../../actor/actor-system.js';
import type { PersistencePlugin } from '../../persistence/persistence-plugin.js';
import { spawnEventSourced } from '../spawn-event-sourced.js';
import { counter, type CounterCommand } from './counter.js';

export async function runCounter(persistence: PersistencePlugin): Promise<{ before: number; after: number; failedWrites: number }> {
  const system = createActorSystem({ name: 'example' });
  let failedWrites = 0;
  system.events.on('event-sourced.persist.failed', () => failedWrites++); // typed events: e.g. feed a metric
  const one = spawnEventSourced(system, counter, '1', { persistence });
  one.tell({ type: 'add', n: 2 });
  // Every command gets a StatusReply: the value, or an error that askWithStatus rejects with.
  const before = await askWithStatus<CounterCommand, number>(one, (replyTo) => ({ type: 'add', n: 3, replyTo }), { timeoutMs: 1_000 });
  await system.terminate();

  const restarted = createActorSystem({ name: 'example-restarted' });
  const again = spawnEventSourced(restarted, counter, '1', { persistence });
  const after = await askWithStatus<CounterCommand, number>(again, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 });
  await restarted.terminate();
  return { before, after, failedWrites };
}
