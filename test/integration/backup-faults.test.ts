// backupDatabase through faults on the real stack: MinIO stopped while the dump uploads, MariaDB
// restarted while it dumps (under a client that keeps writing). Each time the dump activity fails
// and is retried, the bucket ends with exactly the final backup (no partial object, no pending
// multipart upload), and the backup restores to exactly what its manifest records.
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Connection } from 'mysql2/promise';
import type { BackupDatabaseResult } from '../../workflows/backupDatabase';
import { backupClusterYaml, connectMariadb, listKeys, pendingUploads, readManifest, s3Client, untilDumpReads } from '../helpers/backup';
import { stack } from '../helpers/stack';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';

const run = randomUUID().slice(0, 8);
const database = `bkf_${run}`;
const cluster = `bkf-${run}`;
const s3Prefix = `test-backup-faults-${run}/`;

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let s3: S3Client;

beforeAll(async () => {
  const sql = await connectMariadb();
  // About 60 MB of incompressible rows: the dump takes seconds and cannot finish inside the buffers
  // of a stalled upload.
  await sql.query(`
    CREATE DATABASE ${database};
    CREATE TABLE ${database}.big (id INT PRIMARY KEY, payload BLOB NOT NULL);
    INSERT INTO ${database}.big SELECT seq, RANDOM_BYTES(1000) FROM ${database}.seq_1_to_60000;
    CREATE TABLE ${database}.ticks (id BIGINT PRIMARY KEY AUTO_INCREMENT, at DATETIME(6) NOT NULL);
  `);
  await sql.end();
  s3 = s3Client();
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, testProfiles(`clusters:\n${backupClusterYaml(cluster, s3Prefix, `{ databases: [${database}], verifyEvery: 1 }`)}`)));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  const sql = await connectMariadb();
  await sql.query(`DROP DATABASE IF EXISTS ${database}`);
  await sql.end();
  s3?.destroy();
});

function startBackup(): Promise<WorkflowHandle> {
  return env.client.workflow.start('backupDatabase', { taskQueue: worker.taskQueue, workflowId: `backupDatabase/${cluster}/${randomUUID()}`, args: [{ cluster }] });
}

/** The attempt the dump activity is at, while it is pending. */
async function dumpAttempt(handle: WorkflowHandle): Promise<number> {
  const pending = (await handle.describe()).raw.pendingActivities ?? [];
  return pending.find((a) => a.activityType?.name === 'dumpDatabases')?.attempt ?? 0;
}

/** The attempt that completed the dump, from the recorded history. */
async function completedDumpAttempt(handle: WorkflowHandle): Promise<number> {
  const events = (await handle.fetchHistory()).events ?? [];
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'dumpDatabases');
  const started = events.find((e) => e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.scheduledEventId) === Number(scheduled?.eventId));
  return started?.activityTaskStartedEventAttributes?.attempt ?? 0;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The bucket holds the backup's dump and manifest, nothing else: no staged object, no pending upload. */
async function expectOnlyTheFinalBackup(result: BackupDatabaseResult): Promise<void> {
  const manifest = await readManifest(s3, result.manifestKey!);
  expect(await listKeys(s3, s3Prefix)).toEqual([manifest.databases[0]!.objectKey, result.manifestKey!].sort());
  expect(await pendingUploads(s3, s3Prefix)).toEqual([]);
  expect(manifest.verification).toMatchObject({ outcome: 'passed', differences: [] });
}

test('MinIO stopped during the upload: the dump is retried and no partial object is left', async () => {
  const watcher = await connectMariadb();
  const handle = await startBackup();
  try {
    await untilDumpReads(watcher, database, 'big');
    await stack('stop', 'minio');
    try {
      await until('the dump activity to fail and be retried', async () => (await dumpAttempt(handle)) >= 2);
    } finally {
      await stack('start', 'minio');
    }
  } finally {
    await watcher.end();
  }
  const result = (await handle.result()) as BackupDatabaseResult;
  expect(result.outcome).toBe('succeeded');
  expect(await completedDumpAttempt(handle)).toBeGreaterThanOrEqual(2);
  await expectOnlyTheFinalBackup(result);
});

test('MariaDB restarted during the dump under a writing client: retried, and the backup is consistent', async () => {
  let writing = true;
  let written = 0;
  const writer = (async () => {
    let c: Connection | undefined;
    while (writing) {
      try {
        c ??= await connectMariadb();
        await c.query(`INSERT INTO ${database}.ticks (at) VALUES (NOW(6))`);
        written += 1;
      } catch {
        c?.destroy();
        c = undefined;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    await c?.end();
  })();
  try {
    await until('the writer to write', () => Promise.resolve(written > 10));
    const handle = await startBackup();
    const watcher = await connectMariadb();
    try {
      await untilDumpReads(watcher, database, 'big');
    } finally {
      watcher.destroy();
    }
    await stack('stop', 'mariadb');
    await stack('start', 'mariadb');
    const result = (await handle.result()) as BackupDatabaseResult;
    expect(result.outcome).toBe('succeeded');
    expect(await completedDumpAttempt(handle)).toBeGreaterThanOrEqual(2);
    // Rows kept arriving during the dump; the restore equals the manifest's counts and checksums, so
    // the dump and the checksums come from one snapshot.
    const manifest = await readManifest(s3, result.manifestKey!);
    expect(manifest.databases[0]!.tables.find((t) => t.name === 'ticks')!.rows).toBeGreaterThan(0);
    await expectOnlyTheFinalBackup(result);
  } finally {
    writing = false;
    await writer;
  }
});
