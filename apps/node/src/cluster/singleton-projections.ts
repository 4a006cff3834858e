/**
 * The read-model projections in a cluster run where the coordinator runs
 * (the singleton): one instance of each, so no event is applied twice, moved
 * with the coordinator when its node goes. This object is what the node's
 * API and metrics hold: it starts and stops the real projections as the
 * singleton comes and goes, and re-emits their status events on a stable
 * emitter. While this node does not run them, the admin API forwards
 * projection requests to the node that does (`pipeline-routing.ts`).
 */
import { createInstrumentation } from '@dataflow/core';
import type { ProjectionStatusEvent } from '@dataflow/projections';
import { NodeUnavailableError } from '../node/node-errors.js';
import type { NodeProjections, ProjectionInfo } from '../projections/node-projections.js';

export class SingletonProjections implements NodeProjections {
  readonly events = createInstrumentation<ProjectionStatusEvent>();
  private current: NodeProjections | undefined;
  private unsubscribe: (() => void) | undefined;
  private transition: Promise<void> = Promise.resolve();

  /** `start` opens the projections on the shared store (undefined when it has no SQL database). */
  constructor(private readonly start: () => Promise<NodeProjections | undefined>) {}

  /** Whether the projections run in this node now. */
  get running(): boolean {
    return this.current !== undefined;
  }

  /** This node became the coordinator's: start the projections (from their stored offsets). */
  follow(runs: boolean): Promise<void> {
    this.transition = this.transition.then(() => (runs ? this.open() : this.close()));
    return this.transition;
  }

  private async open(): Promise<void> {
    if (this.current !== undefined) return;
    const started = await this.start();
    if (started === undefined) return;
    this.current = started;
    this.unsubscribe = started.events.on('*', (event) => this.events.emit(event));
  }

  async close(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await current?.close();
  }

  private target(): NodeProjections {
    if (this.current === undefined) throw new NodeUnavailableError("the read-model projections run on the coordinator's node, and it is moving");
    return this.current;
  }

  list(): Promise<readonly ProjectionInfo[]> {
    return this.current === undefined ? Promise.resolve([]) : this.current.list();
  }

  get(name: string): Promise<ProjectionInfo | undefined> {
    return this.target().get(name);
  }

  pause(name: string): Promise<ProjectionInfo> {
    return this.target().pause(name);
  }

  resume(name: string): Promise<ProjectionInfo> {
    return this.target().resume(name);
  }

  rebuild(name: string): Promise<ProjectionInfo> {
    return this.target().rebuild(name);
  }
}
