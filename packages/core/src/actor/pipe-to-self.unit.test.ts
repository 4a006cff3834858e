import { afterEach, describe, expect, it } from 'vitest';
import type { InstrumentationEvent } from '../instrumentation/instrumentation.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import { SupervisorStrategy } from '../supervision/supervisor-strategy.js';
import type { Outcome } from './actor-context.js';
import type { ActorRef } from './actor-ref.js';
import { behavior } from './behavior.js';

type Msg =
  | { readonly type: 'run'; readonly work: () => Promise<number> }
  | { readonly type: 'done'; readonly outcome: Outcome<number> }
  | { readonly type: 'get'; readonly replyTo: ActorRef<readonly string[]> };

/** Records every piped outcome (and reports it to `report`); the mapper throws when `mapperThrows` says so. */
function piping(report: ActorRef<string>, options: { readonly mapperThrows?: (outcome: Outcome<number>) => boolean } = {}) {
  return behavior<Msg, readonly string[]>({
    initialState: () => [],
    onMessage: (log, msg, ctx) => {
      switch (msg.type) {
        case 'run':
          ctx.pipeToSelf(msg.work(), (outcome) => {
            if (options.mapperThrows?.(outcome) === true) throw new Error('mapper broke');
            return { type: 'done', outcome };
          });
          return log;
        case 'done': {
          const line = msg.outcome.ok ? `ok:${msg.outcome.value}` : `error:${(msg.outcome.error as Error).message}`;
          report.tell(line);
          return [...log, line];
        }
        case 'get':
          msg.replyTo.tell(log);
          return log;
      }
    },
  });
}

let kit: ActorTestKit;
const events: InstrumentationEvent[] = [];

function startKit(): ActorTestKit {
  kit = createActorTestKit();
  events.length = 0;
  kit.system.events.on('*', (e) => events.push(e));
  return kit;
}

/** Resolves with the first event (already seen or still to come) that matches. */
function eventMatching(predicate: (event: InstrumentationEvent) => boolean): Promise<InstrumentationEvent> {
  const seen = events.find(predicate);
  if (seen !== undefined) return Promise.resolve(seen);
  return new Promise((resolve) => {
    const off = kit.system.events.on('*', (event) => {
      if (!predicate(event)) return;
      off();
      resolve(event);
    });
  });
}

afterEach(async () => {
  await kit.shutdown();
});

describe('ctx.pipeToSelf', () => {
  it('delivers a resolved value as a message through the mailbox', async () => {
    const { system } = startKit();
    const reports = kit.createTestProbe<string>();
    const probe = kit.createTestProbe<readonly string[]>();
    const ref = system.spawn(piping(reports.ref), 'piping');
    ref.tell({ type: 'run', work: () => Promise.resolve(7) });
    await expect(reports.expectMessage()).resolves.toBe('ok:7');
    ref.tell({ type: 'get', replyTo: probe.ref });
    await expect(probe.expectMessage()).resolves.toEqual(['ok:7']);
  });

  it('delivers a rejection as an error outcome, and the actor keeps running', async () => {
    const { system } = startKit();
    const reports = kit.createTestProbe<string>();
    const ref = system.spawn(piping(reports.ref), 'piping');
    ref.tell({ type: 'run', work: () => Promise.reject(new Error('io down')) });
    await expect(reports.expectMessage()).resolves.toBe('error:io down');
    ref.tell({ type: 'run', work: () => Promise.resolve(1) });
    await expect(reports.expectMessage()).resolves.toBe('ok:1');
    expect(events.some((e) => e.type === 'actor.failed')).toBe(false);
  });

  it('keeps the outcomes of piped promises in the order they settle', async () => {
    const { system } = startKit();
    const reports = kit.createTestProbe<string>();
    const probe = kit.createTestProbe<readonly string[]>();
    const ref = system.spawn(piping(reports.ref), 'piping');
    let releaseFirst!: (n: number) => void;
    const first = new Promise<number>((resolve) => (releaseFirst = resolve));
    ref.tell({ type: 'run', work: () => first });
    ref.tell({ type: 'run', work: () => Promise.resolve(2) });
    await expect(reports.expectMessage()).resolves.toBe('ok:2');
    releaseFirst(1);
    await expect(reports.expectMessage()).resolves.toBe('ok:1');
    ref.tell({ type: 'get', replyTo: probe.ref });
    await expect(probe.expectMessage()).resolves.toEqual(['ok:2', 'ok:1']);
  });

  it('fails the actor under its supervision when the mapper throws', async () => {
    const { system } = startKit();
    const reports = kit.createTestProbe<string>();
    const ref = system.spawn(piping(reports.ref, { mapperThrows: (o) => o.ok && o.value === 13 }), 'stopping');
    ref.tell({ type: 'run', work: () => Promise.resolve(13) });
    const stopped = await eventMatching((e) => e.type === 'actor.stopped');
    const failed = events.find((e) => e.type === 'actor.failed');
    expect(failed).toMatchObject({ path: '/user/stopping', during: 'message', directive: 'stop' });
    expect(failed?.type === 'actor.failed' && (failed.error as Error).message).toBe('mapper broke');
    expect(stopped.type === 'actor.stopped' && stopped.reason.type === 'failed' && (stopped.reason.error as Error).message).toBe('mapper broke');
  });

  it('applies a resume policy to a throwing mapper: the actor keeps its state', async () => {
    const { system } = startKit();
    const reports = kit.createTestProbe<string>();
    const probe = kit.createTestProbe<readonly string[]>();
    const ref = system.spawn(piping(reports.ref, { mapperThrows: (o) => o.ok && o.value === 13 }), 'resuming', { supervise: SupervisorStrategy.resume });
    ref.tell({ type: 'run', work: () => Promise.resolve(1) });
    await expect(reports.expectMessage()).resolves.toBe('ok:1');
    ref.tell({ type: 'run', work: () => Promise.resolve(13) });
    await eventMatching((e) => e.type === 'actor.failed');
    ref.tell({ type: 'get', replyTo: probe.ref });
    await expect(probe.expectMessage()).resolves.toEqual(['ok:1']);
    expect(events).toContainEqual(expect.objectContaining({ type: 'actor.failed', path: '/user/resuming', directive: 'resume' }));
  });

  it('delivers an outcome that arrives after a restart to the new incarnation (like a message to self)', async () => {
    const { system } = startKit();
    const reports = kit.createTestProbe<string>();
    const probe = kit.createTestProbe<readonly string[]>();
    const ref = system.spawn(piping(reports.ref, { mapperThrows: (o) => o.ok && o.value === 13 }), 'restarting', { supervise: SupervisorStrategy.restart });
    let release!: (n: number) => void;
    const late = new Promise<number>((resolve) => (release = resolve));
    ref.tell({ type: 'run', work: () => late });
    ref.tell({ type: 'run', work: () => Promise.resolve(1) });
    await expect(reports.expectMessage()).resolves.toBe('ok:1');
    ref.tell({ type: 'run', work: () => Promise.resolve(13) }); // the mapper throws: restart with a fresh state
    await eventMatching((e) => e.type === 'actor.restarted');
    release(2);
    await expect(reports.expectMessage()).resolves.toBe('ok:2');
    ref.tell({ type: 'get', replyTo: probe.ref });
    await expect(probe.expectMessage()).resolves.toEqual(['ok:2']);
  });

  it('sends an outcome that arrives after the actor stopped to dead letters', async () => {
    const { system } = startKit();
    const reports = kit.createTestProbe<string>();
    const ref = system.spawn(piping(reports.ref), 'short-lived');
    let release!: (n: number) => void;
    const late = new Promise<number>((resolve) => (release = resolve));
    ref.tell({ type: 'run', work: () => late });
    await system.settled();
    await system.stop(ref);
    release(42);
    await eventMatching((e) => e.type === 'actor.dead-letter');
    expect(events).toContainEqual({ type: 'actor.dead-letter', path: '/user/short-lived', message: { ok: true, value: 42 }, reason: 'stopped' });
  });
});
