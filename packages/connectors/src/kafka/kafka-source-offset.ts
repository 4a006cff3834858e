/**
 * The `SourceOffset` the Kafka source produces (contract C2): the consumer
 * group and, per topic-partition, the offset of the next record to read as a
 * decimal string (Kafka offsets are 64-bit, JSON numbers are not).
 *
 * Positions are arrays, never objects keyed by topic, so a topic named
 * `__proto__` or `constructor` round-trips unchanged.
 *
 * @example
 * ```ts
 * const offset = encodeKafkaSourceOffset('dataflow-p1', [{ topic: 'orders', partition: 0, offset: 42n }]);
 * // { groupId: 'dataflow-p1', positions: [['orders', 0, '42']] }
 * decodeKafkaSourceOffset(offset).positions[0].offset; // 42n
 * ```
 */
import { ConnectorError, type SourceOffset } from '@dataflow/core';
import type { TopicPartitionOffset } from './kafka-port.js';

/** A decoded Kafka source offset. */
export interface KafkaSourceOffset {
  readonly groupId: string;
  readonly positions: TopicPartitionOffset[];
}

const MAX_OFFSET = (1n << 63n) - 1n;

/** Encodes the group and positions; positions are sorted by topic then partition, one per topic-partition (the last given wins). */
export function encodeKafkaSourceOffset(groupId: string, positions: readonly TopicPartitionOffset[]): SourceOffset {
  const byKey = new Map<string, TopicPartitionOffset>();
  for (const p of positions) byKey.set(`${p.partition}\u0000${p.topic}`, p);
  const sorted = [...byKey.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  return { groupId, positions: sorted.map((p) => [p.topic, p.partition, p.offset.toString()]) };
}

function invalid(what: string): ConnectorError {
  return new ConnectorError('kafka', `invalid Kafka source offset: ${what}`, { retriable: false });
}

/** Decodes a checkpointed offset; throws a non-retriable `ConnectorError` naming what is wrong. */
export function decodeKafkaSourceOffset(offset: SourceOffset): KafkaSourceOffset {
  if (offset === null || typeof offset !== 'object' || Array.isArray(offset)) throw invalid('expected an object { groupId, positions }');
  const record = offset as { readonly [key: string]: SourceOffset };
  const groupId = Object.prototype.hasOwnProperty.call(record, 'groupId') ? record['groupId'] : undefined;
  if (typeof groupId !== 'string' || groupId.length === 0) throw invalid('groupId must be a non-empty string');
  const positions = Object.prototype.hasOwnProperty.call(record, 'positions') ? record['positions'] : undefined;
  if (!Array.isArray(positions)) throw invalid('positions must be an array of [topic, partition, offset]');
  const seen = new Set<string>();
  const decoded = (positions as readonly SourceOffset[]).map((entry, i): TopicPartitionOffset => {
    if (!Array.isArray(entry) || entry.length !== 3) throw invalid(`positions[${i}] must be [topic, partition, offset]`);
    const [topic, partition, next] = entry as readonly SourceOffset[];
    if (typeof topic !== 'string' || topic.length === 0) throw invalid(`positions[${i}][0] (topic) must be a non-empty string`);
    if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0) throw invalid(`positions[${i}][1] (partition) must be a non-negative integer`);
    if (typeof next !== 'string' || !/^(0|[1-9][0-9]{0,18})$/.test(next) || BigInt(next) > MAX_OFFSET) {
      throw invalid(`positions[${i}][2] (offset) must be a non-negative decimal string of a 64-bit offset`);
    }
    const key = `${partition}\u0000${topic}`;
    if (seen.has(key)) throw invalid(`positions[${i}] repeats ${topic}-${partition}`);
    seen.add(key);
    return { topic, partition, offset: BigInt(next) };
  });
  return { groupId, positions: decoded };
}
