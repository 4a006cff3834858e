/**
 * `@dataflow/core/testing`: test kits for actors and event-sourced behaviors.
 */
export { TestClock, type TestClockOptions } from './test-clock.js';
export { createTestProbe, TestProbeExpectationError, type MessageExpectation, type TestProbe } from './test-probe.js';
export { createActorTestKit, type ActorTestKit, type ActorTestKitOptions } from './actor-test-kit.js';
export { EventSourcedBehaviorTestKit, type CommandResult, type EventSourcedBehaviorTestKitOptions } from './event-sourced-behavior-test-kit.js';
export { PersistenceTestKit, type RecordedWrite } from './persistence-test-kit.js';
export { BehaviorSpec, type BehaviorOutcome } from './behavior-spec.js';
export { generateNodeExporterText, type GeneratedPage } from '../transforms/prometheus/node-exporter-fixture.js';
