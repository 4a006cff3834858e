/**
 * `EventSourcedBehaviorTestKit` (after Pekko's): runs one entity of a
 * behavior on an in-memory journal (or any persistence, e.g. a
 * `PersistenceTestKit`) and tells, per command, which events were persisted,
 * the state after them and the reply. `restart()` recovers from the journal,
 * so tests can check that what was persisted is enough to rebuild the state.
 */
import type { Clock } from '../clock/clock.js';
import { systemClock } from '../clock/clock.js';
import type { Scheduler } from '../clock/scheduler.js';
import { systemScheduler } from '../clock/scheduler.js';
import { ActorTimers } from '../actor/actor-timers.js';
import { StatusReply } from '../actor/status-reply.js';
import type { ReplyTo } from '../event-sourcing/effect.js';
import type { EventSourcedBehavior } from '../event-sourcing/event-sourced.js';
import { type EntityLifecycle, EventSourcedEntity } from '../event-sourcing/event-sourced-entity.js';
import type { EventSourcingInstrumentationEvent } from '../event-sourcing/event-sourcing-events.js';
import type { EntityPersistence } from '../event-sourcing/recovery.js';
import { createInstrumentation, type Instrumentation, type InstrumentationEvent } from '../instrumentation/instrumentation.js';
import { createInMemoryPersistence } from '../persistence/in-memory/in-memory-persistence.js';

export interface EventSourcedBehaviorTestKitOptions {
  /** Entity id (default `test-entity`). */
  readonly entityId?: string;
  /** Where events go (default: a fresh in-memory persistence; `clear()` needs a factory or the default). */
  readonly persistence?: EntityPersistence | (() => EntityPersistence);
  /** Clock and scheduler for snapshots timestamps and backoff restarts (default: the real ones). Pass a `TestClock` to control backoff. */
  readonly clock?: Clock & Scheduler;
  /** Random source for backoff jitter (default `() => 0`: no jitter). */
  readonly random?: () => number;
  /** Instrumentation the entity reports to (default: a private one; see `kit.reported`). */
  readonly events?: Instrumentation<InstrumentationEvent>;
}

/** What one command did. */
export interface CommandResult<Evt, State, Reply = undefined> {
  /** Events persisted by this command, read back from the journal (so they went through serialization). */
  readonly events: readonly Evt[];
  /** The state after the command. */
  readonly state: State;
  /** The last reply sent to the command's `replyTo`, when the command was built with one (a `StatusReply` in the default reply style). */
  readonly reply: Reply | undefined;
}

/**
 * Runs commands against one entity and reports events, state and replies.
 *
 * @example
 * ```ts
 * const kit = EventSourcedBehaviorTestKit.create(counter, { entityId: '1' });
 * const { events, state } = await kit.runCommand({ type: 'add', n: 2 });
 * const { reply } = await kit.runCommand((replyTo) => ({ type: 'get', replyTo }));
 * expect((await kit.restart()).state).toEqual(state);
 * ```
 */
export class EventSourcedBehaviorTestKit<Cmd, Evt, State> {
  /** Every event-sourcing instrumentation event the entity reported, in order. */
  readonly reported: EventSourcingInstrumentationEvent[] = [];
  private entity: EventSourcedEntity<Cmd, Evt, State>;
  private persistenceValue: EntityPersistence;
  private readonly events: Instrumentation<InstrumentationEvent>;
  private readonly clock: Clock & Scheduler;
  private timers: ActorTimers<Cmd> | undefined;

  private constructor(
    private readonly behavior: EventSourcedBehavior<Cmd, Evt, State>,
    readonly entityId: string,
    private readonly options: EventSourcedBehaviorTestKitOptions,
  ) {
    this.clock = options.clock ?? { now: () => systemClock.now(), schedule: (delayMs, task) => systemScheduler.schedule(delayMs, task) };
    this.events = options.events ?? createInstrumentation();
    this.events.on('*', (event) => {
      if (event.type.startsWith('event-sourced.')) this.reported.push(event as EventSourcingInstrumentationEvent);
    });
    this.persistenceValue = this.newPersistence();
    this.entity = this.spawn();
  }

  /**
   * Creates a kit; the entity starts recovering at once.
   *
   * @example
   * ```ts
   * const kit = EventSourcedBehaviorTestKit.create(counter, { entityId: '1', clock: new TestClock() });
   * ```
   */
  static create<Cmd, Evt, State>(
    behavior: EventSourcedBehavior<Cmd, Evt, State>,
    options: EventSourcedBehaviorTestKitOptions = {},
  ): EventSourcedBehaviorTestKit<Cmd, Evt, State> {
    return new EventSourcedBehaviorTestKit(behavior, options.entityId ?? 'test-entity', options);
  }

  /** The entity's persistence id. */
  get persistenceId(): string {
    return this.entity.persistenceId;
  }

  /** The journal and snapshot store in use. */
  get persistence(): EntityPersistence {
    return this.persistenceValue;
  }

  get lifecycle(): EntityLifecycle {
    return this.entity.lifecycle;
  }

  /** Sequence number of the last persisted event. */
  get lastSequenceNr(): number {
    return this.entity.lastSequenceNr;
  }

  /** The entity's current state. */
  getState(): State {
    return this.entity.state;
  }

  /**
   * Sends a command and waits until it is handled and its events are written.
   * Fails the way a caller of the running entity sees it: with a status reply
   * address, it rejects with the error of an error reply (the same error
   * object an `askWithStatus` on `spawnEventSourced` rejects with: the
   * journal's error, the handler's, `CommandUnhandledError`, ...). Without a
   * reply address (or in the `plain` style), it rejects with the error of a
   * failed write, a concurrency conflict or a throwing handler, as reported.
   * After a retriable write failure the entity backs off on the kit's clock.
   */
  runCommand(command: Cmd): Promise<CommandResult<Evt, State>>;
  /** Builds the command with a `replyTo` that records the reply. */
  runCommand<Reply>(command: (replyTo: ReplyTo<Reply>) => Cmd): Promise<CommandResult<Evt, State, Reply>>;
  async runCommand<Reply>(command: Cmd | ((replyTo: ReplyTo<Reply>) => Cmd)): Promise<CommandResult<Evt, State, Reply>> {
    await this.entity.whenIdle();
    if (this.entity.lifecycle.status === 'backing-off') {
      throw new TypeError('The entity is backing off after a failure: advance the clock (or await the restart) before the next runCommand');
    }
    const replies: Reply[] = [];
    const cmd = typeof command === 'function' ? (command as (replyTo: ReplyTo<Reply>) => Cmd)({ tell: (r) => void replies.push(r) }) : command;
    const before = this.entity.lastSequenceNr;
    const reportedBefore = this.reported.length;
    this.entity.receive(cmd);
    await this.entity.whenIdle();
    const last: unknown = replies.at(-1);
    if (this.behavior.replies === 'status' && StatusReply.isStatusReply(last) && last.status === 'error') throw last.error;
    const failure = this.reported
      .slice(reportedBefore)
      .find((e) => e.type === 'event-sourced.persist.failed' || e.type === 'event-sourced.concurrency-conflict' || e.type === 'event-sourced.command.failed');
    if (failure !== undefined && replies.length === 0) throw failure.error;
    const events = await this.readEvents(before + 1, this.entity.lastSequenceNr);
    return { events, state: this.entity.state, reply: replies.at(-1) };
  }

  /** Stops the entity and starts a new incarnation that recovers from the journal and snapshots. */
  async restart(): Promise<{ readonly state: State; readonly lifecycle: EntityLifecycle }> {
    this.entity.stop();
    this.entity = this.spawn();
    await this.entity.whenIdle();
    return { state: this.entity.state, lifecycle: this.entity.lifecycle };
  }

  /** Forgets all history (a fresh persistence) and restarts with the empty state. */
  async clear(): Promise<void> {
    if (this.options.persistence !== undefined && typeof this.options.persistence !== 'function') {
      throw new TypeError('clear() needs the `persistence` option to be a factory (or left out)');
    }
    this.entity.stop();
    this.persistenceValue = this.newPersistence();
    this.entity = this.spawn();
    await this.entity.whenIdle();
  }

  /** Clears, seeds the journal with `events` (as if persisted before) and recovers from them. */
  async initialize(events: readonly Evt[]): Promise<{ readonly state: State }> {
    await this.clear();
    if (events.length > 0) {
      await this.persistenceValue.journal.append(
        this.persistenceId,
        events.map((event) => {
          const eventType = this.behavior.eventTypeOf(event);
          return { payload: event, eventType, schemaVersion: this.behavior.schemaVersionOf(eventType), tags: this.behavior.tagsOf(event) };
        }),
        { expectedSequenceNr: 0, writerId: 'test-kit-initialize' },
      );
    }
    const { state } = await this.restart();
    return { state };
  }

  /** Waits until nothing is in flight (recovery, a write, snapshot housekeeping). */
  whenIdle(): Promise<void> {
    return this.entity.whenIdle();
  }

  /** Sends a command without waiting (to fill the stash while a write is in flight). */
  tell(command: Cmd): void {
    this.entity.receive(command);
  }

  private async readEvents(from: number, to: number): Promise<Evt[]> {
    const events: Evt[] = [];
    if (to < from) return events;
    for await (const stored of this.persistenceValue.journal.replay(this.persistenceId, from, to)) {
      events.push(this.behavior.upcast(stored.eventType, stored.schemaVersion, stored.payload));
    }
    return events;
  }

  private newPersistence(): EntityPersistence {
    const { persistence } = this.options;
    if (persistence === undefined) return createInMemoryPersistence({ now: () => this.clock.now() });
    return typeof persistence === 'function' ? persistence() : persistence;
  }

  /**
   * A new entity; its `ctx.self` and `ctx.timers` deliver to it (timers on
   * the kit's clock, cancelled when it is replaced). `ctx.spawn` needs an
   * actor system: use `spawnEventSourced` with an `ActorTestKit` for that.
   */
  private spawn(): EventSourcedEntity<Cmd, Evt, State> {
    this.timers?.cancelAll();
    const timers = new ActorTimers<Cmd>(this.clock, (envelope) => {
      if (timers.accept(envelope)) entity.receive(envelope.message as Cmd);
    });
    this.timers = timers;
    const entity: EventSourcedEntity<Cmd, Evt, State> = new EventSourcedEntity(
      this.behavior,
      this.entityId,
      this.persistenceValue,
      {
        scheduler: this.clock,
        clock: this.clock,
        events: this.events,
        random: this.options.random ?? (() => 0),
      },
      { self: { path: `/test-kit/${this.behavior.persistenceId(this.entityId)}`, tell: (command) => entity.receive(command) }, timers },
    );
    entity.start();
    return entity;
  }
}
