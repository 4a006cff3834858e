import { describe, expect, it } from 'vitest';
import { classifyFailure } from './classify-failure.js';
import { decidePipeline, retryBackoffMs, type PipelineDecision, type RetryPolicy } from './pipeline-decider.js';
import { pipelineEventTags, type PipelineEvent } from './pipeline-events.js';
import { emptyPipelineState, evolvePipeline, type PipelineDefinitionData, type PipelineState, type PipelineStatus } from './pipeline-state.js';

const definition = {
  name: 'orders',
  source: { type: 'generator' },
  transforms: [],
  sink: { type: 'memory' },
} as unknown as PipelineDefinitionData;
const retry = { maxRetries: 2, initialBackoffMs: 1000, maxBackoffMs: 30_000, multiplier: 2, jitter: 0.2 } satisfies RetryPolicy;
const ctx = { now: 1_000, random: () => 0.5 };

function replay(...events: PipelineEvent[]): PipelineState {
  return events.reduce(evolvePipeline, emptyPipelineState);
}

const created: PipelineEvent = { type: 'PipelineCreated', at: 1, pipelineId: 'p1', definition };
const reach: Record<PipelineStatus, PipelineState> = {
  empty: emptyPipelineState,
  configured: replay(created),
  running: replay(created, { type: 'PipelineStarted', at: 2 }),
  paused: replay(created, { type: 'PipelineStarted', at: 2 }, { type: 'PipelinePaused', at: 3, reason: 'maintenance' }),
  stopped: replay(created, { type: 'PipelineStarted', at: 2 }, { type: 'PipelineStopped', at: 3, reason: 'done', finalMetrics: { recordsProcessed: 0, recordsFailed: 0, recordsDeadLettered: 0, batches: 0, avgBatchMs: 0, throughputPerSec: 0, lastProcessedAt: null } }),
  failed: replay(created, { type: 'PipelineStarted', at: 2 }, { type: 'PipelineFailed', at: 3, error: { message: 'boom', retriable: false } }),
};

const commands: Record<string, PipelineDecision> = {
  create: { type: 'create', pipelineId: 'p1', definition },
  start: { type: 'start' },
  stop: { type: 'stop', reason: 'operator' },
  pause: { type: 'pause', reason: 'maintenance' },
  resume: { type: 'resume' },
  reset: { type: 'reset' },
  'update-config': { type: 'update-config', definition },
  ingest: { type: 'ingest', batchId: 'b1' },
  'reset-offsets': { type: 'reset-offsets', sourceOffset: null },
  delete: { type: 'delete' },
};

/** [status, command] → the events it produces, or 'refused'. [] = accepted without a change (idempotent). */
const table: Record<PipelineStatus, Record<string, string[] | 'refused'>> = {
  empty: { create: ['PipelineCreated'], start: 'refused', stop: 'refused', pause: 'refused', resume: 'refused', reset: 'refused', 'update-config': 'refused', ingest: 'refused', 'reset-offsets': 'refused', delete: 'refused' },
  configured: { create: 'refused', start: ['PipelineStarted'], stop: 'refused', pause: 'refused', resume: 'refused', reset: 'refused', 'update-config': ['ConfigUpdated'], ingest: 'refused', 'reset-offsets': ['OffsetsReset'], delete: ['PipelineDeleted'] },
  running: { create: 'refused', start: [], stop: ['PipelineStopped'], pause: ['PipelinePaused'], resume: [], reset: 'refused', 'update-config': 'refused', ingest: [], 'reset-offsets': 'refused', delete: 'refused' },
  paused: { create: 'refused', start: 'refused', stop: ['PipelineStopped'], pause: [], resume: ['PipelineResumed'], reset: 'refused', 'update-config': 'refused', ingest: 'refused', 'reset-offsets': 'refused', delete: 'refused' },
  stopped: { create: 'refused', start: ['PipelineStarted'], stop: [], pause: 'refused', resume: 'refused', reset: 'refused', 'update-config': ['ConfigUpdated'], ingest: 'refused', 'reset-offsets': ['OffsetsReset'], delete: ['PipelineDeleted'] },
  failed: { create: 'refused', start: 'refused', stop: 'refused', pause: 'refused', resume: 'refused', reset: ['PipelineReset'], 'update-config': 'refused', ingest: 'refused', 'reset-offsets': ['OffsetsReset'], delete: ['PipelineDeleted'] },
};

const expectedStatusAfter: Partial<Record<string, PipelineStatus>> = {
  PipelineCreated: 'configured',
  PipelineStarted: 'running',
  PipelineStopped: 'stopped',
  PipelinePaused: 'paused',
  PipelineResumed: 'running',
  PipelineReset: 'configured',
  PipelineDeleted: 'empty',
};

describe('pipeline state machine', () => {
  for (const [status, row] of Object.entries(table) as [PipelineStatus, Record<string, string[] | 'refused'>][]) {
    for (const [name, expected] of Object.entries(row)) {
      it(`${status} + ${name} → ${expected === 'refused' ? 'refused' : expected.join(', ') || 'no change'}`, () => {
        const state = reach[status];
        expect(state.status).toBe(status);
        const command = commands[name];
        if (command === undefined) throw new Error(`no command ${name}`);
        const result = decidePipeline(state, command, ctx, retry);
        if (expected === 'refused') {
          expect(result.ok).toBe(false);
          if (!result.ok) {
            expect(result.error.tag).toBe('pipeline/command-rejected');
            expect(result.error.status).toBe(status);
            expect(result.error.retriable).toBe(false);
          }
          return;
        }
        expect(result.ok).toBe(true);
        if (!result.ok) return;
        expect(result.events.map((e) => e.type)).toEqual(expected);
        const after = result.events.reduce(evolvePipeline, state);
        const last = expected.at(-1);
        expect(after.status).toBe(last === undefined ? status : (expectedStatusAfter[last] ?? status));
      });
    }
  }

  it('refuses an ingest while paused or stopped with the reason', () => {
    const paused = decidePipeline(reach.paused, commands['ingest']!, ctx, retry);
    expect(paused.ok).toBe(false);
    if (!paused.ok) expect(paused.error.message).toMatch(/paused \(maintenance\)/);
    const stopped = decidePipeline(reach.stopped, commands['ingest']!, ctx, retry);
    if (!stopped.ok) expect(stopped.error.message).toMatch(/stopped \(done\)/);
  });

  it('acknowledges an already processed batch id again without applying it twice', () => {
    const complete: PipelineDecision = {
      type: 'complete-batch',
      batchId: 'b1',
      recordCount: 10,
      sourceOffset: 10,
      sinkPosition: null,
      transformStates: null,
      successCount: 9,
      failureCount: 1,
      deadLetterCount: 1,
      processingMs: 20,
    };
    const first = decidePipeline(reach.running, complete, ctx, retry);
    expect(first.ok && first.events.map((e) => e.type)).toEqual(['BatchIngested', 'BatchProcessed', 'CheckpointUpdated']);
    const after = first.ok ? first.events.reduce(evolvePipeline, reach.running) : reach.running;
    if (after.status === 'empty') throw new Error('unexpected');
    expect(after.metrics.recordsProcessed).toBe(9);
    expect(after.metrics.recordsFailed).toBe(1);
    expect(after.checkpoint).toEqual({ batchId: 'b1', sourceOffset: 10, sinkPosition: null, recordsProcessed: 9, transformStates: null });

    const again = decidePipeline(after, complete, ctx, retry);
    expect(again).toEqual({ ok: true, events: [], duplicate: true });
    const reingest = decidePipeline(after, { type: 'ingest', batchId: 'b1' }, ctx, retry);
    expect(reingest).toEqual({ ok: true, events: [], duplicate: true });
  });

  it('keeps the configuration and checkpoint on reset', () => {
    const failed = reach.failed;
    const result = decidePipeline(failed, { type: 'reset' }, ctx, retry);
    const after = result.ok ? result.events.reduce(evolvePipeline, failed) : failed;
    expect(after.status).toBe('configured');
    if (after.status !== 'empty' && failed.status !== 'empty') {
      expect(after.definition).toBe(failed.definition);
      expect(after.checkpoint).toBe(failed.checkpoint);
    }
  });
});

describe('offsets reset and delete', () => {
  const finalMetrics = { recordsProcessed: 7, recordsFailed: 0, recordsDeadLettered: 0, batches: 1, avgBatchMs: 1, throughputPerSec: 1, lastProcessedAt: 3 };
  const checkpoint = { batchId: 'p1:1', sourceOffset: { next: 7 }, sinkPosition: { bytes: 70 }, recordsProcessed: 7, transformStates: [{ open: 1 }] };
  const stopped = replay(created, { type: 'PipelineStarted', at: 2 }, { type: 'CheckpointUpdated', at: 3, checkpoint }, { type: 'PipelineStopped', at: 4, reason: 'done', finalMetrics });

  it('sets the source offset and keeps the sink position, transform states and the previous offset on record', () => {
    const result = decidePipeline(stopped, { type: 'reset-offsets', sourceOffset: null }, ctx, retry);
    if (!result.ok) throw result.error;
    expect(result.events).toEqual([{ type: 'OffsetsReset', at: ctx.now, sourceOffset: null, previous: { next: 7 } }]);
    const after = result.events.reduce(evolvePipeline, stopped);
    if (after.status !== 'stopped') throw new Error(`unexpected ${after.status}`);
    expect(after.checkpoint).toEqual({ ...checkpoint, sourceOffset: null });
    expect(pipelineEventTags(result.events[0]!)).toContain('pipeline-lifecycle');
  });

  it('records a given offset on a pipeline that never checkpointed, and nothing for a reset to the beginning', () => {
    const configured = reach.configured;
    const to = decidePipeline(configured, { type: 'reset-offsets', sourceOffset: { next: 3 } }, ctx, retry);
    const after = to.ok ? to.events.reduce(evolvePipeline, configured) : configured;
    expect(after.status !== 'empty' && after.checkpoint?.sourceOffset).toEqual({ next: 3 });
    const back = decidePipeline(configured, { type: 'reset-offsets', sourceOffset: null }, ctx, retry);
    const same = back.ok ? back.events.reduce(evolvePipeline, configured) : configured;
    expect(same.status !== 'empty' && same.checkpoint).toBeNull();
  });

  it('refuses an offsets reset or a delete of a running or paused pipeline with what to do', () => {
    for (const status of ['running', 'paused'] as const) {
      const reset = decidePipeline(reach[status], { type: 'reset-offsets', sourceOffset: null }, ctx, retry);
      expect(!reset.ok && reset.error.message).toMatch(/stop the pipeline first/);
      const deleted = decidePipeline(reach[status], { type: 'delete' }, ctx, retry);
      expect(!deleted.ok && deleted.error.message).toMatch(/stop it first/);
    }
  });

  it('empties a deleted pipeline, so its id can be created again from scratch', () => {
    const result = decidePipeline(stopped, { type: 'delete' }, ctx, retry);
    if (!result.ok) throw result.error;
    const deleted = result.events.reduce(evolvePipeline, stopped);
    expect(deleted).toEqual(emptyPipelineState);
    const again = decidePipeline(deleted, { type: 'create', pipelineId: 'p1', definition }, ctx, retry);
    const recreated = again.ok ? again.events.reduce(evolvePipeline, deleted) : deleted;
    expect(recreated.status).toBe('configured');
    expect(recreated.status !== 'empty' && [recreated.checkpoint, recreated.metrics.recordsProcessed]).toEqual([null, 0]);
  });
});

describe('pipeline failures and retries', () => {
  const transient = { message: 'connection refused', retriable: true };

  it('schedules retries with growing backoff, then fails after maxRetries', () => {
    let state = reach.running;
    const backoffs: number[] = [];
    for (let attempt = 1; attempt <= retry.maxRetries; attempt++) {
      const result = decidePipeline(state, { type: 'report-failure', batchId: 'b7', error: transient }, ctx, retry);
      expect(result.ok).toBe(true);
      if (!result.ok) return;
      const [event] = result.events;
      expect(event?.type).toBe('RetryScheduled');
      if (event?.type === 'RetryScheduled') {
        expect(event.attempt).toBe(attempt);
        backoffs.push(event.backoffMs);
      }
      state = result.events.reduce(evolvePipeline, state);
    }
    expect(backoffs).toEqual([1000, 2000]);
    const last = decidePipeline(state, { type: 'report-failure', batchId: 'b7', error: transient }, ctx, retry);
    expect(last.ok && last.events.map((e) => e.type)).toEqual(['PipelineFailed']);
    const failed = last.ok ? last.events.reduce(evolvePipeline, state) : state;
    expect(failed.status).toBe('failed');
  });

  it("with maxRetries 'unlimited' retries a retriable failure for ever, the backoff capped and the attempt and cause in the state", () => {
    const unlimited: RetryPolicy = { ...retry, maxRetries: 'unlimited', jitter: 0 };
    let state = reach.running;
    let backoffMs = 0;
    for (let attempt = 1; attempt <= 1_000; attempt++) {
      const result = decidePipeline(state, { type: 'report-failure', batchId: 'b7', error: transient }, ctx, unlimited);
      expect(result.ok && result.events.map((e) => e.type)).toEqual(['RetryScheduled']);
      if (!result.ok) return;
      const [event] = result.events;
      if (event?.type === 'RetryScheduled') backoffMs = event.backoffMs;
      state = result.events.reduce(evolvePipeline, state);
    }
    expect(backoffMs).toBe(unlimited.maxBackoffMs);
    expect(state.status).toBe('running');
    expect(state.status !== 'empty' && state.retry).toEqual({ batchId: 'b7', attempt: 1_000, lastError: transient });
    // Batch timeouts (a sink hanging in an outage) retry for ever too; a permanent error still fails at once.
    const timedOut = decidePipeline(state, { type: 'batch-timeout', batchId: 'b7', timeoutMs: 300_000 }, ctx, unlimited);
    expect(timedOut.ok && timedOut.events.map((e) => e.type)).toEqual(['BatchTimedOut', 'RetryScheduled']);
    const permanent = decidePipeline(state, { type: 'report-failure', batchId: 'b7', error: { message: 'bad schema', retriable: false } }, ctx, unlimited);
    expect(permanent.ok && permanent.events.map((e) => e.type)).toEqual(['PipelineFailed']);
  });

  it('recovers a journal written before unlimited retries: a stored numeric maxRetries still gives up after it', () => {
    // Events as the old runtime recorded them: the definition holds maxRetries 5 (the old default, stored with defaults applied).
    const old = { ...definition, retry: { maxRetries: 5, initialBackoffMs: 1000, maxBackoffMs: 30_000, multiplier: 2, jitter: 0.2 } } as unknown as PipelineDefinitionData;
    const retried: PipelineEvent[] = [1, 2, 3, 4, 5].map((attempt) => ({ type: 'RetryScheduled', at: 3 + attempt, batchId: 'b9', error: transient, attempt, backoffMs: 1000 }));
    const state = replay({ type: 'PipelineCreated', at: 1, pipelineId: 'p1', definition: old }, { type: 'PipelineStarted', at: 2 }, ...retried);
    expect(state.status !== 'empty' && state.retry?.attempt).toBe(5);
    const policy = state.status === 'empty' ? retry : (state.definition.retry as RetryPolicy);
    const result = decidePipeline(state, { type: 'report-failure', batchId: 'b9', error: transient }, ctx, policy);
    expect(result.ok && result.events.map((e) => e.type)).toEqual(['PipelineFailed']);
    expect(result.ok && result.events[0]?.type === 'PipelineFailed' && result.events[0].error.message).toBe('connection refused (gave up after 5 retries)');
  });

  it('fails at once on a permanent error', () => {
    const result = decidePipeline(reach.running, { type: 'report-failure', batchId: 'b1', error: { message: 'bad schema', retriable: false } }, ctx, retry);
    expect(result.ok && result.events.map((e) => e.type)).toEqual(['PipelineFailed']);
  });

  it('turns a batch timeout into BatchTimedOut and a retry', () => {
    const result = decidePipeline(reach.running, { type: 'batch-timeout', batchId: 'b3', timeoutMs: 300_000 }, ctx, retry);
    expect(result.ok && result.events.map((e) => e.type)).toEqual(['BatchTimedOut', 'RetryScheduled']);
  });

  it('caps backoff at maxBackoffMs and applies ± jitter', () => {
    const policy: RetryPolicy = { maxRetries: 10, initialBackoffMs: 1000, maxBackoffMs: 30_000, multiplier: 2, jitter: 0.2 };
    expect(retryBackoffMs(policy, 10, () => 0.5)).toBe(30_000);
    expect(retryBackoffMs(policy, 1, () => 0)).toBe(800);
    expect(retryBackoffMs(policy, 1, () => 0.999_999)).toBe(1200);
  });

  it('classifies transient failures as in docs/domain.md', () => {
    for (const message of ['Request timeout', 'connection failed', 'Service Unavailable', 'rate limited', 'temporary failure', 'network error', 'Too Many Requests', 'deadlock detected', 'resource exhausted']) {
      expect(classifyFailure(new Error(message)).retriable, message).toBe(true);
    }
    expect(classifyFailure(Object.assign(new Error('x'), { code: 'ECONNRESET' })).retriable).toBe(true);
    expect(classifyFailure(new Error('column "x" does not exist')).retriable).toBe(false);
    expect(classifyFailure('plain string').retriable).toBe(false);
  });
});

describe('pipeline tags', () => {
  it('tags every event per docs/domain.md', () => {
    expect(pipelineEventTags({ type: 'PipelineStarted', at: 1 })).toEqual(['pipeline-events', 'all-events', 'pipeline-lifecycle']);
    expect(pipelineEventTags({ type: 'BatchProcessed', at: 1, batchId: 'b', successCount: 1, failureCount: 0, deadLetterCount: 0, processingMs: 1 })).toEqual(['pipeline-events', 'all-events', 'batch-events']);
    expect(pipelineEventTags({ type: 'PipelineFailed', at: 1, error: { message: 'x', retriable: false } })).toEqual(['pipeline-events', 'all-events', 'pipeline-lifecycle', 'failure-events']);
    expect(pipelineEventTags({ type: 'RetryScheduled', at: 1, batchId: 'b', error: { message: 'x', retriable: true }, attempt: 1, backoffMs: 1 })).toContain('retry-events');
  });
});

describe('the retry a status shows', () => {
  const processed = (batchId: string): PipelineEvent => ({ type: 'BatchProcessed', at: 10, batchId, successCount: 1, failureCount: 0, deadLetterCount: 0, processingMs: 1 });
  const retried = (batchId: string): PipelineEvent => ({ type: 'RetryScheduled', at: 11, batchId, attempt: 2, backoffMs: 1_000, error: { message: 'No reply within 30000 ms', retriable: true } });
  const retryOf = (...events: PipelineEvent[]) => {
    const state = events.reduce(evolvePipeline, reach.running);
    return state.status === 'empty' ? undefined : state.retry;
  };

  it('ends when the retried batch, or a later one, is recorded, and after a retry of the connectors', () => {
    expect(retryOf(retried('p1:5'))).toMatchObject({ batchId: 'p1:5', attempt: 2 });
    expect(retryOf(retried('p1:5'), processed('p1:5'))).toBeNull();
    // Seen after a journal outage: the write of batch 255 landed after its attempt had timed out, and the pipeline moved on from 256.
    expect(retryOf(retried('p1:5'), processed('p1:6'))).toBeNull();
    expect(retryOf(retried('p1:connectors'), processed('p1:6'))).toBeNull();
    // An earlier batch completing (pipelined writes) while a later one is retried leaves the retry shown.
    expect(retryOf(retried('p1:6'), processed('p1:5'))).toMatchObject({ batchId: 'p1:6' });
  });

  it('is not shown for a batch that is recorded already (its retry was scheduled after the write landed)', () => {
    expect(retryOf(processed('p1:255'), retried('p1:255'))).toBeNull();
    expect(retryOf(processed('p1:255'), retried('p1:256'))).toMatchObject({ batchId: 'p1:256' });
  });
});
