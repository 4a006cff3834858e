/**
 * `@dataflow/projections/testing`: given events, then rows.
 */
export { deliveryOrder, ProjectionTestKit, testEnvelope, type DeliveryOptions } from './projection-test-kit.js';
