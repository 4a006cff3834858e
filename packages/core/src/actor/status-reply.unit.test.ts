import { afterEach, describe, expect, it } from 'vitest';
import { isDataflowError } from '../errors/dataflow-error.js';
import { JournalWriteError } from '../persistence/persistence-errors.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import { AskTimeoutError } from './actor-errors.js';
import type { ActorRef } from './actor-ref.js';
import { receive } from './behavior.js';
import { askWithStatus, isStatusReplyError, StatusReply, StatusReplyError } from './status-reply.js';

type Msg = { readonly answer: 'value' | 'retriable' | 'permanent' | 'not-an-error' | 'silence'; readonly replyTo: ActorRef<StatusReply<number>> };

const answering = receive<Msg>((msg) => {
  switch (msg.answer) {
    case 'value':
      msg.replyTo.tell(StatusReply.success(42));
      return;
    case 'retriable':
      msg.replyTo.tell(StatusReply.error(new JournalWriteError('p-1', 'store down', { retriable: true })));
      return;
    case 'permanent':
      msg.replyTo.tell(StatusReply.error(new JournalWriteError('p-1', 'rejected', { retriable: false })));
      return;
    case 'not-an-error':
      msg.replyTo.tell(StatusReply.error({ code: 7 }));
      return;
    case 'silence':
      return;
  }
});

let kit: ActorTestKit;

afterEach(async () => {
  await kit.shutdown();
});

describe('askWithStatus', () => {
  it('resolves with the value of a success reply', async () => {
    kit = createActorTestKit();
    const ref = kit.system.spawn(answering, 'answering');
    await expect(askWithStatus<Msg, number>(ref, (replyTo) => ({ answer: 'value', replyTo }), { timeoutMs: 1_000 })).resolves.toBe(42);
  });

  it('rejects with the error of an error reply, keeping its type and retriable flag', async () => {
    kit = createActorTestKit();
    const ref = kit.system.spawn(answering, 'answering');
    const retriable = await askWithStatus<Msg, number>(ref, (replyTo) => ({ answer: 'retriable', replyTo }), { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(retriable).toBeInstanceOf(JournalWriteError);
    expect((retriable as JournalWriteError).retriable).toBe(true);
    const permanent = await askWithStatus<Msg, number>(ref, (replyTo) => ({ answer: 'permanent', replyTo }), { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(isDataflowError(permanent, 'journal/write-failed')).toBe(true);
    expect((permanent as JournalWriteError).retriable).toBe(false);
  });

  it('wraps an error reply that is not an Error in a StatusReplyError carrying it as cause', async () => {
    kit = createActorTestKit();
    const ref = kit.system.spawn(answering, 'answering');
    const error = await askWithStatus<Msg, number>(ref, (replyTo) => ({ answer: 'not-an-error', replyTo }), { timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StatusReplyError);
    expect(isStatusReplyError(error)).toBe(true);
    expect((error as StatusReplyError).cause).toEqual({ code: 7 });
    expect((error as StatusReplyError).retriable).toBe(false);
  });

  it('rejects with a retriable AskTimeoutError when no reply comes before the timeout', async () => {
    kit = createActorTestKit();
    const ref = kit.system.spawn(answering, 'answering');
    const outcome = askWithStatus<Msg, number>(ref, (replyTo) => ({ answer: 'silence', replyTo }), { timeoutMs: 500 }).catch((e: unknown) => e);
    await kit.advance(500);
    const error = await outcome;
    expect(error).toBeInstanceOf(AskTimeoutError);
    expect((error as AskTimeoutError).retriable).toBe(true);
  });
});

describe('StatusReply', () => {
  it('builds success, ack and error replies and recognises them', () => {
    expect(StatusReply.success(1)).toEqual({ status: 'success', value: 1 });
    expect(StatusReply.ack()).toEqual({ status: 'success', value: undefined });
    const error = StatusReply.error(new Error('x'));
    expect(error.status).toBe('error');
    expect(StatusReply.isStatusReply(error)).toBe(true);
    expect(StatusReply.isStatusReply(StatusReply.ack())).toBe(true);
    expect(StatusReply.isStatusReply({ status: 'error', error: 'x' })).toBe(false);
    expect(StatusReply.isStatusReply(42)).toBe(false);
    expect(StatusReply.isStatusReply(null)).toBe(false);
  });
});
