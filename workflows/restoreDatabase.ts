// restoreDatabase: one database of a backup (the newest verified one, or one named by id or time)
// into the same or another database of the cluster, under the cluster lock (it waits for it). A
// database that holds anything (tables, views, routines, triggers, events) is refused unless the
// input says to overwrite it; after the restore the row counts and CHECKSUM TABLE of every table,
// and the definitions of its routines, triggers, views and events, are compared with the backup's
// manifest. The restore activity checks the target again right before it changes anything (the
// check step only fails early).
import { ApplicationFailure, patched, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupSummary, LoadResult } from '../activities/backup';
import { backupCatalog, backupIo, lookup } from './activity-profiles';
import { withClusterLock } from './lock';
import { failureMessage, RunbookTracker } from './tracker';
import { DATABASE_NAME, InputValidator } from './validation';

export interface RestoreDatabaseInput {
  cluster: string;
  /** A backup id (or the workflow id of the backup run); default the newest verified backup. */
  backupId?: string;
  /** The newest backup started at or before this time (ISO 8601). */
  at?: string;
  /** The database of the backup to restore; needed when the backup holds several. */
  database?: string;
  /** Where to restore it; default the same name. */
  targetDatabase?: string;
  /** Replace a target database that holds anything (tables, views, routines, events…): it is dropped and recreated. */
  overwrite?: boolean;
  /** Without a backupId: also consider backups that were never verified. */
  allowUnverified?: boolean;
  lockWaitSeconds?: number;
}

export interface RestoreDatabaseResult {
  cluster: string;
  backup: BackupSummary;
  database: string;
  targetDatabase: string;
  replaced: boolean;
  restore: LoadResult;
  summary: string;
}

const STEPS = ['read profile', 'cluster lock', 'find backup', 'check target', 'restore', 'verify'];
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

const { describeCluster } = proxyActivities<Activities>(lookup);
const { findBackup, checkRestoreTarget } = proxyActivities<Activities>(backupCatalog);
const { restoreBackup } = proxyActivities<Activities>(backupIo);

export async function restoreDatabase(input: RestoreDatabaseInput): Promise<RestoreDatabaseResult> {
  const v = new InputValidator(input, 'restoreDatabase', ['cluster', 'backupId', 'at', 'database', 'targetDatabase', 'overwrite', 'allowUnverified', 'lockWaitSeconds']);
  const cluster = v.clusterName();
  const backupId = v.optionalString('backupId', /^[A-Za-z0-9._/:-]{1,400}$/, 'a backup id from the manifest (or the backup run\'s workflow id)');
  const atText = v.optionalString('at', ISO_TIME, 'an ISO 8601 time such as 2026-11-23T06:00:00Z');
  const database = v.optionalString('database', DATABASE_NAME, 'a database name of letters, digits and "_" (at most 64)');
  const targetInput = v.optionalString('targetDatabase', DATABASE_NAME, 'a database name of letters, digits and "_" (at most 64)');
  const overwrite = v.optionalBoolean('overwrite', false);
  const allowUnverified = v.optionalBoolean('allowUnverified', false);
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 7 * 24 * 3600, integer: true });
  if (backupId && atText) v.fail('at', 'give a backupId or a time, not both');
  // The pattern lets through dates that do not exist (month 13, 99:99).
  if (atText && Number.isNaN(Date.parse(atText))) v.fail('at', `expected an ISO 8601 time such as 2026-11-23T06:00:00Z, got ${JSON.stringify(atText)}: no such date`);
  if (targetInput && ['mysql', 'information_schema', 'performance_schema', 'sys'].includes(targetInput.toLowerCase())) v.fail('targetDatabase', 'a system database is never a restore target');
  v.done();
  const at = atText ? new Date(atText).toISOString() : undefined;

  const tracker = new RunbookTracker('restoreDatabase', cluster, STEPS);
  return tracker.run(
    async () => {
      const plan = await tracker.step('read profile', async () => {
        const p = await describeCluster({ cluster });
        if (!p.mysql || !p.s3) throw ApplicationFailure.nonRetryable(`cluster: cluster "${cluster}" needs a mysql and an s3 section in its profile to restore`, 'ProfileIncomplete');
        return p;
      });
      tracker.begin('cluster lock');
      let lockHeld = false;
      const locked = await withClusterLock(
        { cluster, runbook: 'restoreDatabase', waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds, leaseSeconds: plan.lock.leaseSeconds, maxHoldSeconds: plan.lock.maxHoldSeconds },
        async (lease) => {
          lockHeld = true;
          tracker.end('cluster lock', 'done', `held since ${lease.grantedAt}`);
          const backup = await tracker.step(
            'find backup',
            () => findBackup({ cluster, backupId, at, verifiedOnly: !backupId && !allowUnverified }),
            (b) => `${b.id} (${b.startedAt}, ${b.verification === 'passed' ? 'verified' : `verification ${b.verification}`}; ${b.databases.join(', ')}; gtid ${b.gtidPosition || 'none'})`,
          );
          const source = database ?? (backup.databases.length === 1 ? backup.databases[0]! : undefined);
          if (!source) {
            throw ApplicationFailure.nonRetryable(`database: backup ${backup.id} holds ${backup.databases.join(', ')}: name the one to restore`, 'InvalidInput');
          }
          if (!backup.databases.includes(source)) {
            throw ApplicationFailure.nonRetryable(`database: backup ${backup.id} holds ${backup.databases.join(', ')}, not ${source}`, 'InvalidInput');
          }
          const targetDatabase = targetInput ?? source;
          const target = await tracker.step(
            'check target',
            () => checkRestoreTarget({ cluster, database: targetDatabase, overwrite }),
            (t) =>
              (t.objects ?? t.tables) > 0
                ? `${targetDatabase} holds ${t.holds ?? `${t.tables} table(s)`}: replaced (overwrite)`
                : t.exists
                  ? `${targetDatabase} exists and is empty`
                  : `${targetDatabase} will be created`,
          );
          // Runs before this change let the restore drop the target on the word of the check step.
          const guarded = patched('restore-target-guard');
          const restore = await tracker.step(
            'restore',
            () => restoreBackup({ cluster, manifestKey: backup.manifestKey, database: source, targetDatabase, ...(guarded ? { overwrite } : {}) }),
            (r) => `${r.tables} table(s), ${r.rows} row(s), ${(r.sqlBytes / 1024 / 1024).toFixed(1)} MiB of SQL in ${r.durationSeconds.toFixed(1)} s`,
          );
          await tracker.step(
            'verify',
            () => {
              if (restore.differences.length > 0) {
                throw ApplicationFailure.create({
                  type: 'RestoreVerifyFailed',
                  nonRetryable: true,
                  message: `${targetDatabase} differs from backup ${backup.id}: ${restore.differences.slice(0, 5).join('; ')}`,
                  details: [restore.differences],
                });
              }
              return Promise.resolve(restore);
            },
            (r) => `row counts and CHECKSUM TABLE of ${r.tables} table(s)${r.objects ? ` and the definitions of ${r.objects} routine(s), trigger(s), view(s) and event(s)` : ''} equal to the manifest`,
          );
          const events = restore.eventsDisabled
            ? `; ${restore.eventsDisabled} event(s) left disabled in the copy (ALTER EVENT … ENABLE starts them)`
            : restore.eventsEnabled
              ? `; ${restore.eventsEnabled} event(s) enabled again as backed up`
              : '';
          const summary = `restored ${source} of backup ${backup.id} (${backup.startedAt}) into ${targetDatabase} on cluster ${cluster}: ${restore.tables} table(s), ${restore.rows} row(s); checksums equal to the manifest${events}`;
          return { cluster, backup, database: source, targetDatabase, replaced: (target.objects ?? target.tables) > 0 || Boolean(restore.replaced), restore, summary };
        },
      ).catch((err: unknown) => {
        if (!lockHeld) tracker.end('cluster lock', 'failed', failureMessage(err));
        throw err;
      });
      if (locked.status !== 'done') throw new Error('a restore waits for the lock; it is never skipped');
      return locked.value;
    },
    (result) => ({ outcome: 'succeeded', summary: result.summary }),
  );
}
