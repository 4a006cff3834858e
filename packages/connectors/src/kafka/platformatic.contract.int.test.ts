/**
 * The Kafka client contract against the real broker with the @platformatic/kafka adapter.
 */
import { serviceSettings, testNamespace } from '@dataflow/test-env';
import { createKafkaClient } from './kafka-client.js';
import { describeKafkaClientContract } from './testing/kafka-client-contract.js';

const brokers = [...serviceSettings().kafkaBrokers];

describeKafkaClientContract('platformatic', () => createKafkaClient({ client: 'platformatic', brokers, clientId: 'contract-platformatic' }), {
  namespace: testNamespace(import.meta.url),
});
