/**
 * Entry point of the Kafka client port: validates the options and creates the
 * client of the adapter they name.
 */
import { createKafkaJsClient } from './kafkajs/kafkajs-client.js';
import { parseKafkaClientOptions } from './kafka-options.js';
import type { KafkaClient } from './kafka-port.js';
import { createPlatformaticClient } from './platformatic/platformatic-client.js';

/**
 * Creates a Kafka client; `client` picks the adapter (`kafkajs` by default,
 * or `platformatic`). Throws `InvalidConnectorOptionsError` with field-level
 * issues when the options do not fit.
 *
 * @example
 * ```ts
 * const kafka = createKafkaClient({ client: 'platformatic', brokers: ['127.0.0.1:9092'] });
 * const producer = await kafka.producer(parseKafkaProducerOptions(kafka.adapter, { compression: 'lz4' }));
 * await producer.send([{ topic: 'orders', key: Buffer.from('o-1'), value: Buffer.from('{}') }]);
 * ```
 */
export function createKafkaClient(options: unknown): KafkaClient {
  const parsed = parseKafkaClientOptions(options);
  return parsed.client === 'platformatic' ? createPlatformaticClient(parsed) : createKafkaJsClient(parsed);
}
