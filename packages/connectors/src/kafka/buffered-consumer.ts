/**
 * What both consumer adapters share: the bounded `RecordBuffer`, `poll`,
 * the eager-rebalance bookkeeping that turns the client's "rebalance
 * started" / "group joined" signals into `onRevoked` / `onAssigned`, and
 * failures that happen outside any call (reported by the next `poll`).
 */
import { KafkaClientStateError, KafkaRebalanceListenerError } from './kafka-errors.js';
import { partitionKey, type ConsumedRecord, type KafkaAdapterName, type PollOptions, type RebalanceListener, type TopicPartition } from './kafka-port.js';
import { RecordBuffer } from './record-buffer.js';

/** Base of the adapters' consumers; see the module comment. */
export abstract class BufferedConsumer {
  protected readonly buffer: RecordBuffer;
  protected closed = false;
  #listener: RebalanceListener = {};
  #failure: Error | undefined;
  #subscribed = false;

  protected constructor(
    protected readonly adapter: KafkaAdapterName,
    maxBufferedRecords: number,
  ) {
    this.buffer = new RecordBuffer(maxBufferedRecords);
  }

  async poll(options: PollOptions): Promise<ConsumedRecord[]> {
    const deadline = Date.now() + options.maxWaitMs;
    for (;;) {
      if (this.#failure !== undefined) throw this.#failure;
      const records = this.buffer.take(options.maxRecords);
      const remaining = deadline - Date.now();
      if (records.length > 0 || remaining <= 0 || this.closed || options.signal?.aborted === true) return records;
      await this.buffer.waitForRecords(remaining, options.signal);
    }
  }

  assignment(): TopicPartition[] {
    return this.buffer.assigned();
  }

  /** Marks the consumer subscribed (once) with `listener`. */
  protected startSubscription(listener: RebalanceListener): void {
    if (this.#subscribed || this.closed) throw new KafkaClientStateError(this.adapter, 'subscribe is called once, on an open consumer');
    this.#subscribed = true;
    this.#listener = listener;
  }

  protected requireRunning(operation: string): void {
    if (!this.#subscribed || this.closed) throw new KafkaClientStateError(this.adapter, `${operation} needs a subscribed, open consumer`);
  }

  /** A rebalance started: the eager protocol takes every partition away. */
  protected rebalanceStarted(): void {
    const revoked = this.buffer.revokeAll();
    if (revoked.length > 0) this.#notify('onRevoked', revoked);
  }

  /** The group is synced with `assigned`: partitions not in it are revoked (if that was not said yet), positions start afresh. */
  protected groupJoined(assigned: readonly TopicPartition[]): void {
    const keep = new Set(assigned.map((tp) => partitionKey(tp.topic, tp.partition)));
    const revoked = this.buffer.assigned().filter((tp) => !keep.has(partitionKey(tp.topic, tp.partition)));
    if (revoked.length > 0) this.#notify('onRevoked', revoked);
    this.buffer.revokeAll();
    this.buffer.assign(assigned);
    this.#notify('onAssigned', assigned);
  }

  /** A failure outside any call of the caller (background fetch, group, throwing listener): the next `poll` throws it. */
  protected fail(error: Error): void {
    this.#failure ??= error;
    this.buffer.close();
  }

  #notify(callback: 'onAssigned' | 'onRevoked', partitions: readonly TopicPartition[]): void {
    try {
      Promise.resolve(this.#listener[callback]?.(partitions)).catch((error: unknown) => this.fail(new KafkaRebalanceListenerError(this.adapter, callback, error)));
    } catch (error) {
      this.fail(new KafkaRebalanceListenerError(this.adapter, callback, error));
    }
  }
}
