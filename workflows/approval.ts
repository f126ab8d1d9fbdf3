// An approval gate: a runbook stops before a step, shows what it is about to do, and goes on only
// when an operator approves (the `approve` update) before the deadline. A rejection (`reject`,
// with a reason) or the deadline ends the runbook without the step. Any runbook can use it; its
// state is part of getProgress.
import { ApplicationFailure, condition, log, setHandler } from '@temporalio/workflow';
import { approveUpdate, rejectUpdate, type ApprovalState, type ApproveArgs, type RejectArgs } from './definitions';
import type { RunbookTracker } from './tracker';

const MAX_TEXT = 1000;

function checkText(value: unknown, field: string, required: boolean): void {
  if (value === undefined && !required) return;
  if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_TEXT) {
    throw new Error(`${field}: ${required ? 'required: ' : ''}a non-empty text of at most ${MAX_TEXT} characters`);
  }
}

export class ApprovalGate {
  private readonly state: ApprovalState;

  /** Construct before the first await, so that an early approve/reject is answered, not left waiting. */
  constructor(private readonly tracker: RunbookTracker) {
    this.state = { state: 'not requested' };
    tracker.progress.approval = this.state;
    const validate = (args: ApproveArgs | RejectArgs | undefined, reject: boolean) => {
      if (this.state.state !== 'waiting') {
        const decided = this.state.by ? ` by ${this.state.by}` : '';
        throw new Error(`nothing waits for approval in this run (approval: ${this.state.state}${decided})`);
      }
      if (args === null || typeof args !== 'object') throw new Error(reject ? 'expected {"reason": "..."}' : 'expected {"comment": "..."} or {}');
      checkText(args.by, 'by', false);
      if (reject) checkText((args as RejectArgs).reason, 'reason', true);
      else checkText((args as ApproveArgs).comment, 'comment', false);
    };
    setHandler(approveUpdate, (args) => this.decide('approved', args.by, args.comment), { validator: (args: ApproveArgs) => validate(args, false) });
    setHandler(rejectUpdate, (args) => this.decide('rejected', args.by, args.reason), { validator: (args: RejectArgs) => validate(args, true) });
  }

  private decide(state: 'approved' | 'rejected', by: string | undefined, comment: string | undefined): ApprovalState {
    Object.assign(this.state, { state, decidedAt: new Date().toISOString(), by: by ?? 'unknown', comment });
    log.info(`step ${state}`, { by: this.state.by, comment });
    return { ...this.state };
  }

  /**
   * Waits for a decision on `step`. Returns when approved; throws ApprovalRejected or ApprovalExpired
   * (non-retryable) otherwise. The tracker shows the step as running while it waits.
   */
  async request(step: string, request: string, timeoutSeconds: number, howTo: string): Promise<ApprovalState> {
    const deadline = new Date(Date.now() + timeoutSeconds * 1000).toISOString();
    Object.assign(this.state, { state: 'waiting', request, requestedAt: new Date().toISOString(), deadline });
    this.tracker.begin(step, `waiting for approval until ${deadline}: ${howTo}`);
    const decided = await condition(() => this.state.state !== 'waiting', timeoutSeconds * 1000);
    if (!decided) {
      Object.assign(this.state, { state: 'expired', decidedAt: new Date().toISOString() });
      const message = `no approval within ${timeoutSeconds}s (approvalTimeoutSeconds): the deadline ${deadline} passed`;
      this.tracker.end(step, 'failed', message);
      throw ApplicationFailure.create({ type: 'ApprovalExpired', nonRetryable: true, message });
    }
    if (this.state.state === 'rejected') {
      const message = `rejected by ${this.state.by ?? 'unknown'}: ${this.state.comment ?? ''}`;
      this.tracker.end(step, 'failed', message);
      throw ApplicationFailure.create({ type: 'ApprovalRejected', nonRetryable: true, message });
    }
    this.tracker.end(step, 'done', `approved by ${this.state.by ?? 'unknown'}${this.state.comment ? `: ${this.state.comment}` : ''}`);
    return { ...this.state };
  }
}
