/**
 * How one event is laid out in `messages` and `tag_views`: the manifest
 * format, number conversions from the driver's `Long`, the time-ordered ids
 * and partition arithmetic shared by the journal and the read journal.
 */
import { randomBytes } from 'node:crypto';
import { types } from 'cassandra-driver';
import { formatManifest, JournalReadError, type PersistedEvent, type SerializerRegistry } from '@dataflow/core';
import type { Row } from './cassandra-session.js';
import { userTags } from './slice-tags.js';

/** `messages` partition of an append whose last sequence number is `sequenceNr`. */
export function partitionOf(sequenceNr: number, targetPartitionSize: number): number {
  return Math.floor((sequenceNr - 1) / targetPartitionSize);
}

/** `tag_views` time bucket of an epoch-millisecond time. */
export function bucketOf(epochMs: number, timeBucketMs: number): number {
  return Math.floor(epochMs / timeBucketMs);
}

export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (value instanceof types.Long) return value.toNumber();
  if (value === null || value === undefined) return 0;
  throw new TypeError(`Expected a number column, got ${typeof value}`);
}

export function toOptionalNumber(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : toNumber(value);
}

export function toNumberMap(value: unknown): Map<string, number> {
  const map = new Map<string, number>();
  if (value === null || value === undefined) return map;
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) map.set(key, toNumber(v));
  return map;
}

const parsedManifests = new Map<string, { eventType: string; schemaVersion: number }>();

/** Parses `Type@vN` (written by `formatManifest`); remembers the few distinct manifests it sees. */
export function parseManifest(manifest: string): { eventType: string; schemaVersion: number } {
  let parsed = parsedManifests.get(manifest);
  if (parsed === undefined) {
    parsed = parseManifestText(manifest);
    if (parsedManifests.size < 10_000) parsedManifests.set(manifest, parsed);
  }
  return parsed;
}

function parseManifestText(manifest: string): { eventType: string; schemaVersion: number } {
  const at = manifest.lastIndexOf('@v');
  const version = at < 0 ? Number.NaN : Number(manifest.slice(at + 2));
  if (!Number.isInteger(version)) {
    throw new JournalReadError(`Stored event manifest "${manifest}" is not of the form Type@vN`, { retriable: false });
  }
  return { eventType: manifest.slice(0, at), schemaVersion: version };
}

export { formatManifest };

/**
 * Makes time-ordered UUIDs from an injected clock, strictly increasing within
 * one process (ticks count events within one millisecond).
 *
 * The node and clock-sequence parts are drawn at random once per source
 * (version 1 UUIDs of a random node, as RFC 4122 section 4.5 allows), not per
 * UUID: the driver's `TimeUuid.fromDate` without them calls
 * `crypto.randomBytes` twice for every UUID, which was a tenth of the Node CPU
 * of an entity write benchmark. Within a source, (time, ticks) never repeats;
 * two sources (processes, journal instances) differ in their random parts.
 */
export class TimeUuidSource {
  private lastMs = -1;
  private ticks = 0;
  private readonly nodeId = randomBytes(6);
  private readonly clockId = randomBytes(2);

  constructor(private readonly now: () => number) {}

  next(): types.TimeUuid {
    return this.stamp().uuid;
  }

  /** The next UUID with the epoch milliseconds it carries (saves parsing them back out). */
  stamp(): { readonly uuid: types.TimeUuid; readonly ms: number } {
    let ms = this.now();
    if (ms <= this.lastMs) {
      ms = this.lastMs;
      this.ticks++;
      if (this.ticks >= 10_000) {
        // 10 000 ids in one millisecond: borrow the next millisecond.
        ms = this.lastMs + 1;
        this.ticks = 0;
      }
    } else {
      this.ticks = 0;
    }
    this.lastMs = ms;
    return { uuid: types.TimeUuid.fromDate(new Date(ms), this.ticks, this.nodeId, this.clockId), ms };
  }
}

/** The event columns common to `messages` and `tag_views`, read back into a `PersistedEvent`. */
export function rowToEvent(row: Row, serializers: SerializerRegistry, timestamp: number): PersistedEvent {
  const persistenceId = row['persistence_id'] as string;
  const manifest = parseManifest(row['event_manifest'] as string);
  const bytes = row['event'] as Buffer;
  const payload = serializers.deserialize(row['ser_id'] as string, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), manifest);
  return {
    persistenceId,
    sequenceNr: toNumber(row['sequence_nr']),
    payload,
    eventType: manifest.eventType,
    schemaVersion: manifest.schemaVersion,
    // The implicit slice tag is the store's own: events carry the tags they were appended with.
    tags: userTags((row['tags'] as string[] | null) ?? []),
    timestamp,
    writerId: row['writer_uuid'] as string,
  };
}

/** Epoch milliseconds of a timeuuid column. */
export function timeOf(value: unknown): number {
  return (value as types.TimeUuid).getDate().getTime();
}
