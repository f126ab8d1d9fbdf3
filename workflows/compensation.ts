// Compensations of a runbook's destructive steps: registered before each step runs (so a step that
// failed halfway is undone too; every undo is idempotent), run newest first on failure and on
// cancellation, inside a non-cancellable scope so a cancellation cannot stop the undoing.
import { CancellationScope } from '@temporalio/workflow';
import { failureMessage, type RunbookTracker } from './tracker';

export interface CompensationReport {
  undone: string[];
  failed: { step: string; error: string }[];
}

export class Compensations {
  private readonly steps: { name: string; undo: () => Promise<unknown> }[] = [];

  constructor(private readonly tracker: RunbookTracker) {}

  add(name: string, undo: () => Promise<unknown>): void {
    this.steps.push({ name, undo });
  }

  /** Forgets the compensations registered so far: past this point the runbook rolls forward. */
  clear(): void {
    this.steps.length = 0;
  }

  get pending(): number {
    return this.steps.length;
  }

  /** Runs every compensation, newest first; one that fails is recorded and the others still run. */
  async run(): Promise<CompensationReport> {
    const report: CompensationReport = { undone: [], failed: [] };
    await CancellationScope.nonCancellable(async () => {
      while (this.steps.length > 0) {
        const { name, undo } = this.steps.pop()!;
        const step = `undo: ${name}`;
        this.tracker.begin(step);
        try {
          await undo();
          this.tracker.end(step, 'compensated');
          report.undone.push(name);
        } catch (err) {
          const error = failureMessage(err);
          this.tracker.end(step, 'failed', error);
          report.failed.push({ step: name, error });
        }
      }
    });
    return report;
  }
}
