/**
 * The parent side of the crash tests: runs `pipeline-crash-child.test.ts` as a
 * child process, kills it with SIGKILL according to a plan (at a seeded random
 * moment, or exactly between a sink write and the checkpoint that would cover
 * it), restarts it, and runs it to the end. Each test then checks its own
 * output (files, rows, a topic) against what the input should give.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./pipeline-crash-child.test.ts', import.meta.url));
const tsx = createRequire(import.meta.url).resolve('tsx');

/** A line the child reports (see `pipeline-crash-child.test.ts`). */
export type ChildMessage =
  | { readonly type: 'recovered'; readonly status: string; readonly records: number; readonly checkpoint: CrashCheckpoint | null }
  | { readonly type: 'progress'; readonly records: number }
  | { readonly type: 'hung'; readonly position: unknown }
  | { readonly type: 'done'; readonly records: number; readonly checkpoint: CrashCheckpoint | null }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'batch-failed'; readonly error: string };

/** The parts of a pipeline checkpoint the tests look at. */
export interface CrashCheckpoint {
  readonly sourceOffset?: unknown;
  readonly sinkPosition?: unknown;
}

export interface ChildOutcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly messages: readonly ChildMessage[];
  readonly stderr: string;
}

/** What the child needs: the journal, the pipeline and its definition (see the child's header). */
export interface CrashChildSettings {
  readonly postgresUrl: string;
  readonly schema: string;
  readonly pipelineId: string;
  readonly definition: Record<string, unknown>;
  /** For sources that never end: stop the pipeline once this many records are checkpointed. */
  readonly stopAtRecords?: number;
  /** For a Kafka source whose sink commits its offsets: stop once the checkpointed positions add up to this. */
  readonly stopAtKafkaOffsets?: number;
}

export type KillStep = { readonly kind: 'random'; readonly atRecords: number; readonly delayMs: number } | { readonly kind: 'after-write'; readonly writes: number };

export interface KillRecord<T> {
  readonly kind: KillStep['kind'];
  /** Records checkpointed by the killed incarnation when it was killed. */
  readonly processedAtKill: number;
  /** Checkpoints the killed incarnation completed itself. */
  readonly progressed: number;
  /** What `measure` saw right after the kill. */
  readonly measured: T;
}

/** Small seeded generator (mulberry32): the same kill moments on every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function childEnv(settings: CrashChildSettings, extra: Record<string, string>): Record<string, string> {
  return {
    CRASH_POSTGRES_URL: settings.postgresUrl,
    CRASH_SCHEMA: settings.schema,
    CRASH_PIPELINE_ID: settings.pipelineId,
    CRASH_DEFINITION: JSON.stringify(settings.definition),
    ...(settings.stopAtRecords === undefined ? {} : { CRASH_STOP_AT_RECORDS: String(settings.stopAtRecords) }),
    ...(settings.stopAtKafkaOffsets === undefined ? {} : { CRASH_STOP_AT_KAFKA_OFFSETS: String(settings.stopAtKafkaOffsets) }),
    ...extra,
  };
}

/** Runs the child once; `onMessage` sees every line it reports and may kill it. Resolves when the process has ended. */
export function runCrashChild(
  settings: CrashChildSettings,
  onMessage: (message: ChildMessage, kill: () => void) => void,
  extraEnv: Record<string, string> = {},
): Promise<ChildOutcome> {
  const proc = spawn(process.execPath, ['--conditions=@dataflow/source', '--import', tsx, child], {
    env: { ...process.env, ...childEnv(settings, extraEnv) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const messages: ChildMessage[] = [];
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const kill = () => proc.kill('SIGKILL');
  createInterface({ input: proc.stdout }).on('line', (line) => {
    let message: ChildMessage;
    try {
      message = JSON.parse(line) as ChildMessage;
    } catch {
      stderr += `[stdout, not JSON] ${line}\n`;
      return;
    }
    messages.push(message);
    onMessage(message, kill);
  });
  return new Promise((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code, signal) => resolve({ code, signal, messages, stderr }));
  });
}

/** Describes an outcome for an assertion message: exit, last lines, stderr tail. */
export function describeOutcome(outcome: ChildOutcome): string {
  return `code ${outcome.code}, signal ${outcome.signal}: ${JSON.stringify(outcome.messages.slice(-3))} ${outcome.stderr.slice(-2000)}`;
}

/**
 * Runs the child once per step of `plan`, killing it as the step says, then
 * once more to the end. Throws when a killed incarnation ended by itself or
 * the last one did not finish cleanly. `measure` runs right after each kill
 * (count rows, read files...).
 */
export async function runKillPlan<T>(
  settings: CrashChildSettings,
  plan: readonly KillStep[],
  measure: () => Promise<T>,
): Promise<{ runs: ChildOutcome[]; kills: KillRecord<T>[] }> {
  const runs: ChildOutcome[] = [];
  const kills: KillRecord<T>[] = [];
  for (const step of plan) {
    let armed = false;
    let progressed = 0;
    let processed = 0;
    let hung = false;
    const outcome = await runCrashChild(
      settings,
      (message, kill) => {
        if (message.type === 'progress') {
          progressed++;
          processed = message.records;
        }
        if (step.kind === 'after-write') {
          // The hung write's checkpoint never comes; the checkpoints of earlier writes may still be on their way
          // (pipelined writes run ahead of a slow journal): the kill waits for two of its run's own (at most 10 s),
          // so it lands mid-run, still between a sink write and the checkpoint that would cover it.
          if (message.type === 'hung') {
            hung = true;
            setTimeout(kill, 10_000).unref();
          }
          if (hung && progressed > 1) kill();
          return;
        }
        if (!armed && message.type === 'progress' && message.records >= step.atRecords) {
          armed = true;
          setTimeout(kill, step.delayMs);
        }
      },
      step.kind === 'after-write' ? { CRASH_HANG_AFTER_WRITES: String(step.writes) } : {},
    );
    runs.push(outcome);
    if (outcome.signal !== 'SIGKILL') throw new Error(`${step.kind} kill: the process ended by itself (${describeOutcome(outcome)})`);
    kills.push({ kind: step.kind, processedAtKill: processed, progressed, measured: await measure() });
  }
  const final = await runCrashChild(settings, () => undefined);
  runs.push(final);
  if (final.code !== 0) throw new Error(`the last run failed (${describeOutcome(final)})`);
  return { runs, kills };
}

/** The `recovered` line of a run: what the journal held when it started. */
export function recoveredOf(run: ChildOutcome): Extract<ChildMessage, { type: 'recovered' }> | undefined {
  return run.messages.find((m): m is Extract<ChildMessage, { type: 'recovered' }> => m.type === 'recovered');
}

/** Every `batch-failed` line of all runs (a crash test expects none). */
export function failedBatches(runs: readonly ChildOutcome[]): string[] {
  return runs.flatMap((r) => r.messages).flatMap((m) => (m.type === 'batch-failed' ? [m.error] : []));
}

/**
 * What every crash test checks about the runs themselves, as a list of
 * problems (empty when all hold): each kill landed mid-run, after its
 * incarnation checkpointed batches of its own; each restart resumed from a
 * checkpoint its predecessor left (not from the start, not failed); no batch
 * failed.
 */
export function crashRunProblems(runs: readonly ChildOutcome[], kills: readonly KillRecord<unknown>[], totalRecords: number): string[] {
  const problems: string[] = [];
  for (const kill of kills) {
    if (kill.progressed <= 1) problems.push(`${kill.kind} kill: the killed run checkpointed ${kill.progressed} batch(es) of its own`);
    if (kill.processedAtKill >= totalRecords) problems.push(`${kill.kind} kill: came after the last record (${kill.processedAtKill})`);
  }
  runs.slice(1).forEach((run, i) => {
    const recovered = recoveredOf(run);
    if (recovered?.status !== 'running') problems.push(`run ${i + 2} recovered ${JSON.stringify(recovered)} instead of a running pipeline`);
    else if (recovered.records <= 0) problems.push(`run ${i + 2} resumed from the start`);
  });
  for (const error of failedBatches(runs)) problems.push(`a batch failed: ${error}`);
  return problems;
}
