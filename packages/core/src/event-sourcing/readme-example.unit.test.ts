/**
 * Keeps docs-event-sourcing.md honest: the example files appear verbatim in
 * the document, and they compile and run.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';
import { BehaviorSpec } from '../testing/behavior-spec.js';
import { EventSourcedBehaviorTestKit } from '../testing/event-sourced-behavior-test-kit.js';
import { counter } from './examples/counter.js';
import { runCounter } from './examples/run-counter.js';

const read = (path: string): Promise<string> => readFile(new URL(path, import.meta.url), 'utf8');

describe('docs-event-sourcing.md', () => {
  it('shows the example files verbatim', async () => {
    const doc = await read('../../docs-event-sourcing.md');
    for (const file of ['./examples/counter.ts', './examples/run-counter.ts', './examples/counter-testing.unit.test.ts']) {
      expect(doc).toContain((await read(file)).trim());
    }
  });

  it('runs the counter in an actor system and recovers it after a restart', async () => {
    expect(await runCounter(createInMemoryPersistence())).toEqual({ before: 5, after: 5, failedWrites: 0 });
  });

  it('runs the test-kit snippets of the document', async () => {
    const kit = EventSourcedBehaviorTestKit.create(counter, { entityId: '1' });
    const { events, state } = await kit.runCommand({ type: 'add', n: 2 });
    expect(events).toEqual([{ type: 'added', n: 2 }]);
    expect(state).toEqual({ total: 2 });
    expect((await kit.restart()).state).toEqual({ total: 2 });
    BehaviorSpec.for(counter).given([{ type: 'added', n: 1 }]).when({ type: 'reset' }).expectEvents([{ type: 'reset' }]).expectState({ total: 0 });
  });
});
