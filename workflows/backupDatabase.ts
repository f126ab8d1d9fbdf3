// backupDatabase: a consistent logical backup of a MySQL / MariaDB cluster's databases to S3, under
// the cluster lock: the dump (one consistent snapshot per database, its binlog and GTID position,
// row counts and CHECKSUM TABLE taken in the same snapshot), a verification restore into a scratch
// database every Nth run, the manifest written last, and retention. A backup that finds the lock
// held by another runbook (an upgrade, a switchover) is skipped and says by whom, rather than
// queueing for hours behind it; `whenLocked: 'wait'` queues instead.
import { ApplicationFailure, CancellationScope, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupManifest, BackupSummary, Compression, DumpResult, VerificationRecord } from '../activities/backup';
import { backupCatalog, backupIo, lookup } from './activity-profiles';
import { safeObjectSegment } from './object-names';
import { describeHolder } from './clusterLock';
import { withClusterLock } from './lock';
import { Notifier } from './notify';
import { failureMessage, RunbookTracker } from './tracker';
import { DATABASE_NAME, InputValidator } from './validation';

export interface BackupDatabaseInput {
  cluster: string;
  /** Default: the profile's backup.databases, else every database but the system ones. */
  databases?: string[];
  /** Default: the profile's backup.compression. */
  compression?: Compression;
  /** Force the verification restore on or off; default every backup.verifyEvery-th run. */
  verify?: boolean;
  /** `skip` (default): another runbook holds the lock, the backup is skipped and recorded; `wait`: queue for it. */
  whenLocked?: 'skip' | 'wait';
  lockWaitSeconds?: number;
}

export interface BackupDatabaseResult {
  cluster: string;
  outcome: 'succeeded' | 'skipped';
  /** Who held the lock when the backup was skipped. */
  heldBy?: string;
  backupId?: string;
  manifestKey?: string;
  node?: string;
  gtidPosition?: string;
  databases?: { name: string; tables: number; rows: number; bytes: number; sqlBytes: number; objectKey: string; sha256: string }[];
  verification?: VerificationRecord | null;
  retention?: { kept: string[]; deleted: string[] };
  durationSeconds?: number;
  summary: string;
}

const STEPS = ['read profile', 'cluster lock', 'dump', 'verify', 'manifest', 'retention'];

const { describeCluster } = proxyActivities<Activities>(lookup);
const { listBackups, writeBackupManifest, applyBackupRetention, dropBackupScratch } = proxyActivities<Activities>(backupCatalog);
const { dumpDatabases, verifyBackup } = proxyActivities<Activities>(backupIo);

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Whether this run is the verifyEvery-th since the newest verified backup. */
export function verificationDue(verifyEvery: number, previous: readonly Pick<BackupSummary, 'verified'>[]): boolean {
  if (verifyEvery <= 0) return false;
  const sinceVerified = previous.findIndex((b) => b.verified);
  return sinceVerified < 0 || sinceVerified + 1 >= verifyEvery;
}

function describeDump(d: DumpResult): string {
  const tables = d.databases.reduce((n, x) => n + x.tables.length, 0);
  const bytes = d.databases.reduce((n, x) => n + x.bytes, 0);
  const sql = d.databases.reduce((n, x) => n + x.sqlBytes, 0);
  return `${d.databases.map((x) => x.name).join(', ')} from ${d.node}: ${tables} table(s), ${mib(sql)} of SQL in ${mib(bytes)}, gtid ${d.databases[0]?.gtidPosition || 'none'}`;
}

export async function backupDatabase(input: BackupDatabaseInput): Promise<BackupDatabaseResult> {
  const v = new InputValidator(input, 'backupDatabase', ['cluster', 'databases', 'compression', 'verify', 'whenLocked', 'lockWaitSeconds']);
  const cluster = v.clusterName();
  const rawDatabases = v.raw('databases');
  let databases: string[] | undefined;
  if (rawDatabases !== undefined) {
    if (!Array.isArray(rawDatabases) || rawDatabases.length === 0 || !rawDatabases.every((d) => typeof d === 'string' && DATABASE_NAME.test(d))) {
      v.fail('databases', 'expected a non-empty list of database names (letters, digits and "_", at most 64)');
    } else {
      databases = rawDatabases as string[];
    }
  }
  const compression = v.optionalString('compression', /^(gzip|zstd)$/, '"gzip" or "zstd"') as Compression | undefined;
  const verifyInput = v.raw('verify') === undefined ? undefined : v.optionalBoolean('verify', true);
  const whenLocked = (v.optionalString('whenLocked', /^(skip|wait)$/, '"skip" or "wait"') ?? 'skip') as 'skip' | 'wait';
  const lockWaitSeconds = v.optionalNumber('lockWaitSeconds', { min: 0, max: 7 * 24 * 3600, integer: true });
  v.done();

  const tracker = new RunbookTracker('backupDatabase', cluster, STEPS);
  const info = workflowInfo();
  const backupId = `${info.runStartTime.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}_${safeObjectSegment(info.workflowId)}`;
  const runKey = `${info.workflowId}/${info.runId}`;

  return tracker.run(
    async (): Promise<BackupDatabaseResult> => {
      const plan = await tracker.step('read profile', async () => {
        const p = await describeCluster({ cluster });
        if (!p.mysql || !p.s3 || !p.backup) throw ApplicationFailure.nonRetryable(`cluster: cluster "${cluster}" needs a mysql and an s3 section in its profile to be backed up`, 'ProfileIncomplete');
        return { ...p, backup: p.backup };
      });
      // A scheduled backup that fails, or does not run, must not go unnoticed.
      const notifier = new Notifier(tracker.progress, plan.notifications);
      tracker.begin('cluster lock');
      let lockHeld = false;
      const locked = await withClusterLock(
        { cluster, runbook: 'backupDatabase', waitSeconds: lockWaitSeconds ?? plan.lock.waitSeconds, leaseSeconds: plan.lock.leaseSeconds, maxHoldSeconds: plan.lock.maxHoldSeconds, ifHeld: whenLocked },
        async (lease) => {
          lockHeld = true;
          tracker.end('cluster lock', 'done', `held since ${lease.grantedAt}`);
          const startedAt = new Date().toISOString();
          const chosenCompression = compression ?? plan.backup.compression;
          const previous = await listBackups({ cluster });
          const dump = await tracker.step('dump', () => dumpDatabases({ cluster, backupId, databases: databases ?? plan.backup.databases, compression: chosenCompression }), describeDump);

          const due = verifyInput ?? verificationDue(plan.backup.verifyEvery, previous);
          let verification: VerificationRecord | null = null;
          if (due) {
            verification = await tracker.step(
              'verify',
              async () => {
                try {
                  return await verifyBackup({ cluster, runKey, compression: chosenCompression, databases: dump.databases });
                } catch (err) {
                  await CancellationScope.nonCancellable(() => dropBackupScratch({ cluster, runKey, databases: dump.databases.map((d) => d.name) })).catch(() => undefined);
                  throw err;
                }
              },
              (r) =>
                r.outcome === 'passed'
                  ? `restored into a scratch database: ${r.tables} table(s), ${r.rows} row(s)${r.objects ? `, ${r.objects} definition(s)` : ''} equal to the manifest`
                  : `${r.differences.length} difference(s): ${r.differences.slice(0, 3).join('; ')}`,
              // The manifest is still written (it records the failure), but the step failed.
              (r) => r.outcome === 'failed',
            );
          } else {
            tracker.skip('verify', verifyInput === false ? 'not requested' : `every ${plan.backup.verifyEvery} run(s) (backup.verifyEvery); not due`);
          }

          const finishedAt = new Date().toISOString();
          tracker.recordBackup('database dump', dump.databases.reduce((n, d) => n + d.bytes, 0), (Date.parse(finishedAt) - Date.parse(startedAt)) / 1000);
          const manifest: BackupManifest = {
            format: 1,
            id: backupId,
            cluster,
            workflowId: info.workflowId,
            runId: info.runId,
            node: dump.node,
            server: dump.server,
            compression: chosenCompression,
            startedAt,
            finishedAt,
            durationSeconds: (Date.parse(finishedAt) - Date.parse(startedAt)) / 1000,
            gtidPosition: dump.databases[0]?.gtidPosition ?? '',
            bytes: dump.databases.reduce((n, d) => n + d.bytes, 0),
            databases: dump.databases,
            verification,
          };
          const { manifestKey } = await tracker.step('manifest', () => writeBackupManifest({ manifest }), (r) => r.manifestKey);
          if (verification?.outcome === 'failed') {
            tracker.skip('retention', 'the backup failed its verification: nothing is deleted');
            throw ApplicationFailure.create({
              type: 'BackupVerifyFailed',
              nonRetryable: true,
              message: `backup ${backupId} of cluster ${cluster} does not restore to what its manifest records: ${verification.differences.slice(0, 5).join('; ')}`,
              details: [verification],
            });
          }
          const retention = await tracker.step(
            'retention',
            () => applyBackupRetention({ cluster, policy: plan.backup.retention, currentId: backupId, now: finishedAt }),
            (r) => `kept ${r.kept.length} backup(s), deleted ${r.deleted.length}${r.deleted.length ? ` (${r.deleted.join(', ')})` : ''}`,
          );
          const databasesOut = dump.databases.map((d) => ({
            name: d.name,
            tables: d.tables.length,
            rows: d.tables.reduce((n, t) => n + t.rows, 0),
            bytes: d.bytes,
            sqlBytes: d.sqlBytes,
            objectKey: d.objectKey,
            sha256: d.sha256,
          }));
          const summary =
            `backup ${backupId} of cluster ${cluster}: ${describeDump(dump)}; ` +
            (verification ? `verified (${verification.tables} table(s) restored and compared)` : 'not verified this run') +
            `; ${retention.deleted.length} expired backup(s) deleted`;
          return {
            cluster,
            outcome: 'succeeded' as const,
            backupId,
            manifestKey,
            node: dump.node,
            gtidPosition: manifest.gtidPosition,
            databases: databasesOut,
            verification,
            retention: { kept: retention.kept, deleted: retention.deleted },
            durationSeconds: manifest.durationSeconds,
            summary,
          };
        },
      ).catch(async (err: unknown) => {
        if (!lockHeld) tracker.end('cluster lock', 'failed', failureMessage(err));
        await CancellationScope.nonCancellable(() => notifier.send(isCancellation(err) ? 'cancelled' : 'failed', `backup of cluster ${cluster} failed: ${failureMessage(err)}`));
        throw err;
      });
      if (locked.status === 'skipped') {
        const heldBy = describeHolder(locked.holder);
        tracker.end('cluster lock', 'skipped', `held by ${heldBy}`);
        for (const step of STEPS.slice(2)) tracker.skip(step, 'the cluster lock is held by another runbook');
        const summary = `backup of cluster ${cluster} skipped: the cluster lock is held by ${heldBy} (whenLocked: skip)`;
        await notifier.send('skipped', summary);
        return { cluster, outcome: 'skipped', heldBy, summary };
      }
      return locked.value;
    },
    (result) => ({ outcome: result.outcome, summary: result.summary }),
  );
}
