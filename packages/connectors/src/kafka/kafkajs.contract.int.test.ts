/**
 * The Kafka client contract against the real broker with the kafkajs adapter.
 */
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { createKafkaClient } from './kafka-client.js';
import { describeKafkaClientContract } from './testing/kafka-client-contract.js';

const brokers = [...serviceSettings().kafkaBrokers];

describeKafkaClientContract('kafkajs', () => createKafkaClient({ client: 'kafkajs', brokers, clientId: 'contract-kafkajs' }), {
  namespace: testNamespace(import.meta.url),
});
