/**
 * Runtime messages that travel through an actor's mailbox beside user
 * messages (internal). One `instanceof` tells them apart from user messages.
 */
import type { Signal } from './behavior.js';

export abstract class SystemEnvelope {}

/** Runs `onStart` of a new actor before its first message. */
export class StartEnvelope extends SystemEnvelope {}

export class SignalEnvelope extends SystemEnvelope {
  constructor(readonly signal: Signal) {
    super();
  }
}

export class TimerEnvelope extends SystemEnvelope {
  constructor(
    readonly key: string,
    readonly generation: number,
    readonly message: unknown,
  ) {
    super();
  }
}

/** A child escalated its failure: the parent fails with the same error. */
export class EscalationEnvelope extends SystemEnvelope {
  constructor(readonly error: unknown) {
    super();
  }
}

/**
 * The outcome of a promise piped to the actor (`ctx.pipeToSelf`): the mapping
 * to a message runs inside the actor, so a mapping that throws fails the actor
 * like a handler that throws.
 */
export class PipedEnvelope extends SystemEnvelope {
  constructor(readonly toMessage: () => unknown) {
    super();
  }
}

/** The user message inside `envelope`, if it carries one (for dead letters). */
export function userMessageOf(envelope: unknown): { readonly message: unknown } | undefined {
  if (!(envelope instanceof SystemEnvelope)) return { message: envelope };
  if (envelope instanceof TimerEnvelope) return { message: envelope.message };
  return undefined;
}
