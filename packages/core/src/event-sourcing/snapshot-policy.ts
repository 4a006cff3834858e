/**
 * When an event-sourced entity snapshots its state, and what it keeps.
 *
 * A snapshot is taken after the append whose events cross the policy (a
 * multiple of `everyEvents`, or an event matching `when`) and holds the state
 * after the last event of that append, numbered with that event's sequence
 * number. After a snapshot is saved, retention keeps the newest `keep`
 * snapshots and, with `deleteEvents`, deletes the events the oldest kept
 * snapshot already covers.
 */

export interface SnapshotPolicy<Evt, State> {
  /** Snapshot when a sequence number that is a multiple of this is written. */
  readonly everyEvents?: number;
  /** Snapshot after an event for which this returns true (with the state after it). */
  when?(state: State, event: Evt, sequenceNr: number): boolean;
  /** How many snapshots to keep (default: all). */
  readonly keep?: number;
  /** Delete events covered by the oldest kept snapshot (default false: projections may still need them). */
  readonly deleteEvents?: boolean;
}

export interface SnapshotRetentionOptions<Evt, State> {
  readonly keep?: number;
  readonly deleteEvents?: boolean;
  /** Also snapshot after events for which this returns true. */
  when?(state: State, event: Evt, sequenceNr: number): boolean;
}

/**
 * Snapshot every `n` events (optionally also on a predicate), keeping the newest `keep`.
 *
 * @example
 * ```ts
 * snapshot: every(100, { keep: 2, deleteEvents: true }),
 * ```
 */
export function every<Evt = never, State = never>(
  n: number,
  options: SnapshotRetentionOptions<Evt, State> = {},
): SnapshotPolicy<Evt, State> {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`every(n): n must be a positive integer, got ${n}`);
  validateKeep(options.keep);
  return { ...options, everyEvents: n };
}

/**
 * Snapshot after each event matching `predicate`.
 *
 * @example
 * ```ts
 * snapshot: snapshotWhen((state, evt) => evt.type === 'closed', { keep: 1 }),
 * ```
 */
export function snapshotWhen<Evt, State>(
  predicate: (state: State, event: Evt, sequenceNr: number) => boolean,
  options: Omit<SnapshotRetentionOptions<Evt, State>, 'when'> = {},
): SnapshotPolicy<Evt, State> {
  validateKeep(options.keep);
  return { ...options, when: predicate };
}

function validateKeep(keep: number | undefined): void {
  if (keep !== undefined && (!Number.isInteger(keep) || keep < 1)) {
    throw new RangeError(`snapshot keep must be a positive integer, got ${keep}`);
  }
}

/**
 * Whether the append of `events` (the first numbered `firstSequenceNr`)
 * crosses `policy`. `stateAfter(i)` is the state after event `i`.
 */
export function crossesSnapshotPolicy<Evt, State>(
  policy: SnapshotPolicy<Evt, State> | undefined,
  events: readonly Evt[],
  firstSequenceNr: number,
  stateAfter: (index: number) => State,
): boolean {
  if (policy === undefined) return false;
  for (let i = 0; i < events.length; i++) {
    const sequenceNr = firstSequenceNr + i;
    if (policy.everyEvents !== undefined && sequenceNr % policy.everyEvents === 0) return true;
    if (policy.when !== undefined && policy.when(stateAfter(i), events[i] as Evt, sequenceNr)) return true;
  }
  return false;
}
