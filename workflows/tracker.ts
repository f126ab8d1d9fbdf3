// Progress that operators can see while a runbook runs: the getProgress query, the RunbookStep and
// RunbookOutcome search attributes, the UI's current details, and a one-line memo summary.
import { log, setCurrentDetails, setHandler, upsertMemo, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
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

  constructor(runbook: string, cluster: string, steps: readonly string[]) {
    this.progress = {
      runbook,
      cluster,
      currentStep: null,
      steps: steps.map((name) => ({ name, state: 'pending' })),
      outcome: 'running',
    };
    setHandler(getProgressQuery, () => this.progress);
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
    log.info('step ended', { step: name, state, detail });
  }

  /** Runs one step: marked running, then done, or failed with the error's message before it rethrows. */
  async step<T>(name: string, fn: () => Promise<T>, describeResult?: (result: T) => string | undefined): Promise<T> {
    this.begin(name);
    try {
      const result = await fn();
      this.end(name, 'done', describeResult?.(result));
      return result;
    } catch (err) {
      this.end(name, 'failed', failureMessage(err));
      throw err;
    }
  }

  skip(name: string, reason: string): void {
    this.end(name, 'skipped', reason);
  }

  finish(outcome: Exclude<RunbookProgress['outcome'], 'running'>, summary: string): void {
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
