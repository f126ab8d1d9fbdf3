// backupDatabase and restoreDatabase on the real stack: MariaDB 10.11 (3310), MinIO, Temporal. A
// backup restores to equal checksums; a restore never writes over a database that holds anything
// (tables, views, routines, events) unless told to, checks again right before it changes anything,
// and replaces only what its own earlier attempt left; a failed verification shows as a failed
// step; a backup that finds the cluster locked is skipped and says by whom; retention deletes
// exactly the expired backups.
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { Connection } from 'mysql2/promise';
import type { Activities } from '../../activities';
import type { BackupManifest } from '../../activities/backup';
import type { BackupDatabaseResult } from '../../workflows/backupDatabase';
import { getLockStateQuery, getProgressQuery, lockWorkflowId, searchAttributes } from '../../workflows/definitions';
import type { RestoreDatabaseResult } from '../../workflows/restoreDatabase';
import { backupClusterYaml, BUCKET, connectMariadb, listKeys, readManifest, s3Client, tableFacts } from '../helpers/backup';
import { cli } from '../helpers/cli';
import { inActivity, realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';

const run = randomUUID().slice(0, 8);
const database = `bk_${run}`;
const copy = `bk_${run}_copy`;
const cluster = `bk-${run}`;
const retentionCluster = `bkret-${run}`;
const lossyCluster = `bklossy-${run}`;
const s3Prefix = `test-backup-${run}/`;
const retentionPrefix = `test-backup-retention-${run}/`;

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let activities: Activities;
let sql: Connection;
let s3: S3Client;
let toolDir: string;

beforeAll(async () => {
  // A dump command that loses a row (the real mariadb-dump told to leave id 1 out): a backup that
  // does not restore to what its manifest records. The option file must come first, so --where comes last.
  toolDir = await mkdtemp(path.join(os.tmpdir(), 'dbr-lossy-dump-'));
  const lossyDump = path.join(toolDir, 'dump-losing-a-row');
  await writeFile(lossyDump, `#!/bin/sh\nexec mariadb-dump "$@" --where='id <> 1'\n`);
  await chmod(lossyDump, 0o755);
  sql = await connectMariadb();
  await sql.query(`
    CREATE DATABASE ${database} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
    CREATE TABLE ${database}.customers (id INT PRIMARY KEY, name VARCHAR(80) NOT NULL, balance DECIMAL(12,2), created DATETIME(3), KEY (name));
    INSERT INTO ${database}.customers SELECT seq, CONCAT('Kunde Jürgen 客户 ', seq), seq * 1.25, '2026-01-01' + INTERVAL seq MINUTE FROM ${database}.seq_1_to_2000;
    CREATE TABLE ${database}.events (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer INT NOT NULL, payload BLOB, note TEXT NULL);
    INSERT INTO ${database}.events (customer, payload, note) SELECT seq % 2000 + 1, RANDOM_BYTES(200), IF(seq % 7 = 0, NULL, 'line\\nbreak ''quoted'' \\\\ backslash') FROM ${database}.seq_1_to_3000;
    CREATE VIEW ${database}.big_customers AS SELECT id, name FROM ${database}.customers WHERE balance > 1000;
  `);
  s3 = s3Client();
  const profiles = testProfiles(
    `clusters:\n${backupClusterYaml(cluster, s3Prefix, `{ databases: [${database}], compression: zstd, verifyEvery: 1 }`)}` +
      backupClusterYaml(retentionCluster, retentionPrefix, `{ databases: [${database}], verifyEvery: 0, retention: { daily: 2, weekly: 2 } }`) +
      backupClusterYaml(lossyCluster, `test-backup-lossy-${run}/`, `{ databases: [${database}], verifyEvery: 1, dumpCommand: ${lossyDump} }`),
  );
  env = await startTemporal();
  activities = realActivities(env, profiles);
  worker = await startWorker(env, activities);
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await sql?.query(`DROP DATABASE IF EXISTS ${database}; DROP DATABASE IF EXISTS ${copy}`);
  for (const target of guardTargets) await sql?.query(`DROP DATABASE IF EXISTS ${target}`);
  await sql?.end();
  s3?.destroy();
  if (toolDir) await rm(toolDir, { recursive: true, force: true });
});

function backup(input: Record<string, unknown>): Promise<BackupDatabaseResult> {
  return env.client.workflow.execute('backupDatabase', { taskQueue: worker.taskQueue, workflowId: `backupDatabase/${String(input.cluster)}/${randomUUID()}`, args: [input] });
}

function restore(input: Record<string, unknown>): Promise<RestoreDatabaseResult> {
  return env.client.workflow.execute('restoreDatabase', { taskQueue: worker.taskQueue, workflowId: `restoreDatabase/${String(input.cluster)}/${randomUUID()}`, args: [input] });
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(() => new Error('expected a failure'), (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause && !(cause instanceof ApplicationFailure)) cause = (cause as Error).cause;
  return cause as ApplicationFailure;
}

test('a backup restores into another database with equal row counts and checksums', async () => {
  const before = await tableFacts(sql, database);
  const result = await backup({ cluster });
  expect(result.outcome).toBe('succeeded');
  expect(result.verification).toMatchObject({ outcome: 'passed', tables: 2, rows: 5000, differences: [] });

  // The manifest, written last next to the dump, describes exactly what the database held.
  const manifest = await readManifest(s3, result.manifestKey!);
  expect(manifest).toMatchObject({ cluster, workflowId: expect.stringContaining(cluster) as string, compression: 'zstd', node: 'mariadb', server: { flavor: 'MariaDB' } });
  expect(manifest.gtidPosition).toMatch(/^\d+-\d+-\d+/);
  expect(Object.fromEntries(manifest.databases[0]!.tables.map((t) => [t.name, { rows: t.rows, checksum: t.checksum }]))).toEqual(before);
  const dumpKey = manifest.databases[0]!.objectKey;
  expect(dumpKey).toBe(`${s3Prefix}backups/${cluster}/${manifest.id}/${database}.sql.zst`);
  expect(await listKeys(s3, s3Prefix)).toEqual([dumpKey, result.manifestKey].sort());

  const restored = await restore({ cluster, targetDatabase: copy });
  expect(restored).toMatchObject({ database, targetDatabase: copy, replaced: false, backup: { id: manifest.id, verified: true }, restore: { tables: 2, rows: 5000, differences: [] } });
  expect(await tableFacts(sql, copy)).toEqual(before);
  const [[view]] = await sql.query<import('mysql2').RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${copy}.big_customers`);
  expect(Number(view!.n)).toBe(1200);
});

test('a restore onto a database that holds tables is refused without overwrite, and nothing changes', async () => {
  await sql.query(`CREATE DATABASE IF NOT EXISTS ${copy}; CREATE TABLE IF NOT EXISTS ${copy}.keep_me (id INT PRIMARY KEY); INSERT IGNORE INTO ${copy}.keep_me VALUES (42)`);
  const before = await tableFacts(sql, copy);
  const handle = await env.client.workflow.start('restoreDatabase', { taskQueue: worker.taskQueue, workflowId: `restoreDatabase/${cluster}/${randomUUID()}`, args: [{ cluster, targetDatabase: copy }] });
  const failure = await failureOf(handle.result());
  expect(failure.type).toBe('TargetNotEmpty');
  expect(failure.message).toContain(`targetDatabase: ${copy} on node mariadb holds`);
  expect(await tableFacts(sql, copy)).toEqual(before);
  const progress = await handle.query(getProgressQuery);
  expect(progress.steps.find((s) => s.name === 'restore')?.state).toBe('pending');

  // Told to, it replaces the database: the table that was not in the backup is gone.
  const replaced = await restore({ cluster, targetDatabase: copy, overwrite: true });
  expect(replaced.replaced).toBe(true);
  expect(await tableFacts(sql, copy)).toEqual(await tableFacts(sql, database));
});

const guardTargets: string[] = [];

/** A database for one guard test, dropped after the file. */
async function guardTarget(name: string, ...statements: string[]): Promise<string> {
  const target = `${copy}_${name}`;
  guardTargets.push(target);
  await sql.query(`DROP DATABASE IF EXISTS ${target}`);
  if (statements.length) await sql.query(`CREATE DATABASE ${target}; USE ${target}; ${statements.join('; ')}; USE mysql`);
  return target;
}

async function activityFailure(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(() => new Error('expected a failure'), (e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

const objectsIn = async (target: string) =>
  (await sql.query<import('mysql2').RowDataPacket[]>(
    `SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?) + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?)
          + (SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?) AS n`,
    [target, target, target],
  ))[0][0]!.n as number;

test.each([
  ['a routine', 'routine', 'CREATE FUNCTION answer() RETURNS INT DETERMINISTIC RETURN 42', '1 routine'],
  ['an event', 'event', 'CREATE EVENT sweep ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1', '1 event'],
  ['a view', 'view', 'CREATE VIEW answer AS SELECT 42 AS a', '1 view'],
])('a restore refuses a database that holds only %s, and it stays', async (_what, name, statement, holds) => {
  const target = await guardTarget(name, statement);
  const handle = await env.client.workflow.start('restoreDatabase', { taskQueue: worker.taskQueue, workflowId: `restoreDatabase/${cluster}/${randomUUID()}`, args: [{ cluster, targetDatabase: target }] });
  const failure = await failureOf(handle.result());
  expect(failure.type).toBe('TargetNotEmpty');
  expect(failure.message).toContain(`targetDatabase: ${target} on node mariadb holds ${holds}; restore into an empty database`);
  expect(await objectsIn(target)).toBe(1);
});

test('a table created after the target was checked is never dropped: the restore checks again before it changes anything', async () => {
  const backupFound = await inActivity(() => activities.findBackup({ cluster, verifiedOnly: true }));
  const target = await guardTarget('race');
  expect(await inActivity(() => activities.checkRestoreTarget({ cluster, database: target, overwrite: false }))).toMatchObject({ exists: false, objects: 0 });
  // Between the check step and the restore step, someone creates the database and a table.
  await sql.query(`CREATE DATABASE ${target}; CREATE TABLE ${target}.arrived (id INT PRIMARY KEY); INSERT INTO ${target}.arrived VALUES (7)`);
  const failure = await activityFailure(
    inActivity(() => activities.restoreBackup({ cluster, manifestKey: backupFound.manifestKey, database, targetDatabase: target, overwrite: false })),
  );
  expect(failure.type).toBe('TargetNotEmpty');
  expect(failure.message).toContain(`targetDatabase: ${target} on node mariadb holds 1 table; restore into an empty database`);
  expect(await tableFacts(sql, target)).toEqual({ arrived: { rows: 1, checksum: expect.any(String) as string } });
});

test('a retried restore replaces what its own earlier attempt wrote; another run does not', async () => {
  const backupFound = await inActivity(() => activities.findBackup({ cluster, verifiedOnly: true }));
  const target = await guardTarget('retry');
  const attempt = (runId: string) =>
    inActivity(
      () => activities.restoreBackup({ cluster, manifestKey: backupFound.manifestKey, database, targetDatabase: target, overwrite: false }),
      new MockActivityEnvironment({ workflowExecution: { workflowId: `restoreDatabase/${cluster}`, runId } }, { logger: new DefaultLogger('ERROR') }),
    );
  expect((await attempt('first-run')).differences).toEqual([]);
  // The worker died after the load: the retried attempt finds the database it wrote and does it again.
  expect((await attempt('first-run')).differences).toEqual([]);
  expect(await tableFacts(sql, target)).toEqual(await tableFacts(sql, database));
  // A later restore into it is refused, and says where the database came from.
  const failure = await activityFailure(attempt('second-run'));
  expect(failure.type).toBe('TargetNotEmpty');
  expect(failure.message).toContain(`holds 2 tables, 1 view (written by an earlier restore: db-runbooks restore `);
  expect(failure.message).toContain(`of backup ${backupFound.id})`);
});

test('a backup whose verification finds differences shows the verify step failed (✗), not done', async () => {
  const shown = await cli(['backupDatabase', '--cluster', lossyCluster], { TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: worker.taskQueue });
  expect(shown.code).toBe(1);
  expect(shown.out).toContain(`  ✓ dump: ${database} from mariadb`);
  expect(shown.out).toContain(`  ✗ verify: 2 difference(s): ${database}.customers: 1999 rows, the manifest says 2000; ${database}.events: 2999 rows, the manifest says 3000`);
  expect(shown.out).not.toContain('✓ verify');
  expect(shown.out).toContain('  ✓ manifest: ');
  expect(shown.err).toContain(`does not restore to what its manifest records: ${database}.customers: 1999 rows, the manifest says 2000`);
});

test('a backup that finds the cluster locked by another runbook is skipped and recorded, not queued', async () => {
  const holder = await env.client.workflow.start('lockProbe', {
    taskQueue: worker.taskQueue,
    workflowId: `upgradeCluster/${cluster}`,
    args: [{ cluster, runbook: 'upgradeCluster', holdMs: 60_000, waitSeconds: 60, leaseSeconds: 30 }],
  });
  const deadline = Date.now() + 30_000;
  while ((await env.client.workflow.getHandle(lockWorkflowId(cluster)).query(getLockStateQuery).catch(() => null))?.holder?.workflowId !== holder.workflowId) {
    if (Date.now() > deadline) throw new Error('the probe never got the lock');
    await new Promise((r) => setTimeout(r, 100));
  }
  const handle = await env.client.workflow.start('backupDatabase', { taskQueue: worker.taskQueue, workflowId: `backupDatabase/${cluster}/${randomUUID()}`, args: [{ cluster }] });
  const result = (await handle.result()) as BackupDatabaseResult;
  expect(result.outcome).toBe('skipped');
  expect(result.heldBy).toContain(`upgradeCluster upgradeCluster/${cluster} since`);
  expect(result.summary).toContain(`backup of cluster ${cluster} skipped: the cluster lock is held by upgradeCluster upgradeCluster/${cluster}`);
  const described = await handle.describe();
  expect(described.typedSearchAttributes.get(searchAttributes.outcome)).toBe('skipped');
  expect(String((await handle.query(getProgressQuery)).steps.find((s) => s.name === 'cluster lock')?.state)).toBe('skipped');
  await holder.terminate('test done');
});

test('retention deletes exactly the expired backups and never the newest verified one', async () => {
  // Four earlier backups as the runbook lays them out: dump object and manifest.
  const planted = [
    { id: 'a', startedAt: '2026-01-05T01:00:00.000Z', verified: true },
    { id: 'b', startedAt: '2026-01-10T01:00:00.000Z', verified: false },
    { id: 'c', startedAt: '2026-01-12T01:00:00.000Z', verified: false },
    { id: 'd', startedAt: '2026-01-12T05:00:00.000Z', verified: false },
  ];
  const base = `${retentionPrefix}backups/${retentionCluster}/`;
  for (const p of planted) {
    const objectKey = `${base}${p.id}/${database}.sql.gz`;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: objectKey, Body: 'dump' }));
    const manifest: Partial<BackupManifest> = {
      format: 1, id: p.id, cluster: retentionCluster, workflowId: `backupDatabase/${p.id}`, startedAt: p.startedAt, gtidPosition: '0-10-1', bytes: 4, compression: 'gzip',
      databases: [{ name: database, objectKey } as BackupManifest['databases'][number]],
      verification: p.verified ? { outcome: 'passed', at: p.startedAt, scratchDatabase: 'x', tables: 1, rows: 1, differences: [], durationSeconds: 1 } : null,
    };
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${base}${p.id}/manifest.json`, Body: JSON.stringify(manifest) }));
  }
  const result = await backup({ cluster: retentionCluster });
  // daily 2: today's run and 01-12 (d, the newer of c and d); weekly 2: this week's and 2026-W03 (d);
  // a is the newest verified backup; b and c expire.
  expect(result.retention).toEqual({ kept: [result.backupId, 'd', 'a'], deleted: ['c', 'b'] });
  expect(await listKeys(s3, retentionPrefix)).toEqual(
    [
      `${base}a/${database}.sql.gz`, `${base}a/manifest.json`,
      `${base}d/${database}.sql.gz`, `${base}d/manifest.json`,
      result.databases![0]!.objectKey, result.manifestKey!,
    ].sort(),
  );
});

test('objects without a manifest are removed once they are more than a day old, never the current run\'s', async () => {
  const base = `${retentionPrefix}backups/${retentionCluster}/`;
  for (const id of ['died', 'current']) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${base}${id}/${database}.sql.gz`, Body: 'half a dump' }));
  const before = await listKeys(s3, retentionPrefix);
  // MinIO cannot date an object back, so the activity is asked as it would be in a day and a minute.
  const retention = (now: Date) =>
    inActivity(() => activities.applyBackupRetention({ cluster: retentionCluster, policy: { daily: 2, weekly: 2 }, currentId: 'current', now: now.toISOString() }));
  expect((await retention(new Date())).deleted).toEqual([]);
  expect(await listKeys(s3, retentionPrefix)).toEqual(before);
  expect((await retention(new Date(Date.now() + 86_400_000 + 60_000))).deleted).toEqual(['died']);
  expect(await listKeys(s3, retentionPrefix)).toEqual(before.filter((k) => !k.startsWith(`${base}died/`)));
});
