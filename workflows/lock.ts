// The runbook side of the cluster lock: ask, wait within a budget, hold while the body runs
// (renewing the lease), and release however the body ends. Termination of the runbook skips the
// release; the lease then runs out and the lock checks that the holder has ended.
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { lookup } from './activity-profiles';
import { describeHolder } from './clusterLock';
import {
  lockDeniedSignal,
  lockGrantedSignal,
  lockWorkflowId,
  releaseLockSignal,
  renewLeaseSignal,
  type Lease,
  type LockPriority,
  type LockRequest,
} from './definitions';

export interface LockOptions {
  cluster: string;
  runbook: string;
  /** How long to wait for the lock before failing (or, with ifHeld 'skip', not at all). */
  waitSeconds: number;
  /** How long the lease lasts without a renewal; the holder renews at a third of it. */
  leaseSeconds: number;
  ifHeld?: 'wait' | 'skip';
  /** `emergency` waits ahead of every normal request (failover, galeraRecover); default normal. */
  priority?: LockPriority;
  /** The profile's lock.maxHoldSeconds: held longer, the lock reports this run loudly. */
  maxHoldSeconds?: number;
}

export type Locked<T> = { status: 'done'; value: T; lease: Lease } | { status: 'skipped'; holder: Lease | null };

const { requestClusterLock, readClusterLock } = proxyActivities<Activities>(lookup);

/** Runs body while holding the cluster's lock. */
export async function withClusterLock<T>(options: LockOptions, body: (lease: Lease) => Promise<T>): Promise<Locked<T>> {
  const info = workflowInfo();
  const request: LockRequest = {
    requestId: `${info.workflowId}/${info.runId}`,
    workflowId: info.workflowId,
    runId: info.runId,
    runbook: options.runbook,
    requestedAt: new Date().toISOString(),
    leaseSeconds: options.leaseSeconds,
    ifHeld: options.ifHeld ?? 'wait',
    priority: options.priority ?? 'normal',
    ...(options.maxHoldSeconds ? { maxHoldSeconds: options.maxHoldSeconds } : {}),
  };
  let lease: Lease | undefined;
  let denied: { holder: Lease | null } | undefined;
  setHandler(lockGrantedSignal, (granted) => {
    if (granted.requestId === request.requestId) lease = granted;
  });
  setHandler(lockDeniedSignal, (answer) => {
    if (answer.requestId === request.requestId) denied = answer;
  });
  const lock = getExternalWorkflowHandle(lockWorkflowId(options.cluster));
  const release = () =>
    CancellationScope.nonCancellable(() => lock.signal(releaseLockSignal, { requestId: request.requestId })).catch((err: unknown) => {
      log.warn('could not release the cluster lock; its lease will run out', { error: (err as Error).message });
    });

  try {
    await requestClusterLock({ cluster: options.cluster, request });
    const answered = await condition(() => lease !== undefined || denied !== undefined, options.waitSeconds * 1000);
    if (!answered) {
      await release();
      const state = await readClusterLock({ cluster: options.cluster });
      // Granted in the very instant the wait ran out: the release above already returned it.
      const holder = state?.holder?.requestId === request.requestId ? null : (state?.holder ?? null);
      throw ApplicationFailure.create({
        type: 'ClusterLocked',
        nonRetryable: true,
        message: `cluster ${options.cluster} is locked by ${describeHolder(holder)}; waited ${options.waitSeconds}s (lockWaitSeconds)`,
        details: [{ holder }],
      });
    }
  } catch (err) {
    if (isCancellation(err)) await release();
    throw err;
  }
  if (!lease) return { status: 'skipped', holder: denied?.holder ?? null };

  const held = lease;
  log.info('cluster lock acquired', { cluster: options.cluster, grantedAt: held.grantedAt });
  const renewals = new CancellationScope();
  const renewing = renewals
    .run(async () => {
      for (;;) {
        await sleep((held.leaseSeconds * 1000) / 3);
        try {
          await lock.signal(renewLeaseSignal, { requestId: request.requestId });
        } catch (err) {
          // One lost signal (the lock workflow briefly gone) must not end the renewals for the rest of
          // the hold. Runs that stopped renewing here before this change replay as they ran.
          if (isCancellation(err) || !patched('lock-renewal-survives-a-failed-signal')) throw err;
          log.warn('could not renew the cluster lock lease; renewing again in a third of the lease', { error: (err as Error).message });
        }
      }
    })
    .catch((err: unknown) => {
      if (!isCancellation(err)) log.warn('could not renew the cluster lock lease', { error: (err as Error).message });
    });
  try {
    return { status: 'done', value: await body(held), lease: held };
  } finally {
    renewals.cancel();
    await renewing;
    await release();
  }
}
