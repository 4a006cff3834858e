/**
 * Foundation round trip against the real Kafka broker: create a topic,
 * produce, consume in a consumer group, commit, and see the committed offset.
 */
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const settings = serviceSettings();
const prefix = testNamespace(import.meta.url);
const kafka = new Kafka({ clientId: prefix, brokers: [...settings.kafkaBrokers], logLevel: logLevel.NOTHING });
const admin = kafka.admin();

describe('Kafka round trip', () => {
  const topic = `${prefix}.round-trip`;
  const groupId = `${prefix}-group`;

  beforeAll(async () => {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  });

  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] });
    await admin.disconnect();
  });

  it('produces, consumes in a group and commits the offsets', async () => {
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true });
    await producer.connect();
    const sent = Array.from({ length: 20 }, (_, i) => ({ key: `k${i % 4}`, value: JSON.stringify({ i }) }));
    await producer.send({ topic, acks: -1, messages: sent });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    const received: number[] = [];
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            received.push((JSON.parse(message.value?.toString() ?? 'null') as { i: number }).i);
            await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
            if (received.length === sent.length) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();

    expect([...received].sort((a, b) => a - b)).toEqual(sent.map((_, i) => i));
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
    const total = committed[0]?.partitions.reduce((sum, p) => sum + Number(p.offset), 0);
    expect(total).toBe(sent.length);
  });
});
