// upgradeCluster: the GreptimeDB-style metadata upgrade that Argo CD PreSync/Sync/PostSync hooks
// drive today, as one durable runbook: pre-flight, stop, verified backup, dry-run on a scratch
// copy, optional approval, migrate, deploy, verify — and an automatic rollback (metadata restored
// and compared key for key, previous image and replicas back) on any failure or cancellation.
import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { lookup } from './activity-profiles';
import { ApprovalGate } from './approval';
import { migrationSpecProblems, type MigrationSpec } from './etcd-migration';
import { Notifier } from './notify';
import { RunbookTracker } from './tracker';
import { CHANGE_STEPS, runClusterChange, underClusterLock, type ClusterChangeResult } from './upgrade-engine';
import { InputValidator } from './validation';

export interface UpgradeClusterInput {
  cluster: string;
  /** The image to deploy, e.g. "greptime/greptimedb:v0.12.0". */
  targetImage: string;
  /** The metadata migration this version needs: declarative etcd steps or a Job with the new image. */
  migration?: MigrationSpec;
  /** Stop after the dry-run: restart the service unchanged and report what would change. */
  dryRunOnly?: boolean;
  /** Wait for `runbook approve` before the point of no return (the metadata change). */
  requireApproval?: boolean;
  approvalTimeoutSeconds?: number;
  /** Proceed when the pre-flight finds the cluster degraded (never when it is down). */
  acceptDegraded?: boolean;
  stopTimeoutSeconds?: number;
  rolloutTimeoutSeconds?: number;
  migrationTimeoutSeconds?: number;
  lockWaitSeconds?: number;
}

export const IMAGE_REFERENCE = /^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$/;

const { describeCluster } = proxyActivities<Activities>(lookup);

const FIELDS = [
  'cluster', 'targetImage', 'migration', 'dryRunOnly', 'requireApproval', 'approvalTimeoutSeconds', 'acceptDegraded',
  'stopTimeoutSeconds', 'rolloutTimeoutSeconds', 'migrationTimeoutSeconds', 'lockWaitSeconds',
];

export async function upgradeCluster(input: UpgradeClusterInput): Promise<ClusterChangeResult> {
  const v = new InputValidator(input, 'upgradeCluster', FIELDS);
  const cluster = v.clusterName();
  const targetImage = v.requiredString('targetImage', IMAGE_REFERENCE, 'an image reference such as "registry/name:tag"');
  const options = {
    dryRunOnly: v.optionalBoolean('dryRunOnly', false),
    requireApproval: v.optionalBoolean('requireApproval', false),
    approvalTimeoutSeconds: v.optionalNumber('approvalTimeoutSeconds', { min: 10, max: 7 * 86400, integer: true }) ?? 3600,
    acceptDegraded: v.optionalBoolean('acceptDegraded', false),
    stopTimeoutSeconds: v.optionalNumber('stopTimeoutSeconds', { min: 5, max: 86400, integer: true }) ?? 600,
    rolloutTimeoutSeconds: v.optionalNumber('rolloutTimeoutSeconds', { min: 5, max: 86400, integer: true }) ?? 900,
    migrationTimeoutSeconds: v.optionalNumber('migrationTimeoutSeconds', { min: 5, max: 7 * 86400, integer: true }) ?? 3600,
  };
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 7 * 86400, integer: true });
  const rawMigration = v.raw('migration');
  // The keys a migration names are checked against the metadata prefix once the profile is read,
  // still before the first side effect.
  for (const p of rawMigration === undefined ? [] : migrationSpecProblems(rawMigration, 'migration', undefined)) v.fail(p.field, p.problem);
  v.done();

  const tracker = new RunbookTracker('upgradeCluster', cluster, ['read profile', 'cluster lock', ...CHANGE_STEPS]);
  const approvals = new ApprovalGate(tracker);
  const plan = await tracker.step('read profile', () => describeCluster({ cluster }));
  const later = new InputValidator(input, 'upgradeCluster', FIELDS);
  if (!plan.etcd || !plan.s3 || !plan.workload) {
    later.fail('cluster', `the profile of ${cluster} needs etcd, s3 and workload sections for an upgrade (has: ${['etcd', 's3', 'workload'].filter((k) => plan[k as 'etcd']).join(', ') || 'none'})`);
  }
  if (rawMigration !== undefined && plan.etcd) {
    for (const p of migrationSpecProblems(rawMigration, 'migration', plan.etcd.metadataPrefix)) later.fail(p.field, p.problem);
  }
  later.done();

  return underClusterLock({
    runbook: 'upgradeCluster',
    cluster,
    tracker,
    notifier: new Notifier(tracker.progress, plan.notifications),
    intent: `upgrade to ${targetImage}${options.dryRunOnly ? ' (dry run only)' : ''}`,
    waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds,
    leaseSeconds: plan.lock.leaseSeconds,
    maxHoldSeconds: plan.lock.maxHoldSeconds,
    change: () =>
      runClusterChange({ runbook: 'upgradeCluster', tracker, approvals, plan, targetImage, change: { kind: 'migration', spec: (rawMigration as MigrationSpec | undefined) ?? null }, options }),
  });
}
