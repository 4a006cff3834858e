/**
 * The bounded fetch buffer both consumer adapters share: records fetched but
 * not yet polled, per partition, with the partition's delivery position, its
 * pause state and a seek epoch that lets an adapter discard the results of a
 * fetch that was in flight when the partition was sought, paused or revoked.
 *
 * Pausing drops the partition's buffered records (and rewinds its fetch
 * position to the next record to deliver), so a paused partition never holds
 * buffer space that the other partitions need.
 */
import { partitionKey, type ConsumedRecord, type TopicPartition } from './kafka-port.js';

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  queue: ConsumedRecord[];
  head: number;
  paused: boolean;
  /** Next offset `poll` hands out; undefined until the first record is seen or a seek. */
  position: bigint | undefined;
  /** Next offset the fetcher should ask for; undefined = wherever the client starts (committed or reset). */
  fetchPosition: bigint | undefined;
  /** Bumped by seek, pause and assignment: fetches issued under an older epoch are discarded. */
  epoch: number;
}

type Waiter = () => void;

/** Per-partition bounded buffer; see the module comment. */
export class RecordBuffer {
  readonly #partitions = new Map<string, PartitionState>();
  readonly #capacity: number;
  #size = 0;
  #cursor = 0;
  #recordWaiters: Waiter[] = [];
  #spaceWaiters: Waiter[] = [];
  #closed = false;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Records buffered over all partitions. */
  get size(): number {
    return this.#size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Replaces the assignment: state of partitions no longer assigned is dropped, new ones start unknown. */
  assign(partitions: readonly TopicPartition[]): void {
    const keep = new Set(partitions.map((tp) => partitionKey(tp.topic, tp.partition)));
    for (const [key, state] of this.#partitions) {
      if (!keep.has(key)) this.#drop(key, state);
    }
    for (const tp of partitions) {
      const key = partitionKey(tp.topic, tp.partition);
      if (!this.#partitions.has(key)) {
        this.#partitions.set(key, { topic: tp.topic, partition: tp.partition, queue: [], head: 0, paused: false, position: undefined, fetchPosition: undefined, epoch: 0 });
      }
    }
    this.#wakeSpace();
  }

  /** Forgets every partition (a rebalance started). */
  revokeAll(): TopicPartition[] {
    const revoked = this.assigned();
    this.assign([]);
    return revoked;
  }

  assigned(): TopicPartition[] {
    return [...this.#partitions.values()].map((s) => ({ topic: s.topic, partition: s.partition }));
  }

  isAssigned(topic: string, partition: number): boolean {
    return this.#partitions.has(partitionKey(topic, partition));
  }

  /** Partitions to fetch: assigned and not paused, with their fetch position and epoch. */
  fetchable(): { topic: string; partition: number; fetchPosition: bigint | undefined; epoch: number }[] {
    const result: { topic: string; partition: number; fetchPosition: bigint | undefined; epoch: number }[] = [];
    for (const s of this.#partitions.values()) {
      if (!s.paused) result.push({ topic: s.topic, partition: s.partition, fetchPosition: s.fetchPosition, epoch: s.epoch });
    }
    return result;
  }

  /** Whether records fetched under `epoch` may still be offered for the partition. */
  accepts(topic: string, partition: number, epoch?: number): boolean {
    const s = this.#partitions.get(partitionKey(topic, partition));
    return s !== undefined && !s.paused && (epoch === undefined || epoch === s.epoch);
  }

  /** Current epoch of an assigned partition (undefined when not assigned). */
  epochOf(topic: string, partition: number): number | undefined {
    return this.#partitions.get(partitionKey(topic, partition))?.epoch;
  }

  /**
   * Adds one fetched record. Returns false (and keeps nothing) when the
   * partition is not assigned, paused or was sought since `epoch`; a record
   * below the fetch position (a re-fetched duplicate) is skipped but counts as
   * accepted. Callers wait for `hasSpace` first.
   */
  offer(record: ConsumedRecord, epoch?: number): boolean {
    const s = this.#partitions.get(partitionKey(record.topic, record.partition));
    if (s === undefined || s.paused || (epoch !== undefined && epoch !== s.epoch)) return false;
    if (s.fetchPosition !== undefined && record.offset < s.fetchPosition) return true;
    s.queue.push(record);
    s.fetchPosition = record.offset + 1n;
    s.position ??= record.offset;
    this.#size += 1;
    this.#wakeRecords();
    return true;
  }

  /** Moves the fetch position past records the client skipped (control records, aborted transactions). */
  advanceFetchPosition(topic: string, partition: number, next: bigint, epoch?: number): void {
    const s = this.#partitions.get(partitionKey(topic, partition));
    if (s === undefined || s.paused || (epoch !== undefined && epoch !== s.epoch)) return;
    if (s.fetchPosition === undefined || next > s.fetchPosition) s.fetchPosition = next;
  }

  /** Sets the fetch (and delivery) position of a partition whose start the client resolved (committed offset or reset). */
  initPosition(topic: string, partition: number, offset: bigint): void {
    const s = this.#partitions.get(partitionKey(topic, partition));
    if (s === undefined || s.fetchPosition !== undefined) return;
    s.fetchPosition = offset;
    s.position ??= offset;
  }

  hasSpace(): boolean {
    return this.#size < this.#capacity;
  }

  /** Resolves when there is space, the buffer closes, or after `timeoutMs` (so a waiting fetcher can heartbeat). */
  waitForSpace(timeoutMs: number): Promise<void> {
    if (this.hasSpace() || this.#closed) return Promise.resolve();
    return this.#wait(this.#spaceWaiters, timeoutMs);
  }

  /** Takes up to `max` records of unpaused partitions, rotating the starting partition for fairness. */
  take(max: number): ConsumedRecord[] {
    const out: ConsumedRecord[] = [];
    const states = [...this.#partitions.values()];
    if (states.length === 0) return out;
    const start = this.#cursor % states.length;
    this.#cursor = start + 1;
    for (let i = 0; i < states.length && out.length < max; i++) {
      const s = states[(start + i) % states.length];
      if (s === undefined || s.paused) continue;
      while (s.head < s.queue.length && out.length < max) {
        const record = s.queue[s.head] as ConsumedRecord;
        s.head += 1;
        out.push(record);
        s.position = record.offset + 1n;
      }
      if (s.head === s.queue.length) {
        s.queue = [];
        s.head = 0;
      } else if (s.head > 1024 && s.head * 2 > s.queue.length) {
        s.queue = s.queue.slice(s.head);
        s.head = 0;
      }
    }
    this.#size -= out.length;
    if (out.length > 0) this.#wakeSpace();
    return out;
  }

  /** Resolves when records of an unpaused partition are buffered, on close, or after `timeoutMs`. */
  waitForRecords(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#deliverable() || this.#closed || timeoutMs <= 0 || signal?.aborted === true) return Promise.resolve();
    return this.#wait(this.#recordWaiters, timeoutMs, signal);
  }

  /**
   * Pauses partitions: drops their buffered records and rewinds the fetch
   * position to the next record to deliver (where `resume` continues).
   */
  pause(partitions: readonly TopicPartition[]): void {
    for (const tp of partitions) {
      const s = this.#partitions.get(partitionKey(tp.topic, tp.partition));
      if (s === undefined || s.paused) continue;
      s.paused = true;
      this.#clearQueue(s);
      s.fetchPosition = s.position;
      s.epoch += 1;
    }
    this.#wakeSpace();
  }

  /** Resumes partitions; returns those with a known position (where the client must continue). */
  resume(partitions: readonly TopicPartition[]): { topic: string; partition: number; offset: bigint | undefined }[] {
    const resumed: { topic: string; partition: number; offset: bigint | undefined }[] = [];
    for (const tp of partitions) {
      const s = this.#partitions.get(partitionKey(tp.topic, tp.partition));
      if (s === undefined || !s.paused) continue;
      s.paused = false;
      s.epoch += 1;
      resumed.push({ topic: s.topic, partition: s.partition, offset: s.position });
    }
    this.#wakeRecords();
    return resumed;
  }

  isPaused(topic: string, partition: number): boolean {
    return this.#partitions.get(partitionKey(topic, partition))?.paused === true;
  }

  /** Makes `offset` the next delivered record: drops buffered records, bumps the epoch. Returns false when not assigned. */
  seek(topic: string, partition: number, offset: bigint): boolean {
    const s = this.#partitions.get(partitionKey(topic, partition));
    if (s === undefined) return false;
    this.#clearQueue(s);
    s.position = offset;
    s.fetchPosition = offset;
    s.epoch += 1;
    this.#wakeSpace();
    return true;
  }

  /** Ends every wait; later waits resolve at once. */
  close(): void {
    this.#closed = true;
    this.#wakeRecords();
    this.#wakeSpace();
  }

  #deliverable(): boolean {
    for (const s of this.#partitions.values()) {
      if (!s.paused && s.head < s.queue.length) return true;
    }
    return false;
  }

  #drop(key: string, state: PartitionState): void {
    this.#clearQueue(state);
    this.#partitions.delete(key);
  }

  #clearQueue(s: PartitionState): void {
    this.#size -= s.queue.length - s.head;
    s.queue = [];
    s.head = 0;
  }

  #wait(list: Waiter[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        const i = list.indexOf(done);
        if (i >= 0) list.splice(i, 1);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      list.push(done);
    });
  }

  #wakeRecords(): void {
    const waiters = this.#recordWaiters;
    this.#recordWaiters = [];
    for (const w of waiters) w();
  }

  #wakeSpace(): void {
    if (!this.hasSpace() && !this.#closed) return;
    const waiters = this.#spaceWaiters;
    this.#spaceWaiters = [];
    for (const w of waiters) w();
  }
}
