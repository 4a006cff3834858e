import { afterEach, describe, expect, it, vi } from 'vitest';
import { isDataflowError } from '../errors/dataflow-error.js';
import { createActorTestKit, type ActorTestKit } from '../testing/actor-test-kit.js';
import type { ActorRef } from '../actor/actor-ref.js';
import { ask } from '../actor/ask.js';
import { receive } from '../actor/behavior.js';
import { createInstrumentation, type InstrumentationListenerError } from './instrumentation.js';

type TestEvent = { readonly type: 'a.happened'; readonly n: number } | { readonly type: 'b.happened'; readonly label: string };

/** Lets queued microtasks and one macrotask run, where the old emitter rethrew a listener's error. */
const nextMacrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('instrumentation', () => {
  it('delivers events to listeners of their type and to wildcard listeners', () => {
    const events = createInstrumentation<TestEvent>();
    const seenA: number[] = [];
    const seenAll: string[] = [];
    events.on('a.happened', (e) => seenA.push(e.n));
    events.on('*', (e) => seenAll.push(e.type));
    events.emit({ type: 'a.happened', n: 1 });
    events.emit({ type: 'b.happened', label: 'x' });
    expect(seenA).toEqual([1]);
    expect(seenAll).toEqual(['a.happened', 'b.happened']);
  });

  it('stops delivering after unsubscribe', () => {
    const events = createInstrumentation<TestEvent>();
    const seen: number[] = [];
    const off = events.on('a.happened', (e) => seen.push(e.n));
    events.emit({ type: 'a.happened', n: 1 });
    off();
    off();
    events.emit({ type: 'a.happened', n: 2 });
    expect(seen).toEqual([1]);
  });

  it('isolates a throwing listener: the others run, every throw is counted, each listener is reported once with a typed error', () => {
    const failures: InstrumentationListenerError[] = [];
    const events = createInstrumentation<TestEvent>({ onListenerError: (error) => failures.push(error) });
    const seen: number[] = [];
    const broken = new Error('listener broke');
    events.on('a.happened', () => {
      throw broken;
    });
    events.on('a.happened', (e) => seen.push(e.n));
    events.on('*', () => {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- a listener may throw anything
      throw 'not even an Error';
    });
    expect(events.listenerErrors).toBe(0);
    for (let n = 1; n <= 3; n++) events.emit({ type: 'a.happened', n });
    expect(seen).toEqual([1, 2, 3]);
    expect(events.listenerErrors).toBe(6);
    expect(failures).toHaveLength(2);
    expect(isDataflowError(failures[0], 'instrumentation/listener-failed')).toBe(true);
    expect(failures[0]).toMatchObject({ eventType: 'a.happened', cause: broken, retriable: false });
    expect(failures[0]?.message).toContain('listener broke');
    expect(failures[1]).toMatchObject({ eventType: 'a.happened', cause: 'not even an Error' });
  });

  it('by default reports a throwing listener once as a process warning and never rethrows it (no uncaught exception)', async () => {
    const warnings: unknown[] = [];
    const onWarning = (warning: unknown): void => {
      warnings.push(warning);
    };
    const emitWarning = vi.spyOn(process, 'emitWarning');
    process.on('warning', onWarning);
    try {
      const events = createInstrumentation<TestEvent>();
      const seen: string[] = [];
      events.on('b.happened', () => {
        throw new Error('metrics exporter is down');
      });
      events.on('b.happened', (e) => seen.push(e.label));
      expect(() => {
        events.emit({ type: 'b.happened', label: 'x' });
        events.emit({ type: 'b.happened', label: 'y' });
      }).not.toThrow();
      // The old emitter rethrew in a microtask: vitest fails the run on that uncaught exception.
      await nextMacrotask();
      expect(seen).toEqual(['x', 'y']);
      expect(events.listenerErrors).toBe(2);
      expect(emitWarning).toHaveBeenCalledTimes(1);
      const [reported] = emitWarning.mock.calls[0] ?? [];
      expect(isDataflowError(reported, 'instrumentation/listener-failed')).toBe(true);
      await nextMacrotask();
      expect(warnings).toHaveLength(1);
    } finally {
      process.off('warning', onWarning);
      emitWarning.mockRestore();
    }
  });

  it('falls back to the process warning when the reporter itself throws', () => {
    const emitWarning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const events = createInstrumentation<TestEvent>({
        onListenerError: () => {
          throw new Error('logger is closed');
        },
      });
      events.on('a.happened', () => {
        throw new Error('listener broke');
      });
      expect(() => events.emit({ type: 'a.happened', n: 1 })).not.toThrow();
      expect(events.listenerErrors).toBe(1);
      expect(emitWarning).toHaveBeenCalledTimes(1);
      expect((emitWarning.mock.calls[0]?.[0] as InstrumentationListenerError).cause).toEqual(new Error('logger is closed'));
    } finally {
      emitWarning.mockRestore();
    }
  });
});

interface Shout {
  readonly text: string;
  readonly replyTo: ActorRef<string>;
}

describe('instrumentation in an actor system', () => {
  let kit: ActorTestKit | undefined;
  afterEach(async () => {
    await kit?.shutdown();
    kit = undefined;
  });

  it('a listener throwing on every system event breaks neither the actors nor the process', async () => {
    const failures: InstrumentationListenerError[] = [];
    kit = createActorTestKit({ instrumentation: createInstrumentation({ onListenerError: (e) => failures.push(e) }) });
    kit.system.events.on('*', () => {
      throw new Error('broken dashboard');
    });
    const echo = kit.system.spawn(
      receive<Shout>((msg) => msg.replyTo.tell(msg.text.toUpperCase())),
      'echo',
    );
    expect(await ask<Shout, string>(echo, (replyTo) => ({ text: 'hi', replyTo }), { timeoutMs: 2_000 })).toBe('HI');
    await nextMacrotask();
    expect(kit.system.events.listenerErrors).toBeGreaterThan(0);
    expect(failures).toHaveLength(1);
  });
});
