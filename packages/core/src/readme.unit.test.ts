/**
 * Keeps the package README honest: its quick start is `examples/quick-start.ts`
 * verbatim, and that file compiles (typecheck) and runs here.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { quickStart } from '../examples/quick-start.js';

describe('README quick start', () => {
  it('is quoted verbatim in the README', async () => {
    const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
    const example = await readFile(new URL('../examples/quick-start.ts', import.meta.url), 'utf8');
    expect(readme).toContain(example.trim());
  });

  it('runs and recovers the counter from the journal', async () => {
    expect(await quickStart()).toBe(2);
  });
});
