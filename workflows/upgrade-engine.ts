// The engine behind upgradeCluster and downgradeCluster: stop the service, back up the metadata,
// change it (a declared migration, or the restore of an earlier backup), deploy an image, verify;
// and on any failure or cancellation after the stop, put back the metadata, the image and the
// replicas, check the metadata key for key against the backup, and say what happened.
import {
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  proxyActivities,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ClusterPlan } from '../activities/cluster';
import type { MigrationVerification, UpgradeManifest } from '../activities/metadata';
import { kubernetesCall, kubernetesWait, metadataIo } from './activity-profiles';
import { ApprovalGate } from './approval';
import type { EtcdMigrationStep, MigrationSpec } from './etcd-migration';
import { checkClusterHealth } from './health';
import type { Notifier } from './notify';
import { upgradeObjectName } from './object-names';
import { withClusterLock } from './lock';
import { failureMessage, RunbookTracker } from './tracker';

export interface ClusterChangeOptions {
  acceptDegraded: boolean;
  dryRunOnly: boolean;
  requireApproval: boolean;
  approvalTimeoutSeconds: number;
  stopTimeoutSeconds: number;
  rolloutTimeoutSeconds: number;
  migrationTimeoutSeconds: number;
}

/** What changes the metadata: a declared migration, or the restore of a dump (a downgrade). */
export type MetadataChange =
  | { kind: 'migration'; spec: MigrationSpec | null }
  /** ledgerVersion: the migration the restored backup predates; its ledger is cleared once the restore is verified. */
  | { kind: 'restore'; objectKey: string; digest: string; ledgerVersion?: string };

export interface ClusterChangeResult {
  cluster: string;
  runbook: 'upgradeCluster' | 'downgradeCluster';
  outcome: 'upgraded' | 'downgraded' | 'dry-run';
  fromImage: string;
  toImage: string;
  replicas: number;
  before: { keyCount: number; digest: string };
  backup: UpgradeManifest['dump'];
  snapshot?: UpgradeManifest['snapshot'];
  dryRun?: MigrationVerification | { job: string; outcome: string };
  migration?: { applied: number; skipped: number } | { job: string; outcome: string };
  verification?: MigrationVerification;
  summary: string;
}

const { readWorkloadSpec } = proxyActivities<Activities>(kubernetesCall);
const { scaleWorkload, setWorkloadImage, runJob } = proxyActivities<Activities>(kubernetesWait);
const {
  snapshotMetadata,
  dumpMetadata,
  restoreMetadata,
  applyEtcdMigration,
  clearMigrationLedger,
  dryRunEtcdMigration,
  verifyMetadata,
  metadataReadWriteProbe,
  writeUpgradeManifest,
  snapshotEtcdToS3,
} = proxyActivities<Activities>(metadataIo);

export const CHANGE_STEPS = ['pre-flight', 'stop service', 'back up metadata', 'dry-run', 'approval', 'change metadata', 'deploy', 'verify'];

function inSeconds(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toISOString();
}

function jobName(workflowId: string, what: string): string {
  // A Job name derived from the run: a retried activity finds the Job it created.
  const base = workflowId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  let hash = 0;
  for (const ch of workflowInfo().runId) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return `${base.slice(0, 40)}-${what}-${hash.toString(36)}`.slice(0, 63).replace(/-+$/, '');
}

/** Runs the whole change on a cluster whose lock the caller holds. */
export async function runClusterChange(params: {
  runbook: 'upgradeCluster' | 'downgradeCluster';
  tracker: RunbookTracker;
  approvals: ApprovalGate;
  plan: ClusterPlan;
  targetImage: string | null;
  change: MetadataChange;
  options: ClusterChangeOptions;
}): Promise<ClusterChangeResult> {
  const { runbook, tracker, approvals, plan, change, options } = params;
  const { cluster } = plan;
  const { workflowId, runId } = workflowInfo();

  // 1. Pre-flight: the cluster is healthy, and what we may have to restore is recorded.
  const pre = await tracker.step('pre-flight', async () => {
    const { report } = await checkClusterHealth(cluster);
    if (report.verdict === 'down' || (report.verdict === 'degraded' && !options.acceptDegraded)) {
      throw ApplicationFailure.create({
        type: 'ClusterUnhealthy',
        nonRetryable: true,
        message: `cluster ${cluster} is ${report.verdict}: ${report.reasons.join('; ')}${report.verdict === 'degraded' ? ' (acceptDegraded: true proceeds anyway)' : ''}`,
      });
    }
    const spec = await readWorkloadSpec({ cluster });
    const snapshot = await snapshotMetadata({ cluster });
    return { spec, snapshot, verdict: report.verdict };
  }, (p) => `${p.spec.kind} ${p.spec.name}: ${p.spec.image} × ${p.spec.replicas}; ${p.snapshot.keyCount} metadata keys (${p.verdict})`);
  const fromImage = pre.spec.image;
  const toImage = params.targetImage ?? fromImage;

  let stopped = false;
  let metadataTouched = false;
  let imageTouched = false;
  let backup: UpgradeManifest['dump'] | undefined;
  let snapshot: UpgradeManifest['snapshot'];

  const rollBack = async (cause: unknown): Promise<string> => {
    const done: string[] = [];
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<string>) => {
      tracker.begin(`roll back: ${what}`);
      try {
        const detail = await fn();
        tracker.end(`roll back: ${what}`, 'compensated', detail);
        done.push(detail);
      } catch (err) {
        tracker.end(`roll back: ${what}`, 'failed', failureMessage(err));
        problems.push(`${what}: ${failureMessage(err)}`);
      }
    };
    if (metadataTouched && backup) {
      const dump = backup;
      await attempt('restore metadata', async () => {
        const restored = await restoreMetadata({ cluster, objectKey: dump.objectKey });
        if (!restored.equal || restored.digest !== pre.snapshot.digest) {
          throw new Error(`restored metadata differs from the pre-${runbook === 'upgradeCluster' ? 'upgrade' : 'downgrade'} state (${restored.keyCount} keys)`);
        }
        if (change.kind === 'migration' && change.spec) await clearMigrationLedger({ cluster, version: change.spec.version });
        return `metadata restored: ${restored.keyCount} keys equal to the backup`;
      });
    }
    if (stopped || imageTouched) {
      await attempt('redeploy previous version', async () => {
        if (imageTouched) {
          // Pods of a release that never became ready block a StatefulSet's rolling update back:
          // remove them all first, then bring the previous image up from nothing.
          await scaleWorkload({ cluster, replicas: 0, deadline: inSeconds(options.stopTimeoutSeconds) });
          await setWorkloadImage({ cluster, image: fromImage, deadline: inSeconds(options.rolloutTimeoutSeconds) });
        }
        await scaleWorkload({ cluster, replicas: pre.spec.replicas, deadline: inSeconds(options.rolloutTimeoutSeconds) });
        return `${fromImage} × ${pre.spec.replicas} ready`;
      });
    }
    const outcome = problems.length === 0 ? `rolled back (${done.join('; ')})` : `ROLL BACK INCOMPLETE: ${problems.join('; ')}${done.length ? `; done: ${done.join('; ')}` : ''}`;
    log.error('cluster change failed', { cause: failureMessage(cause), outcome });
    return outcome;
  };

  try {
    // 2. Stop the service.
    await tracker.step('stop service', async () => {
      stopped = true;
      return scaleWorkload({ cluster, replicas: 0, deadline: inSeconds(options.stopTimeoutSeconds) });
    }, () => `${pre.spec.kind} ${pre.spec.name} scaled to 0`);

    // 3. Back up the metadata: a logical dump (what a rollback restores through the API) and a full
    // etcd snapshot (what `etcdctl snapshot restore` rebuilds a lost etcd from), both streamed to S3
    // and read back.
    const backupStarted = Date.now();
    const backedUp = await tracker.step('back up metadata', async () => {
      const dumped = await dumpMetadata({ cluster, workflowId });
      if (dumped.digest !== pre.snapshot.digest) {
        // Nothing may write while the service is stopped: a different digest means someone did.
        throw ApplicationFailure.nonRetryable(`the metadata changed between the pre-flight and the backup (${pre.snapshot.keyCount} → ${dumped.keyCount} keys): something still writes`, 'MetadataChanged');
      }
      const snapshot = await snapshotEtcdToS3({ cluster, relativeKey: upgradeObjectName(workflowId, 'etcd.snapshot.db') });
      return {
        dump: { objectKey: dumped.objectKey, keyCount: dumped.keyCount, digest: dumped.digest, sha256: dumped.sha256, bytes: dumped.bytes },
        snapshot: { objectKey: snapshot.key, bytes: snapshot.bytes, sha256: snapshot.sha256, revision: snapshot.revision },
      };
    }, (b) => `${b.dump.keyCount} keys, ${b.dump.bytes} bytes, sha256 ${b.dump.sha256.slice(0, 12)}…; etcd snapshot ${b.snapshot.bytes} bytes at revision ${b.snapshot.revision}`);
    backup = backedUp.dump;
    snapshot = backedUp.snapshot;
    tracker.recordBackup('upgrade metadata', backup.bytes + snapshot.bytes, (Date.now() - backupStarted) / 1000);
    const dump = backup;
    await writeUpgradeManifest({ cluster, manifest: manifestOf('in progress') });

    // 4. Dry-run on a scratch copy.
    let dryRun: ClusterChangeResult['dryRun'];
    if (change.kind === 'migration' && change.spec?.kind === 'etcd') {
      const spec = change.spec;
      dryRun = await tracker.step('dry-run', async () => {
        const result = await dryRunEtcdMigration({ cluster, objectKey: dump.objectKey, spec, runId });
        if (!result.equal) {
          throw ApplicationFailure.nonRetryable(`the dry-run of migration ${spec.version} did not produce the declared changes: ${result.differences.join('; ')}`, 'MigrationFailed');
        }
        return result;
      }, (r) => ('changes' in r ? `would add ${r.changes.added.length}, change ${r.changes.changed.length}, remove ${r.changes.removed.length} key(s)` : undefined));
    } else if (change.kind === 'migration' && change.spec?.kind === 'job') {
      const spec = change.spec;
      dryRun = await tracker.step('dry-run', async () => {
        const job = await runJob({
          cluster,
          name: jobName(workflowId, 'dryrun'),
          template: { image: toImage, command: spec.command, args: spec.dryRunArgs },
          deadline: inSeconds(options.migrationTimeoutSeconds),
        });
        return { job: job.job, outcome: job.outcome };
      }, (r) => ('job' in r ? `Job ${r.job} ${r.outcome}` : undefined));
    } else {
      tracker.skip('dry-run', change.kind === 'restore' ? 'a restore of a verified backup' : 'no migration');
    }

    if (options.dryRunOnly) {
      tracker.skip('approval', 'dry run only');
      tracker.skip('change metadata', 'dry run only');
      await tracker.step('deploy', () => scaleWorkload({ cluster, replicas: pre.spec.replicas, deadline: inSeconds(options.rolloutTimeoutSeconds) }), () => `restarted ${fromImage} × ${pre.spec.replicas}`);
      stopped = false;
      tracker.skip('verify', 'dry run only');
      await writeUpgradeManifest({ cluster, manifest: manifestOf('dry-run') });
      return result('dry-run', { dryRun, summary: `dry run: ${describeDryRun(dryRun)}; the service was restarted unchanged` });
    }

    // 5. Approval before the point of no return.
    if (options.requireApproval) {
      await approvals.request('approval', `${runbook} ${cluster} ${fromImage} → ${toImage}: ${describeDryRun(dryRun)}`, options.approvalTimeoutSeconds, `runbook approve ${workflowId}`);
    } else {
      tracker.skip('approval', 'not required');
    }

    // 6. Change the metadata.
    metadataTouched = true;
    const migration = await tracker.step('change metadata', async (): Promise<ClusterChangeResult['migration']> => {
      if (change.kind === 'restore') {
        const restored = await restoreMetadata({ cluster, objectKey: change.objectKey });
        if (!restored.equal || restored.digest !== change.digest) throw ApplicationFailure.nonRetryable(`the restored metadata differs from the backup ${change.objectKey}`, 'RestoreFailed');
        return { applied: restored.keyCount, skipped: 0 };
      }
      if (!change.spec) return { applied: 0, skipped: 0 };
      if (change.spec.kind === 'etcd') return applyEtcdMigration({ cluster, spec: change.spec });
      const job = await runJob({ cluster, name: jobName(workflowId, 'migrate'), template: { image: toImage, command: change.spec.command }, deadline: inSeconds(options.migrationTimeoutSeconds) });
      return { job: job.job, outcome: job.outcome };
    }, (m) => (m && 'applied' in m ? `${m.applied} step(s) applied, ${m.skipped} already done` : m ? `Job ${m.job} ${m.outcome}` : undefined));

    // 7. Deploy the new version and bring it back.
    await tracker.step('deploy', async () => {
      imageTouched = true;
      await setWorkloadImage({ cluster, image: toImage, deadline: inSeconds(options.rolloutTimeoutSeconds) });
      return scaleWorkload({ cluster, replicas: pre.spec.replicas, deadline: inSeconds(options.rolloutTimeoutSeconds) });
    }, (s) => `${toImage} × ${s.ready} ready`);

    // 8. Verify: healthy, read/write, and the metadata is the backup plus exactly the declared changes.
    const verification = await tracker.step('verify', async () => {
      const { report } = await checkClusterHealth(cluster);
      if (report.verdict === 'down' || (report.verdict === 'degraded' && !options.acceptDegraded)) {
        throw ApplicationFailure.nonRetryable(`after the deploy the cluster is ${report.verdict}: ${report.reasons.join('; ')}`, 'VerificationFailed');
      }
      const probe = await metadataReadWriteProbe({ cluster, probeId: `${workflowId}/${runId}` });
      if (!probe.ok) throw ApplicationFailure.nonRetryable(`read/write probe failed: ${probe.error ?? 'unknown'}`, 'VerificationFailed');
      const steps: EtcdMigrationStep[] = change.kind === 'migration' && change.spec?.kind === 'etcd' ? change.spec.steps : [];
      // A restore is checked against its own dump; a migration against the backup plus its steps.
      const checked = await verifyMetadata({ cluster, objectKey: change.kind === 'restore' ? change.objectKey : dump.objectKey, steps });
      if (!checked.equal) throw ApplicationFailure.nonRetryable(`metadata after the change is not the expected one: ${checked.differences.join('; ')}`, 'VerificationFailed');
      return checked;
    }, (v) => `metadata as expected (${v.changes.added.length} added, ${v.changes.changed.length} changed, ${v.changes.removed.length} removed); read/write ok`);

    if (change.kind === 'restore' && change.ledgerVersion) await clearMigrationLedger({ cluster, version: change.ledgerVersion });
    stopped = false;
    const outcome = runbook === 'upgradeCluster' ? 'upgraded' : 'downgraded';
    await writeUpgradeManifest({ cluster, manifest: manifestOf(outcome) });
    return result(outcome, {
      dryRun,
      migration,
      verification,
      summary: `${outcome} ${cluster} from ${fromImage} to ${toImage} (${pre.spec.replicas} replicas); metadata verified: ${verification.changes.added.length} added, ${verification.changes.changed.length} changed, ${verification.changes.removed.length} removed`,
    });
  } catch (err) {
    const cause = failureMessage(err);
    const rolledBack = await CancellationScope.nonCancellable(async () => {
      const outcome = stopped || metadataTouched || imageTouched ? await rollBack(err) : 'nothing to roll back';
      if (backup) await writeUpgradeManifest({ cluster, manifest: manifestOf('rolled back') }).catch(() => undefined);
      return outcome;
    });
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.create({
      type: (err as ApplicationFailure).type === 'ApprovalRejected' ? 'ApprovalRejected' : 'UpgradeFailed',
      nonRetryable: true,
      message: `${runbook} of ${cluster} to ${toImage} failed at "${tracker.progress.steps.find((s) => s.state === 'failed')?.name ?? 'unknown step'}": ${cause}; ${rolledBack}`,
      details: [{ rolledBack: rolledBack !== 'nothing to roll back' }],
      cause: err as Error,
    });
  }

  function manifestOf(outcome: UpgradeManifest['outcome']): UpgradeManifest {
    return {
      cluster,
      workflowId,
      runbook,
      fromImage,
      toImage,
      replicas: pre.spec.replicas,
      dump: backup!,
      snapshot,
      migration: change.kind === 'migration' && change.spec ? { kind: change.spec.kind, version: change.spec.version } : undefined,
      outcome,
      at: new Date().toISOString(),
    };
  }

  function result(outcome: ClusterChangeResult['outcome'], rest: Partial<ClusterChangeResult> & { summary: string }): ClusterChangeResult {
    return { cluster, runbook, outcome, fromImage, toImage, replicas: pre.spec.replicas, before: { keyCount: pre.snapshot.keyCount, digest: pre.snapshot.digest }, backup: backup!, snapshot, ...rest };
  }
}

function describeDryRun(dryRun: ClusterChangeResult['dryRun']): string {
  if (!dryRun) return 'no migration to try';
  if ('job' in dryRun) return `dry-run Job ${dryRun.job} ${dryRun.outcome}`;
  const { added, changed, removed } = dryRun.changes;
  return `the migration would add ${added.length}, change ${changed.length} and remove ${removed.length} key(s)${added.length + changed.length + removed.length ? `: ${[...added.map((k) => `+${k}`), ...changed.map((k) => `~${k}`), ...removed.map((k) => `-${k}`)].slice(0, 10).join(' ')}` : ''}`;
}

/**
 * The shell both runbooks share: the cluster lock around the change, and the outcome recorded
 * however it ends (succeeded, rolled back, failed before any change, cancelled).
 */
export async function underClusterLock(params: {
  runbook: 'upgradeCluster' | 'downgradeCluster';
  cluster: string;
  tracker: RunbookTracker;
  notifier: Notifier;
  /** What the started notification says, e.g. "to greptime:v2". */
  intent: string;
  waitSeconds: number;
  leaseSeconds: number;
  maxHoldSeconds?: number;
  change: () => Promise<ClusterChangeResult>;
}): Promise<ClusterChangeResult> {
  const { tracker, notifier } = params;
  tracker.begin('cluster lock', `waiting up to ${params.waitSeconds}s`);
  try {
    const held = await withClusterLock(
      { cluster: params.cluster, runbook: params.runbook, waitSeconds: params.waitSeconds, leaseSeconds: params.leaseSeconds, maxHoldSeconds: params.maxHoldSeconds },
      async (lease) => {
        tracker.end('cluster lock', 'done', `held since ${lease.grantedAt}`);
        await notifier.send('started', params.intent);
        return params.change();
      },
    );
    if (held.status !== 'done') throw new Error('a change runbook waits for the lock; it is never skipped');
    tracker.finish('succeeded', held.value.summary);
    await notifier.send('succeeded', held.value.summary);
    return held.value;
  } catch (err) {
    if (tracker.progress.currentStep === 'cluster lock') tracker.end('cluster lock', 'failed', failureMessage(err));
    const rolledBack = err instanceof ApplicationFailure && (err.details?.[0] as { rolledBack?: boolean } | undefined)?.rolledBack === true;
    const outcome = isCancellation(err) ? 'cancelled' : rolledBack ? 'rolled back' : 'failed';
    tracker.finish(outcome, failureMessage(err));
    // A cancelled runbook still says so.
    await CancellationScope.nonCancellable(() => notifier.send(outcome, failureMessage(err)));
    throw err;
  }
}
