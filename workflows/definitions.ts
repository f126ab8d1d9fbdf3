// Signals, queries, updates and search attributes shared by the workflows, the worker and the client.
// Only pure imports here: this file is bundled into the workflow sandbox.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export const TASK_QUEUE_DEFAULT = 'db-runbooks';

export const searchAttributes = {
  cluster: defineSearchAttributeKey('RunbookCluster', SearchAttributeType.KEYWORD),
  runbook: defineSearchAttributeKey('RunbookName', SearchAttributeType.KEYWORD),
  step: defineSearchAttributeKey('RunbookStep', SearchAttributeType.KEYWORD),
  outcome: defineSearchAttributeKey('RunbookOutcome', SearchAttributeType.KEYWORD),
} as const;

export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'skipped' | 'compensated';

export interface StepProgress {
  name: string;
  state: StepState;
  startedAt?: string;
  endedAt?: string;
  detail?: string;
}

export interface RunbookProgress {
  runbook: string;
  cluster: string;
  currentStep: string | null;
  steps: StepProgress[];
  outcome: 'running' | 'succeeded' | 'failed' | 'rolled back' | 'cancelled' | 'skipped';
  /** Present on runbooks with an approval gate. */
  approval?: ApprovalState;
  /** Each notification sent, and the webhooks that did or did not take it. */
  notifications?: { kind: string; delivered: string[]; failed: { webhook: string; error: string }[] }[];
}

export const getProgressQuery = defineQuery<RunbookProgress>('getProgress');

// ---------------------------------------------------------------- approval gates (any runbook)

export interface ApprovalState {
  state: 'not requested' | 'waiting' | 'approved' | 'rejected' | 'expired';
  /** What the operator is asked to approve, e.g. the dry-run's summary. */
  request?: string;
  requestedAt?: string;
  deadline?: string;
  decidedAt?: string;
  /** Who decided, as the client reports it. */
  by?: string;
  /** The approver's comment, or the reason for a rejection. */
  comment?: string;
}

export interface ApproveArgs {
  comment?: string;
  by?: string;
}

export interface RejectArgs {
  reason: string;
  by?: string;
}

/** Approves the step a runbook waits on; refused (not recorded) when nothing waits for approval. */
export const approveUpdate = defineUpdate<ApprovalState, [ApproveArgs]>('approve');
/** Rejects it: the runbook ends without doing the step, and says why. */
export const rejectUpdate = defineUpdate<ApprovalState, [RejectArgs]>('reject');

// ---------------------------------------------------------------- the cluster lock (DESIGN rule 1)

export const lockWorkflowId = (cluster: string): string => `clusterLock/${cluster}`;

/**
 * `emergency` (failover, galeraRecover): queued ahead of every waiting `normal` request, behind
 * earlier emergencies; never ahead of the holder, which keeps the lock until it ends.
 */
export type LockPriority = 'normal' | 'emergency';

export interface LockRequest {
  /** `<workflowId>/<runId>` of the requesting runbook run. */
  requestId: string;
  workflowId: string;
  runId: string;
  runbook: string;
  requestedAt: string;
  leaseSeconds: number;
  /** `skip`: answer at once with lockDenied when someone holds or waits for the lock. */
  ifHeld: 'wait' | 'skip';
  /** Absent in requests from before priorities: normal. */
  priority?: LockPriority;
  /** The profile's lock.maxHoldSeconds: held longer, the holder is reported (never dispossessed). */
  maxHoldSeconds?: number;
}

/** "failover failover/orders (emergency)": how the lock's state, log and notifications name a request. */
export function describeRequest(request: LockRequest): string {
  return `${request.runbook} ${request.workflowId}${request.priority === 'emergency' ? ' (emergency)' : ''}`;
}

export interface Lease extends LockRequest {
  grantedAt: string;
  expiresAt: string;
  /** grantedAt + maxHoldSeconds, set when the lock reported the holder for holding past it. */
  overdueSince?: string;
}

/** An emergency request that was queued ahead of requests already waiting. */
export interface QueueJump {
  requestId: string;
  workflowId: string;
  runbook: string;
  at: string;
  /** The workflow ids of the waiting requests it went ahead of, in their order. */
  ahead: string[];
}

export interface LockState {
  cluster: string;
  holder: Lease | null;
  queue: LockRequest[];
  /** Counters over the lock's whole life, carried across continue-as-new. */
  granted: number;
  released: number;
  expired: number;
  /** Holders reported for holding past their maximum (absent in states from before it). */
  overdue?: number;
  /** The latest queue jumps, oldest first (at most 20 are kept). */
  queueJumps?: QueueJump[];
}

export const requestLockSignal = defineSignal<[LockRequest]>('requestLock');
/** Releases a held lease, or withdraws a request still waiting in the queue. */
export const releaseLockSignal = defineSignal<[{ requestId: string }]>('releaseLock');
export const renewLeaseSignal = defineSignal<[{ requestId: string }]>('renewLease');
export const lockGrantedSignal = defineSignal<[Lease]>('lockGranted');
export const lockDeniedSignal = defineSignal<[{ requestId: string; holder: Lease | null }]>('lockDenied');
export const getLockStateQuery = defineQuery<LockState>('getLockState');

// ---------------------------------------------------------------- node address refresh

export const refreshWorkflowId = (cluster: string): string => `refreshNodeAddresses/${cluster}`;

/** Sent by the pod watcher (signal-with-start): pods of the cluster changed address. */
export const podsChangedSignal = defineSignal<[{ pods: string[]; at: string }]>('podsChanged');
