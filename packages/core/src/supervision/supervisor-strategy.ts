/**
 * What happens to an actor whose handler throws. A supervision policy maps the
 * error to a directive (`stop`, `resume`, `restart`, `restartWithBackoff`,
 * `escalate`), either as a function or as a declarative list of rules.
 *
 * Like Pekko typed, an actor without a policy is stopped on failure.
 */
import { isDataflowError } from '../errors/dataflow-error.js';
import { validateBackoffPolicy } from './backoff.js';

/** Stop the actor; its parent gets `child-failed` and `child-terminated` signals. */
export interface StopDirective {
  readonly type: 'stop';
}

/** Keep the current state and drop the message that failed. */
export interface ResumeDirective {
  readonly type: 'resume';
}

/** Fail the parent with the same error (the child stops); the parent's own policy then applies. */
export interface EscalateDirective {
  readonly type: 'escalate';
}

/** Restart at once with a fresh initial state; stop instead once `maxRestarts` restarts happened within `withinMs`. */
export interface RestartDirective {
  readonly type: 'restart';
  readonly maxRestarts: number;
  readonly withinMs: number;
}

/** Options of {@link SupervisorStrategy.restartWithBackoff}. */
export interface BackoffOptions {
  /** Delay before the first restart. */
  readonly minBackoffMs: number;
  /** Upper bound of the exponential delay (before jitter). */
  readonly maxBackoffMs: number;
  /** Each delay is multiplied by `1 + random * randomFactor` (default 0.2). */
  readonly randomFactor?: number;
  /** At most this many restarts within `withinMs`, else the actor stops (default unlimited). */
  readonly maxRestarts?: number;
  /** The window of `maxRestarts` (default unlimited: `maxRestarts` counts all restarts since the last reset). */
  readonly withinMs?: number;
  /** After this long without a failure since the last restart, the delay starts again at `minBackoffMs` and the count at 0 (default `maxBackoffMs`). */
  readonly resetAfterMs?: number;
  /** How many messages arriving during the backoff are kept and delivered after the restart, in order; more go to dead letters (default 1000). */
  readonly stashCapacity?: number;
}

/** Restart after an exponentially growing, jittered delay; messages arriving meanwhile are stashed. */
export interface RestartWithBackoffDirective extends Required<BackoffOptions> {
  readonly type: 'restart-with-backoff';
}

/** The decision for one failure. */
export type Directive = StopDirective | ResumeDirective | EscalateDirective | RestartDirective | RestartWithBackoffDirective;

/** The `type` of a directive. */
export type DirectiveType = Directive['type'];

/**
 * One rule of a declarative policy: it applies when every condition given
 * matches (a rule without conditions matches every error).
 */
export interface SupervisionRule {
  /** The error is a DataflowError with this tag. */
  readonly tag?: string;
  /** The error's `retriable` flag (errors that are not DataflowErrors are not retriable). */
  readonly retriable?: boolean;
  /** Any other test on the error. */
  readonly when?: (error: unknown) => boolean;
  readonly then: Directive;
}

/**
 * How an actor reacts to failures: one directive for every error, a function
 * from the error to a directive, or rules tried in order (the first that
 * matches decides; none: stop).
 */
export type SupervisionPolicy = Directive | ((error: unknown) => Directive) | readonly SupervisionRule[];

const stop: StopDirective = Object.freeze({ type: 'stop' });
const resume: ResumeDirective = Object.freeze({ type: 'resume' });
const escalate: EscalateDirective = Object.freeze({ type: 'escalate' });
const restart: RestartDirective = Object.freeze({ type: 'restart', maxRestarts: Infinity, withinMs: Infinity });

/** Default capacity of the stash that holds messages during a backoff. */
export const DEFAULT_BACKOFF_STASH_CAPACITY = 1000;

/**
 * The directives, named as in Pekko's `SupervisorStrategy`.
 *
 * @example
 * ```ts
 * system.spawn(worker, 'worker', {
 *   supervise: [
 *     { retriable: true, then: SupervisorStrategy.restartWithBackoff({ minBackoffMs: 1_000, maxBackoffMs: 30_000, maxRestarts: 5, withinMs: 60_000 }) },
 *     { tag: 'pipeline/invalid-record', then: SupervisorStrategy.resume },
 *   ],
 * });
 * ```
 */
export const SupervisorStrategy = {
  stop,
  resume,
  escalate,
  restart,
  /** Restart at once, but stop when more than `maxRestarts` restarts happen within `withinMs`. */
  restartWithLimit(options: { readonly maxRestarts: number; readonly withinMs: number }): RestartDirective {
    return { type: 'restart', maxRestarts: options.maxRestarts, withinMs: options.withinMs };
  },
  /** Restart after `min(maxBackoffMs, minBackoffMs * 2^n) * (1 + random * randomFactor)`, `n` counting restarts since the last reset. */
  restartWithBackoff(options: BackoffOptions): RestartWithBackoffDirective {
    validateBackoffPolicy({ minBackoffMs: options.minBackoffMs, maxBackoffMs: options.maxBackoffMs, randomFactor: options.randomFactor ?? 0.2 });
    return {
      type: 'restart-with-backoff',
      minBackoffMs: options.minBackoffMs,
      maxBackoffMs: options.maxBackoffMs,
      randomFactor: options.randomFactor ?? 0.2,
      maxRestarts: options.maxRestarts ?? Infinity,
      withinMs: options.withinMs ?? Infinity,
      resetAfterMs: options.resetAfterMs ?? options.maxBackoffMs,
      stashCapacity: options.stashCapacity ?? DEFAULT_BACKOFF_STASH_CAPACITY,
    };
  },
} as const;

function isRuleList(policy: Directive | readonly SupervisionRule[]): policy is readonly SupervisionRule[] {
  return Array.isArray(policy);
}

function matches(rule: SupervisionRule, error: unknown): boolean {
  if (rule.tag !== undefined && !isDataflowError(error, rule.tag)) return false;
  if (rule.retriable !== undefined && (isDataflowError(error) && error.retriable) !== rule.retriable) return false;
  return rule.when === undefined || rule.when(error);
}

/**
 * The directive `policy` chooses for `error`; without a policy, `stop` (the
 * default of Pekko typed).
 *
 * @example
 * ```ts
 * decide([{ retriable: true, then: SupervisorStrategy.restart }], new Error('boom')); // { type: 'stop' }
 * ```
 */
export function decide(policy: SupervisionPolicy | undefined, error: unknown): Directive {
  if (policy === undefined) return stop;
  if (typeof policy === 'function') return policy(error);
  if (!isRuleList(policy)) return policy;
  for (const rule of policy) {
    if (matches(rule, error)) return rule.then;
  }
  return stop;
}
