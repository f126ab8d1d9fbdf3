// downgradeCluster: the upgrade in the other direction, with the backup of the upgrade it undoes:
// the metadata goes back to that upgrade's pre-upgrade dump (checked key for key), the image and
// replicas to the ones it replaced. The current metadata is backed up first, so a failed downgrade
// rolls back to the upgraded state like a failed upgrade rolls back to the old one.
import { ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { lookup, metadataIo } from './activity-profiles';
import { ApprovalGate } from './approval';
import { Notifier } from './notify';
import { RunbookTracker } from './tracker';
import { CHANGE_STEPS, runClusterChange, underClusterLock, type ClusterChangeResult } from './upgrade-engine';
import { InputValidator } from './validation';

export interface DowngradeClusterInput {
  cluster: string;
  /** The workflow id of the upgrade to undo, e.g. "upgradeCluster/orders". */
  upgradeWorkflowId: string;
  requireApproval?: boolean;
  approvalTimeoutSeconds?: number;
  acceptDegraded?: boolean;
  stopTimeoutSeconds?: number;
  rolloutTimeoutSeconds?: number;
  lockWaitSeconds?: number;
}

const { describeCluster } = proxyActivities<Activities>(lookup);
const { readUpgradeManifest } = proxyActivities<Activities>(metadataIo);

export async function downgradeCluster(input: DowngradeClusterInput): Promise<ClusterChangeResult> {
  const v = new InputValidator(input, 'downgradeCluster', [
    'cluster', 'upgradeWorkflowId', 'requireApproval', 'approvalTimeoutSeconds', 'acceptDegraded', 'stopTimeoutSeconds', 'rolloutTimeoutSeconds', 'lockWaitSeconds',
  ]);
  const cluster = v.clusterName();
  const upgradeWorkflowId = v.requiredString('upgradeWorkflowId', /^upgradeCluster\/[a-z0-9-]+(\/[A-Za-z0-9._:-]+)?$/, 'the workflow id of an upgradeCluster run, e.g. "upgradeCluster/orders"');
  const options = {
    dryRunOnly: false,
    requireApproval: v.optionalBoolean('requireApproval', false),
    approvalTimeoutSeconds: v.optionalNumber('approvalTimeoutSeconds', { min: 10, max: 7 * 86400, integer: true }) ?? 3600,
    acceptDegraded: v.optionalBoolean('acceptDegraded', false),
    stopTimeoutSeconds: v.optionalNumber('stopTimeoutSeconds', { min: 5, max: 86400, integer: true }) ?? 600,
    rolloutTimeoutSeconds: v.optionalNumber('rolloutTimeoutSeconds', { min: 5, max: 86400, integer: true }) ?? 900,
    migrationTimeoutSeconds: 3600,
  };
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 7 * 86400, integer: true });
  if (upgradeWorkflowId && cluster && upgradeWorkflowId.split('/')[1] !== cluster) v.fail('upgradeWorkflowId', `names an upgrade of another cluster (${upgradeWorkflowId.split('/')[1]}), not ${cluster}`);
  v.done();

  const tracker = new RunbookTracker('downgradeCluster', cluster, ['read profile', 'read upgrade record', 'cluster lock', ...CHANGE_STEPS]);
  const approvals = new ApprovalGate(tracker);
  const plan = await tracker.step('read profile', () => describeCluster({ cluster }));
  const upgrade = await tracker.step('read upgrade record', async () => {
    const manifest = await readUpgradeManifest({ cluster, upgradeWorkflowId });
    if (manifest.outcome !== 'upgraded') {
      throw ApplicationFailure.nonRetryable(`upgradeWorkflowId: ${upgradeWorkflowId} did not upgrade the cluster (its outcome: ${manifest.outcome}): nothing to undo`, 'InvalidInput');
    }
    return manifest;
  }, (m) => `${m.fromImage} → ${m.toImage} at ${m.at}; backup of ${m.dump.keyCount} keys`);

  return underClusterLock({
    runbook: 'downgradeCluster',
    cluster,
    tracker,
    notifier: new Notifier(tracker.progress, plan.notifications),
    intent: `downgrade to ${upgrade.fromImage}, undoing ${upgradeWorkflowId}`,
    waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds,
    leaseSeconds: plan.lock.leaseSeconds,
    maxHoldSeconds: plan.lock.maxHoldSeconds,
    change: () =>
      runClusterChange({
        runbook: 'downgradeCluster',
        tracker,
        approvals,
        plan,
        targetImage: upgrade.fromImage,
        change: { kind: 'restore', objectKey: upgrade.dump.objectKey, digest: upgrade.dump.digest, ledgerVersion: upgrade.migration?.version },
        options,
      }),
  });
}
