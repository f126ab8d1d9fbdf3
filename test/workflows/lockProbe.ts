// Holds a cluster's lock for a while, the way every mutating runbook does, and reports when.
import { sleep } from '@temporalio/workflow';
import { withClusterLock } from '../../workflows/lock';

export interface LockProbeInput {
  cluster: string;
  runbook?: string;
  holdMs: number;
  waitSeconds: number;
  leaseSeconds: number;
  ifHeld?: 'wait' | 'skip';
  priority?: 'emergency' | 'normal';
  maxHoldSeconds?: number;
}

export async function lockProbe(input: LockProbeInput): Promise<{ status: string; grantedAt?: string; releasedAt?: string; holder?: string | null }> {
  const result = await withClusterLock(
    {
      cluster: input.cluster,
      runbook: input.runbook ?? 'lockProbe',
      waitSeconds: input.waitSeconds,
      leaseSeconds: input.leaseSeconds,
      ifHeld: input.ifHeld,
      priority: input.priority,
      maxHoldSeconds: input.maxHoldSeconds,
    },
    async (lease) => {
      await sleep(input.holdMs);
      return { grantedAt: lease.grantedAt, releasedAt: new Date().toISOString() };
    },
  );
  return result.status === 'done' ? { status: 'done', ...result.value } : { status: 'skipped', holder: result.holder?.workflowId ?? null };
}
