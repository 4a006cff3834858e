/**
 * Helpers of the persistence contract suite (journal-contract.ts and the
 * case files it registers): unique ids, event builders, stream collection
 * with timeouts, and ordering checks.
 */
import { randomUUID } from 'node:crypto';
import { isWriterLeaseHeld, type EventEnvelope, type NewEvent, type Offset, type PersistedEvent, type PersistencePlugin } from '@dataflow/core';
import { expect } from 'vitest';
import type { ContractInstance } from './journal-contract.js';

export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 13)}`;
}

export function event(eventType: string, payload: unknown, tags: readonly string[] = []): NewEvent {
  return { eventType, payload, tags };
}

export async function appendN(plugin: PersistencePlugin, pid: string, count: number, after = 0): Promise<void> {
  const events = Array.from({ length: count }, (_, i) => event('E', { n: after + i + 1 }));
  await plugin.journal.append(pid, events, { expectedSequenceNr: after, writerId: 'w' });
}

export async function collectAll<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Reads `count` items, then aborts the stream; fails if they do not arrive within `timeoutMs`. */
export async function collect<T>(iterable: AsyncIterable<T>, count: number, timeoutMs: number, controller: AbortController): Promise<T[]> {
  const out: T[] = [];
  return collectUntil(iterable, () => out.length >= count, timeoutMs, controller, out);
}

export async function collectUntil<T>(iterable: AsyncIterable<T>, done: (item: T) => boolean, timeoutMs: number, controller: AbortController, out: T[] = []): Promise<T[]> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    for await (const item of iterable) {
      out.push(item);
      if (done(item)) break;
    }
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  if (timedOut) throw new Error(`live stream delivered only ${out.length} items within ${timeoutMs} ms`);
  return out;
}

export async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the operation to fail, but it succeeded');
}

export function key(e: PersistedEvent): string {
  return `${e.persistenceId}#${e.sequenceNr}`;
}

export function offsetAt(events: readonly EventEnvelope[], index: number): Offset {
  const e = events[index];
  if (e === undefined) throw new Error(`no event at ${index}`);
  return e.offset;
}

export function groupByPid<T extends PersistedEvent>(events: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const e of events) groups.set(e.persistenceId, [...(groups.get(e.persistenceId) ?? []), e]);
  return groups;
}

/** No duplicates, the expected count, and per persistence id strictly consecutive sequence numbers. */
export function expectOrderedPerPid(events: readonly PersistedEvent[], count: number): void {
  expect(new Set(events.map(key)).size).toBe(events.length);
  expect(events).toHaveLength(count);
  for (const own of groupByPid(events).values()) {
    const first = own[0]?.sequenceNr ?? 1;
    expect(own.map((e) => e.sequenceNr)).toEqual(range(first, own.length));
  }
}

export function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

export function randomText(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ';
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[(i * 7919 + (i >> 3)) % alphabet.length];
  return out;
}

export function sleep(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}

/** What the case files get from `describeJournalContract`. */
export interface ContractContext {
  /** The fixture's plugin (set up once per suite). */
  readonly store: () => PersistencePlugin;
  /** Another instance on the same storage (see `ContractFixture.openInstance`). */
  readonly openInstance: () => Promise<ContractInstance>;
  /** Waits out the store's eventual-consistency delay before a current query. */
  readonly settle: () => Promise<void>;
  readonly maxPayloadBytes: number;
  readonly liveTimeoutMs: number;
  readonly timeout: number;
}

/** Appends one event per call on top of whatever `pid` holds, retrying while another writer's lease is held; returns the sequence number. */
export async function appendAtHead(plugin: PersistencePlugin, pid: string, payload: unknown, writerId: string, deadlineMs: number): Promise<number> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const highest = await plugin.journal.highestSequenceNr(pid);
    try {
      await plugin.journal.append(pid, [event('Head', payload)], { expectedSequenceNr: highest, writerId });
      return highest + 1;
    } catch (error) {
      if (!isWriterLeaseHeld(error) || Date.now() > deadline) throw error;
      await sleep(250);
    }
  }
}
