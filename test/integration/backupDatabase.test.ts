// backupDatabase and restoreDatabase on the real stack: MariaDB 10.11 (3310), MinIO, Temporal. A
// backup restores to equal checksums; a restore never writes over a database that holds tables
// unless told to; a backup that finds the cluster locked is skipped and says by whom; retention
// deletes exactly the expired backups.
import { randomUUID } from 'node:crypto';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Connection } from 'mysql2/promise';
import type { Activities } from '../../activities';
import type { BackupManifest } from '../../activities/backup';
import type { BackupDatabaseResult } from '../../workflows/backupDatabase';
import { getLockStateQuery, getProgressQuery, lockWorkflowId, searchAttributes } from '../../workflows/definitions';
import type { RestoreDatabaseResult } from '../../workflows/restoreDatabase';
import { backupClusterYaml, BUCKET, connectMariadb, listKeys, readManifest, s3Client, tableFacts } from '../helpers/backup';
import { inActivity, realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';

const run = randomUUID().slice(0, 8);
const database = `bk_${run}`;
const copy = `bk_${run}_copy`;
const cluster = `bk-${run}`;
const retentionCluster = `bkret-${run}`;
const s3Prefix = `test-backup-${run}/`;
const retentionPrefix = `test-backup-retention-${run}/`;

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let activities: Activities;
let sql: Connection;
let s3: S3Client;

beforeAll(async () => {
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
      backupClusterYaml(retentionCluster, retentionPrefix, `{ databases: [${database}], verifyEvery: 0, retention: { daily: 2, weekly: 2 } }`),
  );
  env = await startTemporal();
  activities = realActivities(env, profiles);
  worker = await startWorker(env, activities);
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await sql?.query(`DROP DATABASE IF EXISTS ${database}; DROP DATABASE IF EXISTS ${copy}`);
  await sql?.end();
  s3?.destroy();
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
