/**
 * The example of docs-event-sourcing.md: a counter entity, compiled and run by
 * `readme-example.unit.test.ts` so the documentation cannot drift.
 */
import { StatusReply } from '../../actor/status-reply.js';
import type { ReplyTo } from '../effect.js';
import { eventSourced } from '../event-sourced.js';
import { every } from '../snapshot-policy.js';

export type CounterCommand =
  | { readonly type: 'add'; readonly n: number; readonly replyTo?: ReplyTo<StatusReply<number>> }
  | { readonly type: 'get'; readonly replyTo: ReplyTo<StatusReply<number>> }
  | { readonly type: 'reset' };

export type CounterEvent =
  | { readonly type: 'added'; readonly n: number }
  | { readonly type: 'reset' };

export interface CounterState {
  readonly total: number;
}

export const counter = eventSourced<CounterCommand, CounterEvent, CounterState>({
  persistenceId: (id) => `counter-${id}`,
  emptyState: { total: 0 },
  // `effects` is bound to CounterEvent and CounterState: no generic arguments.
  onCommand: (state, cmd, { effects }) => {
    switch (cmd.type) {
      case 'add': {
        if (cmd.n <= 0) return effects.unhandled(); // the caller gets an error reply (CommandUnhandledError)
        const added = effects.persist({ type: 'added', n: cmd.n });
        return cmd.replyTo === undefined ? added : added.thenReply(cmd.replyTo, (s) => StatusReply.success(s.total));
      }
      case 'get':
        return effects.reply(cmd.replyTo, StatusReply.success(state.total));
      case 'reset':
        return state.total === 0 ? effects.none() : effects.persist({ type: 'reset' });
    }
  },
  onEvent: (state, evt) => (evt.type === 'added' ? { total: state.total + evt.n } : { total: 0 }),
  onSignal: (state, signal, ctx) => {
    if (signal.type === 'recovery-completed') ctx.log.info('recovered', { total: state.total, sequenceNr: signal.sequenceNr });
  },
  tagger: () => ['counter'],
  snapshot: every(100, { keep: 2 }),
});
