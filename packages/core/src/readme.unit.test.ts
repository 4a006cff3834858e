/**
 * Keeps the package README honest: its quick start is `examples/quick-start.ts`
 * verbatim, and that file compiles (typecheck) and runs here.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { counter, quickStart } from '../examples/quick-start.js';
import { createActorSystem } from './actor/actor-system.js';
import { askWithStatus } from './actor/status-reply.js';
import { CommandUnhandledError } from './event-sourcing/event-sourcing-errors.js';
import { spawnEventSourced } from './event-sourcing/spawn-event-sourced.js';
import { createInMemoryPersistence } from './persistence/in-memory/in-memory-persistence.js';

type Command = Parameters<typeof counter.onCommand>[1];

describe('README quick start', () => {
  it('is quoted verbatim in the README', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const example = await readFile(new URL('../examples/quick-start.ts', import.meta.url), 'utf8');
    expect(readme).toContain(example.trim());
  });

  it('runs and recovers the counter from the journal', async () => {
    expect(await quickStart()).toBe(2);
  });

  it('answers every command with a StatusReply: askWithStatus gets the value, or rejects with the typed error', async () => {
    const system = createActorSystem({ name: 'readme-status' });
    try {
      const one = spawnEventSourced(system, counter, '1', { persistence: createInMemoryPersistence() });
      expect(await askWithStatus<Command, number>(one, (replyTo) => ({ type: 'add', n: 3, replyTo }), { timeoutMs: 1_000 })).toBe(3);
      await expect(askWithStatus<Command, number>(one, (replyTo) => ({ type: 'add', n: 0, replyTo }), { timeoutMs: 1_000 })).rejects.toBeInstanceOf(
        CommandUnhandledError,
      );
      expect(await askWithStatus<Command, number>(one, (replyTo) => ({ type: 'get', replyTo }), { timeoutMs: 1_000 })).toBe(3);
    } finally {
      await system.terminate();
    }
  });
});
