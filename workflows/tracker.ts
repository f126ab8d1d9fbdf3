// Progress that operators can see while a runbook runs: the getProgress query, the RunbookStep and
// RunbookOutcome search attributes, the UI's current details, and a one-line memo summary.
import {
  isCancellation,
  log,
  metricMeter,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { MetricMeter } from '@temporalio/common';
import { getProgressQuery, searchAttributes, type RunbookProgress, type StepProgress } from './definitions';

/** The innermost message of a failure chain: "Activity task failed" says nothing to an operator. */
export function failureMessage(err: unknown): string {
  let message = err instanceof Error ? err.message : String(err);
  let current: unknown = err instanceof Error ? err.cause : undefined;
  while (current instanceof Error) {
    if (current.message) message = current.message;
    current = current.cause;
  }
  return message;
}

function now(): string {
  // Date in workflow code is the deterministic workflow clock.
  return new Date().toISOString();
}

export class RunbookTracker {
  readonly progress: RunbookProgress;
  /** Prometheus metrics through the worker's runtime; not emitted again on replay. */
  private readonly meter: MetricMeter;

  constructor(runbook: string, cluster: string, steps: readonly string[]) {
    this.progress = {
      runbook,
      cluster,
      currentStep: null,
      steps: steps.map((name) => ({ name, state: 'pending' })),
      outcome: 'running',
    };
    setHandler(getProgressQuery, () => this.progress);
    this.meter = metricMeter.withTags({ runbook, cluster });
    this.meter.createCounter('runbook_started', '1', 'runbooks started').add(1);
    upsertSearchAttributes([
      { key: searchAttributes.cluster, value: cluster },
      { key: searchAttributes.runbook, value: runbook },
      { key: searchAttributes.outcome, value: 'running' },
    ]);
  }

  private stepNamed(name: string): StepProgress {
    let step = this.progress.steps.find((s) => s.name === name);
    if (!step) {
      step = { name, state: 'pending' };
      this.progress.steps.push(step);
    }
    return step;
  }

  begin(name: string, detail?: string): void {
    const step = this.stepNamed(name);
    step.state = 'running';
    step.startedAt = now();
    step.detail = detail;
    this.progress.currentStep = name;
    upsertSearchAttributes([{ key: searchAttributes.step, value: name }]);
    setCurrentDetails(`**${this.progress.runbook}** on \`${this.progress.cluster}\`: ${name}${detail ? ` (${detail})` : ''}`);
    log.info('step started', { step: name, detail });
  }

  end(name: string, state: 'done' | 'failed' | 'skipped' | 'compensated', detail?: string): void {
    const step = this.stepNamed(name);
    step.state = state;
    step.endedAt = now();
    if (detail !== undefined) step.detail = detail;
    if (this.progress.currentStep === name) this.progress.currentStep = null;
    if (step.startedAt) {
      this.meter
        .createHistogram('runbook_step_duration_seconds', 'float', 's', 'duration of runbook steps')
        .record((Date.parse(step.endedAt) - Date.parse(step.startedAt)) / 1000, { step: name, state });
    }
    log.info('step ended', { step: name, state, detail });
  }

  /**
   * Runs one step: marked running, then done, or failed with the error's message before it rethrows.
   * A step whose result says it failed (`failed`) is marked failed without throwing.
   */
  async step<T>(name: string, fn: () => Promise<T>, describeResult?: (result: T) => string | undefined, failed?: (result: T) => boolean): Promise<T> {
    this.begin(name);
    try {
      const result = await fn();
      this.end(name, failed?.(result) ? 'failed' : 'done', describeResult?.(result));
      return result;
    } catch (err) {
      this.end(name, 'failed', failureMessage(err));
      throw err;
    }
  }

  /** A backup written: its bytes (runbook_backup_bytes) and how fast (runbook_backup_throughput_bytes_per_second). */
  recordBackup(kind: string, bytes: number, seconds: number): void {
    this.meter.createCounter('runbook_backup_bytes', 'By', 'bytes of backups written').add(bytes, { kind });
    if (seconds > 0) this.meter.createHistogram('runbook_backup_throughput_bytes_per_second', 'float', 'By/s', 'throughput of backups').record(bytes / seconds, { kind });
  }

  skip(name: string, reason: string): void {
    this.end(name, 'skipped', reason);
  }

  /**
   * Runs the runbook's body and records how it ended: the body's own outcome and summary when it
   * returns, failed or cancelled (with the cause) when it throws.
   */
  async run<T>(
    body: () => Promise<T>,
    describe: (result: T) => { outcome: Exclude<RunbookProgress['outcome'], 'running'>; summary: string },
    /** How a failure ended, when the runbook knows better than failed / cancelled (it rolled back). */
    describeFailure?: (err: unknown) => { outcome: Exclude<RunbookProgress['outcome'], 'running'>; summary: string } | undefined,
  ): Promise<T> {
    let result: T;
    try {
      result = await body();
    } catch (err) {
      const described = describeFailure?.(err);
      if (described) this.finish(described.outcome, described.summary);
      else this.finish(isCancellation(err) ? 'cancelled' : 'failed', failureMessage(err));
      throw err;
    }
    const { outcome, summary } = describe(result);
    this.finish(outcome, summary);
    return result;
  }

  finish(outcome: Exclude<RunbookProgress['outcome'], 'running'>, summary: string): void {
    this.meter.createCounter('runbook_finished', '1', 'runbooks finished, by outcome').add(1, { outcome });
    this.progress.outcome = outcome;
    this.progress.currentStep = null;
    upsertSearchAttributes([
      { key: searchAttributes.outcome, value: outcome },
      { key: searchAttributes.step, value: 'finished' },
    ]);
    upsertMemo({ summary });
    setCurrentDetails(`**${this.progress.runbook}** on \`${this.progress.cluster}\`: ${outcome}: ${summary}`);
    log.info('runbook finished', { outcome, summary, workflowId: workflowInfo().workflowId });
  }
}
