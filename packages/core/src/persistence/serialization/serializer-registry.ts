/**
 * Chooses the serializer for each event type, enforces the payload size limit
 * and finds the serializer a stored payload was written with. Every adapter
 * (in-memory, Postgres, PGlite, Cassandra) serializes through one of these.
 */
import { isDataflowError } from '../../errors/dataflow-error.js';
import { PayloadTooLargeError, SerializationError } from '../persistence-errors.js';
import { JsonSerializer } from './json-serializer.js';
import { formatManifest, type Manifest, type Serializer } from './serializer.js';

/** Default limit of one serialized payload: 1 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

export interface SerializerRegistryOptions {
  /** Used for every event type without its own serializer. Defaults to `JsonSerializer`. */
  readonly defaultSerializer?: Serializer;
  /** Serializers for given event types (or snapshot state types). */
  readonly byEventType?: Readonly<Record<string, Serializer>>;
  /** Serializers that are no longer chosen for writing but must still read old payloads. */
  readonly readOnly?: readonly Serializer[];
  /** Largest serialized payload accepted, in bytes; defaults to 1 MiB (`DEFAULT_MAX_PAYLOAD_BYTES`). */
  readonly maxPayloadBytes?: number;
}

/** A payload in its stored form. */
export interface SerializedPayload {
  readonly serializerId: string;
  readonly bytes: Uint8Array;
}

/**
 * Picks a serializer per event type (falling back to a default) and checks the
 * serialized size.
 *
 * @example
 * ```ts
 * const registry = new SerializerRegistry({ maxPayloadBytes: 256 * 1024 });
 * const manifest = { eventType: 'Added', schemaVersion: 1 };
 * const stored = registry.serialize({ n: 1 }, manifest); // { serializerId: 'json', bytes }
 * registry.deserialize(stored.serializerId, stored.bytes, manifest); // { n: 1 }
 * ```
 */
export class SerializerRegistry {
  readonly maxPayloadBytes: number;
  private readonly defaultSerializer: Serializer;
  private readonly byEventType: ReadonlyMap<string, Serializer>;
  private readonly byId = new Map<string, Serializer>();

  constructor(options: SerializerRegistryOptions = {}) {
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    if (!Number.isInteger(this.maxPayloadBytes) || this.maxPayloadBytes <= 0) {
      throw new RangeError(`maxPayloadBytes must be a positive integer, got ${this.maxPayloadBytes}`);
    }
    this.defaultSerializer = options.defaultSerializer ?? new JsonSerializer();
    this.byEventType = new Map(Object.entries(options.byEventType ?? {}));
    for (const serializer of [this.defaultSerializer, ...this.byEventType.values(), ...(options.readOnly ?? [])]) {
      const known = this.byId.get(serializer.id);
      if (known !== undefined && known !== serializer) {
        throw new RangeError(`Two different serializers share the id ${serializer.id}`);
      }
      this.byId.set(serializer.id, serializer);
    }
  }

  /** The serializer that writes payloads of `eventType`. */
  serializerFor(eventType: string): Serializer {
    return this.byEventType.get(eventType) ?? this.defaultSerializer;
  }

  /**
   * Serializes `payload`; fails with `SerializationError` or, when the result
   * is over `maxPayloadBytes`, with `PayloadTooLargeError`.
   */
  serialize(payload: unknown, manifest: Manifest): SerializedPayload {
    const serializer = this.serializerFor(manifest.eventType);
    let bytes: Uint8Array;
    try {
      bytes = serializer.serialize(payload, manifest);
    } catch (error) {
      if (isDataflowError(error, 'serialization/failed')) throw error;
      throw new SerializationError(formatManifest(manifest), `serializer ${serializer.id} failed`, { cause: error });
    }
    if (bytes.byteLength > this.maxPayloadBytes) {
      throw new PayloadTooLargeError(formatManifest(manifest), bytes.byteLength, this.maxPayloadBytes);
    }
    return { serializerId: serializer.id, bytes };
  }

  /** Deserializes bytes written by the serializer `serializerId`. */
  deserialize(serializerId: string, bytes: Uint8Array, manifest: Manifest): unknown {
    const serializer = this.byId.get(serializerId);
    if (serializer === undefined) {
      throw new SerializationError(formatManifest(manifest), `no serializer with id ${serializerId} is registered`);
    }
    try {
      return serializer.deserialize(bytes, manifest);
    } catch (error) {
      if (isDataflowError(error, 'serialization/failed')) throw error;
      throw new SerializationError(formatManifest(manifest), `serializer ${serializerId} failed`, { cause: error });
    }
  }
}
