/**
 * The two things a generation does around a poll: admitting the records read
 * through the rate limiter (split by the burst, cut by the generation's
 * abort), and sampling the source's lag at most every `lagIntervalMs`.
 */
import { describe, expect, it } from 'vitest';
import type { Sink, SinkWriteResult } from '../../connector/sink.js';
import type { Source, SourceBatch, SourceLag, SourceRecord } from '../../connector/source.js';
import type { InstrumentationEvent } from '../../instrumentation/instrumentation.js';
import { localTokenBucket, rateLimiterOf, type RateLimiter, type RateLimitRequest } from '../../rate-limit/rate-limiter.js';
import { TestClock } from '../../testing/test-clock.js';
import { validatePipelineDefinition } from '../definition/pipeline-definition.js';
import { ConnectorRun, type ConnectorRunOptions } from './connector-run.js';

function definition(extra: Record<string, unknown> = {}) {
  const validation = validatePipelineDefinition({ name: 'limits', source: { type: 'fake' }, sink: { type: 'fake' }, ...extra });
  if (!validation.ok) throw new Error(JSON.stringify(validation.issues));
  return validation.definition;
}

const records = (n: number): SourceRecord[] => Array.from({ length: n }, (_, i) => ({ ok: true as const, value: { i } }));

class FakeSource implements Source {
  readonly type = 'fake';
  lagCalls = 0;
  lagAnswer: () => Promise<readonly SourceLag[]> = () => Promise.resolve([{ topic: 't', partition: 0, lag: 7 }]);
  constructor(private readonly perPoll: number) {}
  open(): Promise<void> {
    return Promise.resolve();
  }
  poll(maxRecords: number): Promise<SourceBatch> {
    return Promise.resolve({ records: records(Math.min(maxRecords, this.perPoll)), offset: null, done: false });
  }
  ack(): Promise<void> {
    return Promise.resolve();
  }
  lag(): Promise<readonly SourceLag[]> {
    this.lagCalls++;
    return this.lagAnswer();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const sink: Sink = {
  type: 'fake',
  open: () => Promise.resolve(),
  write: (): Promise<SinkWriteResult> => Promise.resolve({}),
  close: () => Promise.resolve(),
};

async function openRun(source: Source, extra: Record<string, unknown>, options: ConnectorRunOptions): Promise<ConnectorRun> {
  const factory = { createSource: () => source, createSink: () => sink, createDeadLetterTarget: () => { throw new Error('none'); } };
  const run = ConnectorRun.create(1, 'p1', definition(extra), factory, undefined, options);
  await run.open(undefined, undefined);
  return run;
}

/** A limiter that records each request and grants at once. */
function recordingLimiter(): RateLimiter & { requests: RateLimitRequest[] } {
  const requests: RateLimitRequest[] = [];
  return { requests, acquire: (request) => Promise.resolve(void requests.push(request)) };
}

describe('rate limit hook in ConnectorRun.poll', () => {
  it('asks the limiter for the records of each poll, in pieces of at most the burst', async () => {
    const limiter = recordingLimiter();
    const run = await openRun(new FakeSource(25), { batch: { size: 25 }, rateLimit: { recordsPerSecond: 100, burst: 10 } }, { rateLimiter: limiter });
    const batch = await run.poll(25, 10);
    expect(batch.records).toHaveLength(25);
    expect(limiter.requests).toEqual([10, 10, 5].map((n) => ({ pipelineId: 'p1', records: n, limit: { recordsPerSecond: 100, burst: 10 } })));
  });

  it('defaults the burst to one second of records, and asks nothing for an empty poll or without a rateLimit', async () => {
    const limiter = recordingLimiter();
    const limited = await openRun(new FakeSource(3), { rateLimit: { recordsPerSecond: 2.5 } }, { rateLimiter: limiter });
    await limited.poll(3, 10);
    expect(limiter.requests.map((r) => [r.records, r.limit.burst])).toEqual([[3, 3]]);
    const empty = await openRun(new FakeSource(0), { rateLimit: { recordsPerSecond: 10 } }, { rateLimiter: limiter });
    await empty.poll(10, 10);
    const unlimited = await openRun(new FakeSource(5), {}, { rateLimiter: limiter });
    await unlimited.poll(5, 10);
    expect(limiter.requests).toHaveLength(1);
  });

  it('waits on the scheduler until the bucket refills, and an abort of the generation cuts the wait', async () => {
    const clock = new TestClock();
    const limiter = rateLimiterOf(localTokenBucket(clock), clock);
    const run = await openRun(new FakeSource(10), { batch: { size: 10 }, rateLimit: { recordsPerSecond: 10, burst: 10 } }, { rateLimiter: limiter });
    expect((await run.poll(10, 10)).records).toHaveLength(10); // the full burst at once
    let second: SourceBatch | undefined;
    const polling = run.poll(10, 10).then((b) => (second = b));
    await clock.advanceToAsync(900);
    expect(second).toBeUndefined(); // 9 tokens after 900 ms
    await clock.advanceToAsync(1_000);
    await polling;
    expect(second?.records).toHaveLength(10);

    const waiting = run.poll(10, 10);
    const reason = new Error('stopping');
    run.abort(reason);
    await expect(waiting).rejects.toBe(reason);
  });
});

describe('lag sampling', () => {
  it('asks the source at most every lagIntervalMs and reports the answer as an event', async () => {
    const source = new FakeSource(1);
    const run = await openRun(source, {}, { lagIntervalMs: 1_000 });
    const events: InstrumentationEvent[] = [];
    run.sampleLag(0, (e) => events.push(e));
    run.sampleLag(10, (e) => events.push(e)); // one in flight
    await Promise.resolve();
    await Promise.resolve();
    run.sampleLag(999, (e) => events.push(e)); // too early
    expect(source.lagCalls).toBe(1);
    expect(events).toEqual([{ type: 'pipeline.source.lag', pipelineId: 'p1', sourceType: 'fake', partitions: [{ topic: 't', partition: 0, lag: 7 }] }]);

    const failure = new Error('broker unreachable');
    source.lagAnswer = () => Promise.reject(failure);
    run.sampleLag(1_000, (e) => events.push(e));
    await new Promise((resolve) => setImmediate(resolve));
    expect(events[1]).toEqual({ type: 'pipeline.source.lag-failed', pipelineId: 'p1', sourceType: 'fake', error: failure });
  });

  it('reports nothing once the generation is aborted, and nothing for a source without lag()', async () => {
    const source = new FakeSource(1);
    let answer!: (lag: readonly SourceLag[]) => void;
    source.lagAnswer = () => new Promise((resolve) => (answer = resolve));
    const run = await openRun(source, {}, {});
    const events: InstrumentationEvent[] = [];
    run.sampleLag(0, (e) => events.push(e));
    run.abort(new Error('stopped'));
    answer([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual([]);

    const withoutLag: Source = { type: 'fake', open: () => Promise.resolve(), poll: () => Promise.resolve({ records: [], offset: null, done: false }), ack: () => Promise.resolve(), close: () => Promise.resolve() };
    const plain = await openRun(withoutLag, {}, {});
    plain.sampleLag(0, (e) => events.push(e));
    expect(events).toEqual([]);
  });
});
