import { describe, expect, it } from 'vitest';
import type { ActorContext } from './actor-context.js';
import type { ActorRef } from './actor-ref.js';
import { behavior, initialStateOf, receive } from './behavior.js';

type Msg = { type: 'add'; n: number } | { type: 'get'; replyTo: ActorRef<number> };

const counter = behavior<Msg, { total: number }>({
  initialState: () => ({ total: 0 }),
  onMessage: (state, msg) => {
    if (msg.type === 'add') return { total: state.total + msg.n };
    msg.replyTo.tell(state.total);
    return state;
  },
});

/** Behaviors are plain values: their handlers can be called without an actor system. */
const noContext = {} as ActorContext<Msg>;

describe('behaviors as values', () => {
  it('compute the next state from plain function calls', () => {
    const replies: number[] = [];
    const replyTo: ActorRef<number> = { path: '/test/reply', tell: (n) => replies.push(n) };
    let state = initialStateOf(counter);
    state = counter.onMessage(state, { type: 'add', n: 2 }, noContext) as { total: number };
    state = counter.onMessage(state, { type: 'get', replyTo }, noContext) as { total: number };
    expect(state).toEqual({ total: 2 });
    expect(replies).toEqual([2]);
  });

  it('give a fresh initial state each time from a factory', () => {
    const first = initialStateOf(counter);
    first.total = 99;
    expect(initialStateOf(counter)).toEqual({ total: 0 });
    expect(initialStateOf(behavior<string, number>({ initialState: 5, onMessage: (s) => s }))).toBe(5);
  });

  it('receive wraps a stateless handler and keeps its promise', async () => {
    const seen: string[] = [];
    const sync = receive<string>((m) => {
      seen.push(m);
    });
    expect(sync.onMessage(undefined, 'a', {} as ActorContext<string>)).toBeUndefined();
    const async = receive<string>(async (m) => {
      await Promise.resolve();
      seen.push(m);
    });
    await expect(async.onMessage(undefined, 'b', {} as ActorContext<string>)).resolves.toBeUndefined();
    expect(seen).toEqual(['a', 'b']);
  });
});
