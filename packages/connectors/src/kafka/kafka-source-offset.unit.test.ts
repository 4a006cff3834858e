import { ConnectorError } from '@dataflow/core';
import { describe, expect, it } from 'vitest';
import { decodeKafkaSourceOffset, encodeKafkaSourceOffset } from './kafka-source-offset.js';

describe('Kafka source offset (C2)', () => {
  it('encodes positions as sorted [topic, partition, decimal string] arrays and decodes them back', () => {
    const encoded = encodeKafkaSourceOffset('dataflow-p1', [
      { topic: 'b', partition: 1, offset: 9_007_199_254_740_993n },
      { topic: 'a', partition: 2, offset: 0n },
      { topic: 'a', partition: 0, offset: 5n },
    ]);
    expect(encoded).toEqual({ groupId: 'dataflow-p1', positions: [['a', 0, '5'], ['a', 2, '0'], ['b', 1, '9007199254740993']] });
    expect(JSON.parse(JSON.stringify(encoded))).toEqual(encoded);
    expect(decodeKafkaSourceOffset(encoded)).toEqual({
      groupId: 'dataflow-p1',
      positions: [
        { topic: 'a', partition: 0, offset: 5n },
        { topic: 'a', partition: 2, offset: 0n },
        { topic: 'b', partition: 1, offset: 9_007_199_254_740_993n },
      ],
    });
  });

  it('round-trips topics named __proto__ and constructor', () => {
    const encoded = encodeKafkaSourceOffset('g', [{ topic: '__proto__', partition: 0, offset: 1n }, { topic: 'constructor', partition: 0, offset: 2n }]);
    const back = JSON.parse(JSON.stringify(encoded)) as typeof encoded;
    expect(decodeKafkaSourceOffset(back).positions.map((p) => [p.topic, p.offset])).toEqual([['__proto__', 1n], ['constructor', 2n]]);
  });

  it('keeps one position per topic-partition (the last given)', () => {
    expect(encodeKafkaSourceOffset('g', [{ topic: 't', partition: 0, offset: 1n }, { topic: 't', partition: 0, offset: 7n }])).toEqual({ groupId: 'g', positions: [['t', 0, '7']] });
  });

  it.each([
    [null, 'expected an object'],
    [[], 'expected an object'],
    [{ positions: [] }, 'groupId'],
    [{ groupId: 'g' }, 'positions must be an array'],
    [{ groupId: 'g', positions: [['t', 0]] }, 'positions[0] must be'],
    [{ groupId: 'g', positions: [['', 0, '1']] }, 'positions[0][0] (topic)'],
    [{ groupId: 'g', positions: [['t', -1, '1']] }, 'positions[0][1] (partition)'],
    [{ groupId: 'g', positions: [['t', 0, 1]] }, 'positions[0][2] (offset)'],
    [{ groupId: 'g', positions: [['t', 0, '-1']] }, 'positions[0][2] (offset)'],
    [{ groupId: 'g', positions: [['t', 0, '9223372036854775808']] }, 'positions[0][2] (offset)'],
    [{ groupId: 'g', positions: [['t', 0, '1'], ['t', 0, '2']] }, 'positions[1] repeats t-0'],
  ])('rejects %j with a non-retriable error naming the problem', (offset, message) => {
    let error: unknown;
    try {
      decodeKafkaSourceOffset(offset);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConnectorError);
    expect((error as ConnectorError).retriable).toBe(false);
    expect((error as ConnectorError).message).toContain(message);
  });
});
