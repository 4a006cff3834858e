import { describe, expect, it } from 'vitest';
import { GeneratorSource } from './generator-source.js';
import { systemPacingClock } from './pacing-clock.js';

describe('systemPacingClock', () => {
  it('ends a sleep as soon as the signal aborts', async () => {
    const controller = new AbortController();
    const sleeping = systemPacingClock.sleep(600_000, controller.signal);
    controller.abort();
    await expect(sleeping).resolves.toBeUndefined();
    await expect(systemPacingClock.sleep(600_000, controller.signal)).resolves.toBeUndefined();
  });

  it('lets a paced generator return what is due when the pipeline stops mid-poll', async () => {
    const controller = new AbortController();
    const source = new GeneratorSource({ type: 'generator', rate: 0.001 });
    await source.open({ pipelineId: 'p', checkpoint: undefined, signal: controller.signal });
    const polling = source.poll(10, 600_000);
    controller.abort();
    const batch = await polling;
    expect([batch.records.length, batch.offset, batch.done]).toEqual([1, 1, false]);
  });
});
