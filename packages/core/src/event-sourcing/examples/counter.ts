/**
 * The example of docs-event-sourcing.md: a counter entity, compiled and run by
 * `readme-example.unit.test.ts` so the documentation cannot drift.
 */
import { none, persist, unhandled, type ReplyTo } from '../effect.js';
import { eventSourced } from '../event-sourced.js';
import { every } from '../snapshot-policy.js';

export type CounterCommand =
  | { readonly type: 'add'; readonly n: number; readonly replyTo?: ReplyTo<number> }
  | { readonly type: 'get'; readonly replyTo: ReplyTo<number> }
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
  onCommand: (state, cmd) => {
    switch (cmd.type) {
      case 'add':
        if (cmd.n <= 0) return unhandled();
        return cmd.replyTo === undefined
          ? persist({ type: 'added', n: cmd.n })
          : persist<CounterEvent, CounterState>({ type: 'added', n: cmd.n }).thenReply(cmd.replyTo, (s) => s.total);
      case 'get':
        return none<CounterEvent, CounterState>().thenReply(cmd.replyTo, (s) => s.total);
      case 'reset':
        return state.total === 0 ? none() : persist({ type: 'reset' });
    }
  },
  onEvent: (state, evt) => (evt.type === 'added' ? { total: state.total + evt.n } : { total: 0 }),
  tagger: () => ['counter'],
  snapshot: every(100, { keep: 2 }),
});
