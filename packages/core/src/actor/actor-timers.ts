/**
 * Keyed timers of one actor (internal). A fired timer is delivered through the
 * mailbox as a `TimerEnvelope`; the actor accepts it only if the timer was
 * neither cancelled nor replaced in the meantime.
 */
import type { Cancellable, Scheduler } from '../clock/scheduler.js';
import type { TimerScheduler } from './actor-context.js';
import { TimerEnvelope } from './envelopes.js';

interface TimerEntry {
  readonly generation: number;
  readonly periodic: boolean;
  handle: Cancellable;
}

export class ActorTimers<M> implements TimerScheduler<M> {
  private readonly entries = new Map<string, TimerEntry>();
  private generation = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly deliver: (envelope: TimerEnvelope) => void,
  ) {}

  startSingle(key: string, message: M, delayMs: number): void {
    this.start(key, message, delayMs, false);
  }

  startPeriodic(key: string, message: M, intervalMs: number): void {
    if (!(intervalMs > 0)) throw new RangeError(`A periodic timer needs intervalMs > 0, got ${intervalMs}`);
    this.start(key, message, intervalMs, true);
  }

  cancel(key: string): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    entry.handle.cancel();
    this.entries.delete(key);
  }

  cancelAll(): void {
    for (const entry of this.entries.values()) entry.handle.cancel();
    this.entries.clear();
  }

  isActive(key: string): boolean {
    return this.entries.has(key);
  }

  /** Whether a delivered timer message is still wanted; a single timer is done once accepted. */
  accept(envelope: TimerEnvelope): boolean {
    const entry = this.entries.get(envelope.key);
    if (entry === undefined || entry.generation !== envelope.generation) return false;
    if (!entry.periodic) this.entries.delete(envelope.key);
    return true;
  }

  private start(key: string, message: M, delayMs: number, periodic: boolean): void {
    this.cancel(key);
    const generation = ++this.generation;
    const fire = (): void => {
      if (this.entries.get(key) !== entry) return;
      if (periodic) entry.handle = this.scheduler.schedule(delayMs, fire);
      this.deliver(new TimerEnvelope(key, generation, message));
    };
    const entry: TimerEntry = { generation, periodic, handle: { cancel: () => undefined } };
    this.entries.set(key, entry);
    entry.handle = this.scheduler.schedule(delayMs, fire);
  }
}
