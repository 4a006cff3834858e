import { isDataflowError } from '@dataflow/core';
import { ProtocolError, ResponseError, NetworkError, TimeoutError, UserError } from '@platformatic/kafka';
import { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, KafkaJSNonRetriableError } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { coordinatorCall, fromKafkaJs } from './kafkajs/kafkajs-errors.js';
import { fromPlatformatic } from './platformatic/platformatic-errors.js';

describe('kafkajs error mapping', () => {
  it('keeps kafkajs retriable flags and protocol types', () => {
    const leader = fromKafkaJs('producer.send', new KafkaJSProtocolError({ type: 'NOT_LEADER_FOR_PARTITION', code: 6, retriable: true, message: 'not leader' } as never));
    expect([leader.tag, leader.code, leader.retriable]).toEqual(['kafka/operation-failed', 'NOT_LEADER_FOR_PARTITION', true]);
    const fenced = fromKafkaJs('transaction.commit', new KafkaJSProtocolError({ type: 'INVALID_PRODUCER_EPOCH', code: 47, retriable: false, message: 'old epoch' } as never));
    expect([fenced.tag, fenced.retriable]).toEqual(['kafka/producer-fenced', false]);
    const rebalance = fromKafkaJs('consumer.commit', new KafkaJSProtocolError({ type: 'REBALANCE_IN_PROGRESS', code: 27, retriable: false, message: 'rebalancing' } as never));
    expect([rebalance.tag, rebalance.retriable]).toEqual(['kafka/rebalance', true]);
    expect(fromKafkaJs('admin.connect', new KafkaJSConnectionError('refused')).retriable).toBe(true);
    expect(fromKafkaJs('x', new KafkaJSNonRetriableError('bad request')).retriable).toBe(false);
  });

  it('treats a retry budget exhausted on a retriable cause as retriable', () => {
    const cause = new KafkaJSConnectionError('broker down');
    const e = fromKafkaJs('producer.send', new KafkaJSNumberOfRetriesExceeded(cause, { retryCount: 5, retryTime: 100 }));
    expect([e.code, e.retriable, e.cause instanceof KafkaJSNumberOfRetriesExceeded]).toEqual(['KafkaJSConnectionError', true, true]);
  });
});

describe('kafkajs requests to a group coordinator', () => {
  const moved = () => new KafkaJSProtocolError({ type: 'NOT_COORDINATOR_FOR_GROUP', code: 16, retriable: true, message: 'This is not the correct coordinator for this group' } as never);

  it('asks again while the coordinator moves (a broker that just started) and returns the answer', async () => {
    let calls = 0;
    const answer = await coordinatorCall('admin.fetchCommittedOffsets', () => (++calls < 3 ? Promise.reject(moved()) : Promise.resolve('offsets')), 1);
    expect([answer, calls]).toEqual(['offsets', 3]);
  });

  it('gives up after 6 attempts with the typed, retriable error, and never retries another error', async () => {
    let calls = 0;
    const failure = await coordinatorCall('admin.fetchCommittedOffsets', () => (calls++, Promise.reject(moved())), 1).catch((e: unknown) => e);
    expect(calls).toBe(6);
    expect(failure).toMatchObject({ tag: 'kafka/operation-failed', code: 'NOT_COORDINATOR_FOR_GROUP', retriable: true });
    calls = 0;
    const other = await coordinatorCall('admin.fetchCommittedOffsets', () => (calls++, Promise.reject(new KafkaJSConnectionError('refused'))), 1).catch((e: unknown) => e);
    expect([calls, (other as { code?: string }).code]).toEqual([1, 'KafkaJSConnectionError']);
  });
});

describe('@platformatic/kafka error mapping', () => {
  it('finds the protocol error in nested responses and keeps its canRetry', () => {
    const nested = new ResponseError(0, 9, { '/topics/0': [6, 'not leader'] }, {});
    const e = fromPlatformatic('producer.send', nested);
    expect([e.tag, e.code, e.retriable]).toEqual(['kafka/operation-failed', 'NOT_LEADER_OR_FOLLOWER', true]);
    const fenced = fromPlatformatic('transaction.commit', new ResponseError(26, 4, { '': [90, null] }, {}));
    expect([fenced.tag, fenced.code, fenced.retriable]).toEqual(['kafka/producer-fenced', 'PRODUCER_FENCED', false]);
    expect(fromPlatformatic('consumer.commit', new ProtocolError('ILLEGAL_GENERATION')).tag).toBe('kafka/rebalance');
  });

  it('treats network failures and timeouts as retriable, usage errors as permanent', () => {
    expect(fromPlatformatic('x', new NetworkError('socket closed')).retriable).toBe(true);
    expect(fromPlatformatic('x', new TimeoutError('timed out')).retriable).toBe(true);
    const user = fromPlatformatic('x', new UserError('bad option'));
    expect([user.code, user.retriable, isDataflowError(user, 'kafka/operation-failed')]).toEqual(['PLT_KFK_USER', false, true]);
  });
});
