// clusterLock/<cluster>: one long-lived workflow per cluster that grants leases to runbooks in
// request order (Temporal's mutex pattern), emergencies (failover, galeraRecover) ahead of the
// other waiting requests. A lease lasts while its holder renews it; a lease that runs out is
// checked against the holder's real state before anyone else gets the lock, so a holder whose
// workers were down keeps it, and a terminated holder loses it. A holder past its maximum hold is
// reported once (metric, notification, state) and keeps the lock: taking it from a runbook in the
// middle of its work (a half-done upgrade) would be worse than waiting.
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  metricMeter,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { lookup, notification } from './activity-profiles';
import {
  describeRequest,
  getLockStateQuery,
  lockDeniedSignal,
  lockGrantedSignal,
  releaseLockSignal,
  renewLeaseSignal,
  requestLockSignal,
  searchAttributes,
  type Lease,
  type LockRequest,
  type LockState,
} from './definitions';

const QUEUE_JUMPS_KEPT = 20;

export interface ClusterLockInput {
  cluster: string;
  /** Carried across continue-as-new. */
  state?: LockState;
  /** Continue as new after this many history events (the server suggests it much later). */
  maxHistoryEvents?: number;
  /** End the workflow after this long with no holder and nobody waiting. */
  idleSeconds?: number;
  /** "Skip if held" requests received but not yet answered when the previous run continued as new. */
  pendingDenials?: LockRequest[];
}

const { describeRunbookRun } = proxyActivities<Activities>(lookup);
const { sendNotification } = proxyActivities<Activities>(notification);

function leaseEnd(from: Date, seconds: number): string {
  return new Date(from.getTime() + seconds * 1000).toISOString();
}

export function describeHolder(lease: Lease | null): string {
  return lease ? `${lease.runbook} ${lease.workflowId} since ${lease.grantedAt}` : 'nobody';
}

export async function clusterLock(input: ClusterLockInput): Promise<LockState> {
  const state: LockState = input.state ?? { cluster: input.cluster, holder: null, queue: [], granted: 0, released: 0, expired: 0 };
  const maxHistoryEvents = input.maxHistoryEvents ?? 4000;
  const idleMs = (input.idleSeconds ?? 600) * 1000;
  // Carried across continue-as-new like the state: a request answered by nobody would wait out its budget.
  const denials: LockRequest[] = [...(input.pendingDenials ?? [])];

  const known = (requestId: string) =>
    state.holder?.requestId === requestId || state.queue.some((r) => r.requestId === requestId) || denials.some((r) => r.requestId === requestId);

  const enqueue = (request: LockRequest) => {
    const firstNormal = request.priority === 'emergency' ? state.queue.findIndex((r) => r.priority !== 'emergency') : -1;
    if (firstNormal === -1) {
      state.queue.push(request);
      return;
    }
    const ahead = state.queue.slice(firstNormal).map((r) => r.workflowId);
    state.queue.splice(firstNormal, 0, request);
    const jump = { requestId: request.requestId, workflowId: request.workflowId, runbook: request.runbook, at: new Date().toISOString(), ahead };
    state.queueJumps = [...(state.queueJumps ?? []), jump].slice(-QUEUE_JUMPS_KEPT);
    log.warn('emergency request queued ahead of waiting requests', { emergency: request.workflowId, runbook: request.runbook, ahead });
  };

  setHandler(requestLockSignal, (request) => {
    // A retried request activity delivers the same request twice: keep the first.
    if (known(request.requestId)) return;
    if (request.ifHeld === 'skip' && (state.holder || state.queue.length > 0)) denials.push(request);
    else enqueue(request);
  });
  setHandler(releaseLockSignal, ({ requestId }) => {
    if (state.holder?.requestId === requestId) {
      log.info('lock released', { holder: state.holder.workflowId });
      state.holder = null;
      state.released += 1;
    } else {
      state.queue = state.queue.filter((r) => r.requestId !== requestId);
    }
  });
  setHandler(renewLeaseSignal, ({ requestId }) => {
    if (state.holder?.requestId === requestId) state.holder.expiresAt = leaseEnd(new Date(), state.holder.leaseSeconds);
  });
  setHandler(getLockStateQuery, () => state);

  let shown = '';
  const showInUi = () => {
    const overdue = state.holder?.overdueSince ? `; HELD PAST ITS MAXIMUM since ${state.holder.overdueSince}` : '';
    const summary = state.holder
      ? `held by ${describeHolder(state.holder)}; ${state.queue.length} waiting${overdue}`
      : `free; ${state.queue.length} waiting`;
    if (summary === shown) return;
    shown = summary;
    upsertMemo({ summary, holder: state.holder?.workflowId ?? null, waiting: state.queue.map((r) => r.workflowId), overdueSince: state.holder?.overdueSince ?? null });
    upsertSearchAttributes([
      { key: searchAttributes.cluster, value: state.cluster },
      { key: searchAttributes.runbook, value: 'clusterLock' },
      { key: searchAttributes.step, value: state.holder ? `held by ${state.holder.workflowId}` : 'free' },
    ]);
  };

  /** Reported once per lease: the metric, the log, the profile's webhooks; the lease stays. */
  const reportOverdue = async (holder: Lease, since: string) => {
    holder.overdueSince = since;
    state.overdue = (state.overdue ?? 0) + 1;
    const waiting = state.queue.map(describeRequest).join(', ') || 'nobody';
    log.warn('the cluster lock is held past its maximum', { holder: holder.workflowId, runbook: holder.runbook, grantedAt: holder.grantedAt, maxHoldSeconds: holder.maxHoldSeconds, waiting });
    metricMeter.withTags({ cluster: state.cluster, runbook: holder.runbook }).createCounter('runbook_lock_overdue', '1', 'cluster lock holders past lock.maxHoldSeconds').add(1);
    showInUi();
    const summary =
      `holds the cluster lock since ${holder.grantedAt}, past lock.maxHoldSeconds (${holder.maxHoldSeconds} s); waiting: ${waiting}. ` +
      'It keeps the lock until it ends: finish, cancel or terminate it to free the cluster';
    try {
      const sent = await sendNotification({ event: { cluster: state.cluster, runbook: holder.runbook, workflowId: holder.workflowId, kind: 'held too long', summary, at: new Date().toISOString() } });
      if (sent.failed.length) log.warn('notification of the overdue holder failed', { failed: sent.failed });
    } catch (err) {
      log.warn('notification of the overdue holder failed', { error: (err as Error).message });
    }
  };

  for (;;) {
    while (denials.length > 0) {
      const request = denials.shift()!;
      await getExternalWorkflowHandle(request.workflowId, request.runId)
        .signal(lockDeniedSignal, { requestId: request.requestId, holder: state.holder })
        .catch(() => undefined); // the requester is gone: nobody to tell
    }

    while (!state.holder && state.queue.length > 0) {
      const next = state.queue.shift()!;
      const now = new Date();
      const lease: Lease = { ...next, grantedAt: now.toISOString(), expiresAt: leaseEnd(now, next.leaseSeconds) };
      state.holder = lease;
      try {
        await getExternalWorkflowHandle(next.workflowId, next.runId).signal(lockGrantedSignal, lease);
        state.granted += 1;
        log.info('lock granted', { holder: next.workflowId, runbook: next.runbook, waiting: state.queue.length });
      } catch {
        // The requester ended while it waited: the lease goes to the next in line.
        if (state.holder === lease) state.holder = null;
      }
    }
    showInUi();

    if (workflowInfo().historyLength > maxHistoryEvents || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof clusterLock>({ ...input, state, pendingDenials: denials });
    }

    if (!state.holder) {
      const busy = await condition(() => state.queue.length > 0 || denials.length > 0, idleMs);
      if (!busy) {
        await condition(allHandlersFinished);
        if (state.queue.length === 0 && denials.length === 0 && !state.holder) return state;
      }
      continue;
    }

    const holder = state.holder;
    const seenExpiry = holder.expiresAt;
    const untilExpiry = Math.max(1, Date.parse(seenExpiry) - Date.now());
    // Leases from before maxHoldSeconds have none: their waits are the ones they always were.
    const overdueAt = holder.maxHoldSeconds && !holder.overdueSince ? Date.parse(holder.grantedAt) + holder.maxHoldSeconds * 1000 : undefined;
    const untilOverdue = overdueAt === undefined ? Infinity : Math.max(1, overdueAt - Date.now());
    const changed = await condition(
      () => state.holder !== holder || holder.expiresAt !== seenExpiry || denials.length > 0,
      Math.min(untilExpiry, untilOverdue),
    );
    if (changed || state.holder !== holder) continue;
    if (overdueAt !== undefined && Date.now() >= overdueAt) {
      await reportOverdue(holder, new Date(overdueAt).toISOString());
      continue;
    }

    // The lease ran out without a renewal. A holder that still runs was only unable to renew
    // (its workers were down): it keeps the lock. One that has ended loses it.
    const status = await describeRunbookRun({ workflowId: holder.workflowId, runId: holder.runId });
    if (state.holder !== holder) continue;
    if (status === 'RUNNING') {
      holder.expiresAt = leaseEnd(new Date(), holder.leaseSeconds);
      log.warn('lease ran out but its holder still runs: extended', { holder: holder.workflowId });
    } else {
      log.warn('lease expired: its holder ended without releasing the lock', { holder: holder.workflowId, status });
      state.holder = null;
      state.expired += 1;
    }
  }
}
