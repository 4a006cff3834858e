/**
 * The read-model projections of a node in a cluster: each read model is
 * split into slice ranges of the pipelines' persistence ids, and each range
 * runs on the one live node that holds its lease (`projections-<min>-<max>`,
 * placed and handed over by the cluster runtime like a shard). Disjoint
 * ranges partition the pipelines, and the handlers work per pipeline, so no
 * event is applied twice and the nodes share the work.
 *
 * This object is what the node's API and metrics hold from the start: the
 * projections open on the shared store once the node has started (`open`),
 * the runtime starts and stops ranges on it, and the status events are
 * re-emitted on a stable emitter. Management (status, pause, resume,
 * rebuild) covers every range from the shared offset store, whichever node
 * runs it; the admin API still sends projection requests to the
 * coordinator's node (`pipeline-routing.ts`) so that a rebuild runs in one
 * place and its progress shows there.
 */
import { createInstrumentation } from '@dataflow/core';
import type { PipelineStatusView, ProjectionStatusEvent, SliceRange } from '@dataflow/projections';
import { NodeUnavailableError } from '../node/node-errors.js';
import type { NodeProjections, ProjectionInfo, SlicedNodeProjections } from '../projections/node-projections.js';

/**
 * @example
 * ```ts
 * const projections = new ClusterProjections(() => startNodeProjections({ persistence, logger, migrate: 'check', sliceRanges: ranges }));
 * const runtime = new ClusterRuntime({ redis, logger, projectionRanges: { ranges, onRange: (range, runs) => projections.onRange(range, runs) } });
 * await projections.open();
 * ```
 */
export class ClusterProjections implements NodeProjections {
  readonly events = createInstrumentation<ProjectionStatusEvent>();
  private current: SlicedNodeProjections | undefined;
  private opened = false;
  private closed = false;
  private unsubscribe: (() => void) | undefined;

  /** `start` opens the projections on the shared store, split into ranges (undefined when the store has no SQL database). */
  constructor(private readonly start: () => Promise<SlicedNodeProjections | undefined>) {}

  /** Opens the projections (once the node has started); no range runs until the runtime hands one over. */
  async open(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    const started = await this.start();
    if (started === undefined) return;
    if (this.closed) {
      await started.close();
      return;
    }
    this.current = started;
    this.unsubscribe = started.events.on('*', (event) => this.events.emit(event));
  }

  /** The ranges running in this node now. */
  runningRanges(): SliceRange[] {
    return this.current?.runningRanges() ?? [];
  }

  /**
   * The runtime took (`runs`) or is giving up a range's lease. Without read
   * models on this store (no SQL database) there is nothing to run.
   */
  async onRange(range: SliceRange, runs: boolean): Promise<void> {
    const current = this.current;
    if (current === undefined) {
      if (runs && !this.opened) throw new NodeUnavailableError('the projections are not open yet');
      return;
    }
    await (runs ? current.startRange(range) : current.stopRange(range));
  }

  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    this.current = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await current?.close();
  }

  private target(): NodeProjections {
    if (this.current === undefined) throw new NodeUnavailableError(this.opened ? 'this node has no read models (its journal has no SQL database)' : 'the projections are not open yet');
    return this.current;
  }

  list(): Promise<readonly ProjectionInfo[]> {
    return this.current === undefined ? Promise.resolve([]) : this.current.list();
  }

  get(name: string): Promise<ProjectionInfo | undefined> {
    return this.current === undefined ? Promise.resolve(undefined) : this.current.get(name);
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

  statusView(): PipelineStatusView | undefined {
    return this.current?.statusView();
  }
}
