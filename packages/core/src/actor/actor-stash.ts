/**
 * The bounded stash of one actor (internal).
 */
import type { StashBuffer } from './actor-context.js';
import { StashOverflowError } from './actor-errors.js';

export class ActorStash<M> implements StashBuffer<M> {
  private items: M[] = [];
  /** Set by `unstashAll()`, consumed by the actor after the current handler. */
  unstashRequested = false;

  constructor(
    private readonly path: string,
    readonly capacity: number,
  ) {}

  get size(): number {
    return this.items.length;
  }

  stash(message: M): void {
    if (this.items.length >= this.capacity) throw new StashOverflowError(this.path, this.capacity);
    this.items.push(message);
  }

  unstashAll(): void {
    this.unstashRequested = true;
  }

  /** Empties the buffer and returns what it held, oldest first. */
  takeAll(): M[] {
    const items = this.items;
    this.items = [];
    this.unstashRequested = false;
    return items;
  }
}
