// The reliability harness: runs a runbook scenario (one table entry of scenarios.ts) undisturbed,
// with its worker SIGKILLed at an activity boundary, or with a server stopped mid-run, and compares
// what a user would check afterwards. Every run's history is scanned for the stack's credentials;
// the undisturbed runs' histories are what test/histories/ holds (DBR_RECORD_HISTORIES=1).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, TerminatedFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../../worker/data-converter';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../worker/interceptors';
import { getProgressQuery, lockWorkflowId } from '../../workflows/definitions';
import * as proto from '@temporalio/proto';
import { findCredentials, stackCredentials } from '../helpers/history-secrets';
import { ADMIN_KUBECONFIG } from '../helpers/kubernetes';
import { LOCAL_PROFILES, REPO_ROOT, stack, STACK_STATE, TEMPORAL_BINARY, type StackPart } from '../helpers/stack';
import { realActivities, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';
import { spawnWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

export const HISTORIES_DIR = path.join(REPO_ROOT, 'test', 'histories');

/** One runbook on one path: a table entry. */
export interface Scenario<R = unknown> {
  /** The workflow type. */
  runbook: string;
  /** The main path it drives (success, rollback, ...): names its recorded history. */
  path: string;
  cluster: string;
  /** Clusters the entry adds to the local profiles, as YAML lines under `clusters:`. */
  profiles?: string;
  /** Once before the entry's first run (namespaces, tables, the simulated operator, a backup to restore...). */
  prepare?: (context: PrepareContext) => Promise<void>;
  /** Before every run: the state each run starts from. */
  setup: () => Promise<void>;
  input: () => Record<string, unknown>;
  /** How the run ended, as a user reads it: "upgraded", "healthy", ... (failures are their error type). */
  outcome: (result: R) => string;
  /** What a user checks afterwards; must be equal for every run that ends the same way. */
  finalState: () => Promise<unknown>;
  /** Side effects by kind (objects, rows, annotations, ledger entries): a crashed run has exactly the undisturbed run's. */
  sideEffects?: () => Promise<Record<string, number>>;
  /** The boundaries (`<activityType>#<n>`) to crash at; default every one the undisturbed run passed. */
  crashAt?: (boundary: string) => boolean;
  /** After the entry's last run. */
  cleanup?: () => Promise<void>;
}

export interface PrepareContext {
  /** Runs a runbook to its end on the in-process worker (the backup a restore needs, the upgrade a downgrade undoes); returns its workflow id. */
  execute: (runbook: string, input: { cluster: string } & Record<string, unknown>) => Promise<string>;
}

export interface Fault {
  part: StackPart;
  /** Stop the part before the run starts, or when the runbook's current step is this one. */
  at: string;
  /** How long the part stays down. */
  downSeconds: number;
  /** The outcome the runbook must report while the part is down (a health check's verdict). */
  expect?: string;
}

export interface RunRecord {
  outcome: string;
  state: unknown;
  effects?: Record<string, number>;
  boundaries: string[];
  seconds: number;
}

export interface ReportRow {
  runbook: string;
  path: string;
  fault: string;
  outcome: string;
  finalState: 'verified' | 'DIFFERENT';
  sideEffects: 'once' | 'DIFFERENT' | '-';
  seconds: number;
}

/** A row of the table test/reliability/table-reporter.js prints at the end of the jest run; also a progress line now. */
export function report(row: ReportRow): void {
  const file = process.env.DBR_RELIABILITY_REPORT ?? path.join(STACK_STATE, 'reliability-report.jsonl');
  mkdirSync(path.dirname(file), { recursive: true });
  appendFileSync(file, `${JSON.stringify(row)}\n`);
  process.stderr.write(`[reliability] ${row.runbook} ${row.path}: ${row.fault}: ${row.outcome}, final state ${row.finalState}, side effects ${row.sideEffects} (${row.seconds.toFixed(1)}s)\n`);
}

/** The innermost ApplicationFailure's type, or the failure's kind. */
function failureOutcome(err: unknown): string {
  if (!(err instanceof WorkflowFailedError)) throw err;
  let cause: unknown = err.cause;
  let last: ApplicationFailure | undefined;
  while (cause instanceof Error) {
    if (cause instanceof ApplicationFailure && cause.type) last = cause;
    if (cause instanceof TerminatedFailure) return 'terminated';
    cause = cause.cause;
  }
  // The outermost typed failure is what the runbook says (UpgradeFailed wraps the step's error).
  const outer = err.cause instanceof ApplicationFailure && err.cause.type ? err.cause : last;
  return `failed: ${outer?.type ?? 'unknown'}`;
}

/** Activity boundaries in the order the run scheduled them: `<activityType>#<occurrence>`. */
function boundariesOf(history: ReturnType<typeof JSON.parse>): string[] {
  const seen = new Map<string, number>();
  const boundaries: string[] = [];
  for (const event of (history as { events: { activityTaskScheduledEventAttributes?: { activityType?: { name?: string } } }[] }).events) {
    const name = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (!name) continue;
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    boundaries.push(`${name}#${n}`);
  }
  return boundaries;
}

export class ReliabilityHarness {
  private worker!: RunningWorker;
  private profilesFile!: string;
  private crashBundle!: string;
  private runs = 0;
  private readonly credentials = stackCredentials();
  private readonly processes = new Set<WorkerProcess>();

  constructor(
    private readonly env: TestWorkflowEnvironment,
    private readonly scenarios: readonly Scenario<never>[],
  ) {}

  async start(): Promise<void> {
    const extra = this.scenarios.map((s) => s.profiles ?? '').join('');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dbr-reliability-'));
    // The worker processes read a profile file: the local one with its relative paths made absolute, plus the entries' clusters.
    this.profilesFile = path.join(dir, 'clusters.yaml');
    writeFileSync(this.profilesFile, `${readFileSync(LOCAL_PROFILES, 'utf8').replace(/\.\.\/examples/g, path.join(REPO_ROOT, 'examples')).replace(/cwd: \.\.$/gm, `cwd: ${REPO_ROOT}`)}${extra}`);
    this.crashBundle = path.join(dir, 'crash-bundle.js');
    const { code } = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      failureConverterPath: FAILURE_CONVERTER_PATH,
      workflowInterceptorModules: [...WORKFLOW_INTERCEPTOR_MODULES, require.resolve('./short-heartbeats')],
      logger: { trace() {}, debug() {}, info() {}, warn() {}, error: console.error, log() {} },
    });
    writeFileSync(this.crashBundle, code);
    this.worker = await startWorker(this.env, realActivities(this.env, testProfiles(extra ? `clusters:\n${extra}` : ''), { kubeconfigPath: ADMIN_KUBECONFIG }));
  }

  async stop(): Promise<void> {
    for (const p of this.processes) await p.kill();
    await this.worker?.stop();
  }

  readonly prepareContext: PrepareContext = {
    execute: async (runbook, input) => {
      await this.freeLock(input.cluster);
      const workflowId = `${runbook}/${input.cluster}/reliability-prepare-${randomBytes(2).toString('hex')}`;
      await this.env.client.workflow.execute(runbook, { taskQueue: this.worker.taskQueue, workflowId, args: [input] });
      return workflowId;
    },
  };

  /**
   * The lock workflow keeps the task queue it was started on, whose worker may be gone. Runs here
   * never overlap and each released the lock as it ended, so the next run may start a new one.
   */
  private async freeLock(cluster: string): Promise<void> {
    const handle = this.env.client.workflow.getHandle(lockWorkflowId(cluster));
    try {
      if ((await handle.describe()).status.name !== 'RUNNING') return;
      await handle.terminate('reliability suite: the next run starts its own lock workflow');
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }

  private async begin(s: Scenario<never>, taskQueue: string, beforeStart?: () => Promise<void>): Promise<WorkflowHandle> {
    await s.setup();
    await this.freeLock(s.cluster);
    await beforeStart?.();
    this.runs += 1;
    return this.env.client.workflow.start(s.runbook, {
      taskQueue,
      workflowId: `${s.runbook}/${s.cluster}/reliability-${this.runs}-${randomBytes(2).toString('hex')}`,
      args: [s.input()],
    });
  }

  private async finish(s: Scenario<never>, handle: WorkflowHandle, started: number): Promise<{ run: RunRecord; history: string }> {
    const outcome = await handle.result().then((r: unknown) => s.outcome(r as never), failureOutcome);
    // The CLI writes the JSON form Worker.runReplayHistories reads (historyToJSON trips over jest's module registry).
    const { stdout: history } = await promisify(execFile)(TEMPORAL_BINARY, ['workflow', 'show', '--address', this.env.address, '--workflow-id', handle.workflowId, '--output', 'json'], {
      maxBuffer: 64 * 1024 * 1024,
    });
    const leaked = findCredentials(history, this.credentials);
    if (leaked.length) throw new Error(`${handle.workflowId}: the history holds credentials: ${leaked.join(', ')}`);
    const run = { outcome, state: await s.finalState(), effects: await s.sideEffects?.(), boundaries: boundariesOf(JSON.parse(history)), seconds: (Date.now() - started) / 1000 };
    return { run, history };
  }

  /** The reference run on the in-process worker; with DBR_RECORD_HISTORIES=1 its history goes to test/histories/. */
  async undisturbed(s: Scenario<never>): Promise<RunRecord> {
    const started = Date.now();
    const handle = await this.begin(s, this.worker.taskQueue);
    const { run } = await this.finish(s, handle, started);
    if (process.env.DBR_RECORD_HISTORIES === '1') {
      // Binary protobuf, the server's own form: the JSON form needs a history parser that this
      // dependency tree's duplicate protobufjs runtimes break, and a hand-made one loses fields.
      const recorded = await handle.fetchHistory();
      const file = `${s.runbook}-${s.path}.binpb`;
      writeFileSync(path.join(HISTORIES_DIR, file), proto.temporal.api.history.v1.History.encode(recorded).finish());
      // A history does not hold its workflow id, and the runbooks derive names from it (the lock's
      // request id): a replay must run under the same id.
      const index = path.join(HISTORIES_DIR, 'workflow-ids.json');
      const ids = existsSync(index) ? (JSON.parse(readFileSync(index, 'utf8')) as Record<string, string>) : {};
      ids[file] = handle.workflowId;
      writeFileSync(index, `${JSON.stringify(Object.fromEntries(Object.entries(ids).sort()), null, 2)}\n`);
    }
    report({ runbook: s.runbook, path: s.path, fault: 'none', outcome: run.outcome, finalState: 'verified', sideEffects: run.effects ? 'once' : '-', seconds: run.seconds });
    return run;
  }

  private spawn(taskQueue: string, crashAfter?: string): WorkerProcess {
    const p = spawnWorkerProcess(
      {
        TEMPORAL_ADDRESS: this.env.address,
        DBR_TASK_QUEUE: taskQueue,
        DBR_PROFILES: this.profilesFile,
        DBR_KUBECONFIG: ADMIN_KUBECONFIG,
        DBR_WORKFLOW_BUNDLE: this.crashBundle,
        DBR_CRASH_AFTER: crashAfter ?? '',
      },
      require.resolve('./crash-worker'),
    );
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    return p;
  }

  /** The worker is SIGKILLed right after the boundary's activity did its work; a new worker finishes the run. */
  async crash(s: Scenario<never>, boundary: string, reference: RunRecord): Promise<RunRecord & { crashed: boolean }> {
    const started = Date.now();
    const taskQueue = `reliability-${randomBytes(4).toString('hex')}`;
    let worker = this.spawn(taskQueue, boundary);
    try {
      await worker.waitUntilPolling();
      const handle = await this.begin(s, taskQueue);
      const ended = await Promise.race([worker.exited.then(() => 'crashed' as const), handle.result().then(() => 'ended', () => 'ended')]);
      const crashed = ended === 'crashed' && worker.output().includes(`"crash":"${boundary}"`);
      if (ended === 'crashed' && !crashed) throw new Error(`the worker died without crashing at ${boundary}:\n${worker.output().slice(-3000)}`);
      if (crashed) {
        worker = this.spawn(taskQueue);
        await worker.waitUntilPolling();
      }
      const { run } = await this.finish(s, handle, started);
      this.compare(s, `SIGKILL after ${boundary}`, reference, run);
      return { ...run, crashed };
    } finally {
      await worker.kill();
    }
  }

  /**
   * The part is stopped when the run starts or when it reaches a step, and started again after
   * downSeconds. With `expect`, the runbook must report the outage itself (clusterHealth: "down")
   * and the part is started again once the run has ended.
   */
  async fault(s: Scenario<never>, fault: Fault, success: RunRecord): Promise<RunRecord> {
    const started = Date.now();
    let initial: unknown;
    let stopped = false;
    const down = async () => {
      await stack('stop', fault.part);
      stopped = true;
    };
    let run: RunRecord;
    try {
      const handle = await this.begin(s, this.worker.taskQueue, async () => {
        initial = await s.finalState();
        if (fault.at === 'start') await down();
      });
      if (fault.at !== 'start') {
        for (;;) {
          const progress = await handle.query(getProgressQuery).catch(() => undefined);
          if (progress?.currentStep === fault.at) break;
          if (progress && progress.outcome !== 'running') {
            const why = await handle.result().then(() => 'no error', (err: unknown) => ((err as Error).cause as Error | undefined)?.message ?? String(err));
            throw new Error(`${s.runbook} ended (${progress.outcome}) before the step "${fault.at}": ${why}`);
          }
          await new Promise((r) => setTimeout(r, 50));
        }
        await down();
      }
      if (fault.expect) await handle.result().catch(() => undefined);
      else await new Promise((r) => setTimeout(r, fault.downSeconds * 1000));
      await stack('start', fault.part);
      stopped = false;
      ({ run } = await this.finish(s, handle, started));
    } finally {
      if (stopped) await stack('start', fault.part);
    }
    const name = `${fault.part} down${fault.at === 'start' ? ' at the start' : ` during "${fault.at}"`}${fault.expect ? '' : ` for ${fault.downSeconds}s`}`;
    if (fault.expect) this.compare(s, name, { ...success, outcome: fault.expect }, run);
    // Reported success must be the whole success; a failure must say so and leave the state the run started from.
    else if (run.outcome === success.outcome || !run.outcome.startsWith('failed: ')) this.compare(s, name, success, run);
    else this.compare(s, name, { ...run, state: initial, effects: undefined }, { ...run, effects: undefined });
    return run;
  }

  private compare(s: Scenario<never>, fault: string, reference: RunRecord, run: RunRecord): void {
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const row: ReportRow = {
      runbook: s.runbook,
      path: s.path,
      fault,
      outcome: run.outcome,
      finalState: same(reference.state, run.state) ? 'verified' : 'DIFFERENT',
      sideEffects: !run.effects ? '-' : same(reference.effects, run.effects) ? 'once' : 'DIFFERENT',
      seconds: run.seconds,
    };
    report(row);
    expect({ fault, outcome: run.outcome, state: run.state, effects: run.effects }).toEqual({ fault, outcome: reference.outcome, state: reference.state, effects: reference.effects });
  }
}
