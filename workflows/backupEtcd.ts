// backupEtcd: a full etcd snapshot to S3 that proves itself (etcd's trailing SHA-256 checked on the
// way, size and sha256 checked with HeadObject after), with a manifest written last and the
// profile's retention applied, in place of a CronJob running `etcdctl snapshot save` into a volume
// nobody looks at. Meant for a Schedule: a run that finds the cluster locked by another runbook (an
// upgrade stopping the service) is skipped and recorded, not queued for hours.
import { ApplicationFailure, CancellationScope, isCancellation, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { EtcdBackupManifestBase } from '../activities/backup-catalog';
import { backupCatalog, lookup, metadataIo } from './activity-profiles';
import { describeHolder } from './clusterLock';
import { withClusterLock } from './lock';
import { Notifier } from './notify';
import { safeObjectSegment } from './object-names';
import { planRetention } from './backup-retention';
import { failureMessage, RunbookTracker } from './tracker';
import { InputValidator } from './validation';

export interface BackupEtcdInput {
  cluster: string;
  /** When another runbook holds the cluster lock: skip this backup (default) or wait for the lock. */
  whenLocked?: 'skip' | 'wait';
  lockWaitSeconds?: number;
}

export type EtcdBackupManifest = EtcdBackupManifestBase & {
  objectKey: string;
  bytes: number;
  sha256: string;
  revision: string;
  durationSeconds: number;
};

export interface BackupEtcdResult {
  cluster: string;
  outcome: 'backed up' | 'skipped';
  backup?: EtcdBackupManifest;
  /** deleted: expired by the retention policy; abandoned: folders of runs that died before their manifest, more than a day old. */
  retention?: { kept: string[]; deleted: string[]; abandoned: string[] };
  summary: string;
}

const FIELDS = ['cluster', 'whenLocked', 'lockWaitSeconds'];
/** A folder without a manifest this old belongs to a run that died: as for database backups. */
const ABANDONED_AFTER_MS = 24 * 3600 * 1000;

const { describeCluster } = proxyActivities<Activities>(lookup);
const { writeEtcdBackupManifest, listEtcdBackups, deleteEtcdBackups, deleteAbandonedEtcdBackups } = proxyActivities<Activities>(backupCatalog);
const { snapshotEtcdToS3 } = proxyActivities<Activities>(metadataIo);

export async function backupEtcd(input: BackupEtcdInput): Promise<BackupEtcdResult> {
  const v = new InputValidator(input, 'backupEtcd', FIELDS);
  const cluster = v.clusterName();
  const whenLocked = (v.optionalString('whenLocked', /^(skip|wait)$/, '"skip" or "wait"') ?? 'skip') as 'skip' | 'wait';
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 7 * 86400, integer: true });
  v.done();

  const tracker = new RunbookTracker('backupEtcd', cluster, ['read profile', 'cluster lock', 'snapshot', 'manifest', 'retention']);
  const plan = await tracker.step('read profile', () => describeCluster({ cluster }));
  const later = new InputValidator(input, 'backupEtcd', FIELDS);
  if (!plan.etcd || !plan.s3) later.fail('cluster', `the profile of ${cluster} needs etcd and s3 sections for an etcd backup`);
  later.done();
  const notifier = new Notifier(tracker.progress, plan.notifications);
  const { workflowId } = workflowInfo();
  const id = safeObjectSegment(workflowId);

  try {
    tracker.begin('cluster lock', whenLocked === 'skip' ? 'skipped if another runbook holds it' : `waiting up to ${lockWaitSeconds ?? plan.lock.waitSeconds}s`);
    const held = await withClusterLock(
      { cluster, runbook: 'backupEtcd', waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds, leaseSeconds: plan.lock.leaseSeconds, maxHoldSeconds: plan.lock.maxHoldSeconds, ifHeld: whenLocked },
      async (lease) => {
        tracker.end('cluster lock', 'done', `held since ${lease.grantedAt}`);
        const startedAt = Date.now();
        const snapshot = await tracker.step('snapshot', () => snapshotEtcdToS3({ cluster, relativeKey: `etcd-backups/${cluster}/${id}/snapshot.db` }), (s) =>
          `${s.bytes} bytes at revision ${s.revision}, sha256 ${s.sha256.slice(0, 12)}… (etcd's own hash checked)`,
        );
        const manifest: EtcdBackupManifest = {
          kind: 'etcd',
          cluster,
          id,
          workflowId,
          startedAt: new Date(startedAt).toISOString(),
          verified: true,
          objectKey: snapshot.key,
          bytes: snapshot.bytes,
          sha256: snapshot.sha256,
          revision: snapshot.revision,
          durationSeconds: (Date.now() - startedAt) / 1000,
        };
        tracker.recordBackup('etcd snapshot', manifest.bytes, manifest.durationSeconds);
        await tracker.step('manifest', () => writeEtcdBackupManifest({ manifest }), (m) => m.objectKey);
        const retention = await tracker.step('retention', async () => {
          const decision = planRetention(await listEtcdBackups({ cluster }), plan.backup?.retention ?? { daily: 7, weekly: 4 });
          if (!decision.keep.some((k) => k.id === id)) throw ApplicationFailure.nonRetryable(`retention would delete the backup just taken (${id}): refusing`, 'RetentionRefused');
          if (decision.expire.length) await deleteEtcdBackups({ cluster, ids: decision.expire });
          // Runs recorded before the sweep existed replay without it.
          const abandoned = patched('delete-abandoned-etcd-backups')
            ? (await deleteAbandonedEtcdBackups({ cluster, currentId: id, olderThan: new Date(Date.now() - ABANDONED_AFTER_MS).toISOString() })).deleted
            : [];
          return { kept: decision.keep.map((k) => k.id), deleted: decision.expire, abandoned };
        }, (r) =>
          `kept ${r.kept.length}, deleted ${r.deleted.length}${r.deleted.length ? `: ${r.deleted.join(', ')}` : ''}${r.abandoned.length ? `; removed ${r.abandoned.length} never finished: ${r.abandoned.join(', ')}` : ''}`,
        );
        return { manifest, retention };
      },
    );
    if (held.status === 'skipped') {
      const summary = `skipped: cluster ${cluster} is locked by ${describeHolder(held.holder)}`;
      tracker.end('cluster lock', 'skipped', summary);
      for (const step of ['snapshot', 'manifest', 'retention']) tracker.skip(step, 'the cluster is locked');
      tracker.finish('skipped', summary);
      await notifier.send('skipped', summary);
      return { cluster, outcome: 'skipped', summary };
    }
    const { manifest, retention } = held.value;
    const summary = `etcd of ${cluster} backed up: ${manifest.bytes} bytes at revision ${manifest.revision} to ${manifest.objectKey}; ${retention.deleted.length} expired backup(s) deleted, ${retention.kept.length} kept${
      retention.abandoned.length ? `, ${retention.abandoned.length} never finished removed` : ''
    }`;
    tracker.finish('succeeded', summary);
    return { cluster, outcome: 'backed up', backup: manifest, retention, summary };
  } catch (err) {
    if (tracker.progress.currentStep === 'cluster lock') tracker.end('cluster lock', 'failed', failureMessage(err));
    const outcome = isCancellation(err) ? 'cancelled' : 'failed';
    tracker.finish(outcome, failureMessage(err));
    await CancellationScope.nonCancellable(() => notifier.send(outcome, `etcd backup of ${cluster} ${outcome}: ${failureMessage(err)}`));
    throw err;
  }
}
