import { describe, expect, it } from 'vitest';
import { isDataflowError } from '../../errors/dataflow-error.js';
import type { PayloadTooLargeError } from '../persistence-errors.js';
import type { Serializer } from './serializer.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, SerializerRegistry } from './serializer-registry.js';

const text: Serializer = {
  id: 'text',
  serialize: (payload) => new TextEncoder().encode(String(payload)),
  deserialize: (bytes) => new TextDecoder().decode(bytes),
};

describe('SerializerRegistry', () => {
  it('uses JSON by default and a registered serializer for its event type', () => {
    const registry = new SerializerRegistry({ byEventType: { Note: text } });
    const note = registry.serialize('hello', { eventType: 'Note', schemaVersion: 1 });
    const other = registry.serialize({ a: 1 }, { eventType: 'Other', schemaVersion: 1 });
    expect(note.serializerId).toBe('text');
    expect(other.serializerId).toBe('json');
    expect(registry.deserialize('text', note.bytes, { eventType: 'Note', schemaVersion: 1 })).toBe('hello');
    expect(registry.deserialize('json', other.bytes, { eventType: 'Other', schemaVersion: 1 })).toEqual({ a: 1 });
  });

  it('rejects payloads over the limit with PayloadTooLargeError carrying the sizes', () => {
    const registry = new SerializerRegistry({ maxPayloadBytes: 100 });
    let caught: unknown;
    try {
      registry.serialize('x'.repeat(200), { eventType: 'Big', schemaVersion: 2 });
    } catch (error) {
      caught = error;
    }
    expect(isDataflowError(caught, 'serialization/payload-too-large')).toBe(true);
    const error = caught as PayloadTooLargeError;
    expect(error.sizeBytes).toBe(202);
    expect(error.limitBytes).toBe(100);
    expect(error.manifest).toBe('Big@v2');
    expect(registry.serialize('x'.repeat(98), { eventType: 'Big', schemaVersion: 2 }).bytes.byteLength).toBe(100);
  });

  it('defaults to a 1 MiB limit', () => {
    expect(new SerializerRegistry().maxPayloadBytes).toBe(DEFAULT_MAX_PAYLOAD_BYTES);
    expect(DEFAULT_MAX_PAYLOAD_BYTES).toBe(1_048_576);
  });

  it('reads with read-only serializers and fails on unknown serializer ids', () => {
    const registry = new SerializerRegistry({ readOnly: [text] });
    const manifest = { eventType: 'Note', schemaVersion: 1 };
    expect(registry.serializerFor('Note').id).toBe('json');
    expect(registry.deserialize('text', new TextEncoder().encode('old'), manifest)).toBe('old');
    expect(() => registry.deserialize('avro', new Uint8Array(), manifest)).toThrowError(/no serializer with id avro/);
  });

  it('wraps a failing custom serializer in SerializationError with the cause', () => {
    const broken: Serializer = { id: 'broken', serialize: () => { throw new Error('boom'); }, deserialize: () => 1 };
    const registry = new SerializerRegistry({ defaultSerializer: broken });
    let caught: unknown;
    try {
      registry.serialize(1, { eventType: 'X', schemaVersion: 1 });
    } catch (error) {
      caught = error;
    }
    expect(isDataflowError(caught, 'serialization/failed')).toBe(true);
    expect((caught as Error).cause).toEqual(new Error('boom'));
  });

  it('refuses two different serializers with one id and a non-positive limit', () => {
    expect(() => new SerializerRegistry({ byEventType: { A: text, B: { ...text } } })).toThrowError(/share the id text/);
    expect(() => new SerializerRegistry({ maxPayloadBytes: 0 })).toThrowError(RangeError);
  });
});
