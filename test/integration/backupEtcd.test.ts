// backupEtcd against the real stack: the snapshot in MinIO restores with etcdctl into an etcd that
// serves the same keys, retention deletes exactly the expired backups, and bad input is refused
// before anything is written.
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Etcd3 } from 'etcd3';
import type { Activities } from '../../activities';
import { backupEtcd } from '../../workflows';
import type { BackupEtcdInput, BackupEtcdResult } from '../../workflows/backupEtcd';
import { getProgressQuery } from '../../workflows/definitions';
import { eventually } from '../helpers/kubernetes';
import { inActivity, realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';
import { startRecordingWebhook, type RecordingWebhook } from '../helpers/webhook';
import { s3Client } from '../helpers/backup';

const run = promisify(execFile);
const id = randomUUID().slice(0, 8);
const cluster = `etcdbk-${id}`;
const s3Prefix = `test-backup-etcd-${id}/`;
const catalog = `${s3Prefix}etcd-backups/${cluster}/`;

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let activities: Activities;
let etcd: Etcd3;
let s3: S3Client;
let webhook: RecordingWebhook;

beforeAll(async () => {
  webhook = await startRecordingWebhook();
  etcd = new Etcd3({ hosts: 'http://127.0.0.1:2379' });
  s3 = s3Client();
  env = await startTemporal();
  const profile = `clusters:
  ${cluster}:
    etcd: { endpoints: [http://127.0.0.1:2379] }
    s3:
      endpoint: http://127.0.0.1:9000
      bucket: db-runbooks
      prefix: ${s3Prefix}
      forcePathStyle: true
      accessKeyId: { env: DBR_LOCAL_S3_ACCESS_KEY }
      secretAccessKey: { env: DBR_LOCAL_S3_SECRET_KEY }
    backup: { retention: { daily: 2, weekly: 1 } }
    notify: { jsonWebhookUrl: ${webhook.url}/json/${cluster} }
  ${cluster}-broken:
    etcd: { endpoints: [http://127.0.0.1:2379], username: root, password: { env: DBR_TEST_UNSET_ETCD_PASSWORD } }
    s3: { endpoint: http://127.0.0.1:9000, bucket: db-runbooks, prefix: ${s3Prefix}, forcePathStyle: true }
    notify: { jsonWebhookUrl: ${webhook.url}/json/${cluster}-broken }
`;
  activities = realActivities(env, testProfiles(profile));
  worker = await startWorker(env, activities);
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await etcd.delete().prefix(`/dbr-test-etcdbk-${id}/`);
  etcd?.close();
  s3?.destroy();
  await webhook?.close();
});

function backup(input: Partial<BackupEtcdInput> = {}, workflowId = `backupEtcd/${cluster}/${randomUUID()}`): Promise<BackupEtcdResult> {
  return env.client.workflow.execute(backupEtcd, { taskQueue: worker.taskQueue, workflowId, args: [{ cluster, ...input }] });
}

async function keysUnder(prefix: string): Promise<string[]> {
  const list = await s3.send(new ListObjectsV2Command({ Bucket: 'db-runbooks', Prefix: prefix }));
  return (list.Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
}

/** Restores the snapshot with etcdctl into a fresh data dir, starts an etcd on it and reads a key back. */
async function restoreAndRead(snapshot: Buffer, key: string): Promise<Buffer | null> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dbr-etcd-restore-'));
  writeFileSync(path.join(dir, 'snapshot.db'), snapshot);
  await run('etcdctl', ['snapshot', 'restore', path.join(dir, 'snapshot.db'), '--data-dir', path.join(dir, 'data'), '--name', 'restored', '--initial-cluster', 'restored=http://127.0.0.1:23980', '--initial-advertise-peer-urls', 'http://127.0.0.1:23980'], {
    env: { ...process.env, ETCDCTL_API: '3' },
  });
  const server = spawn('etcd', ['--name', 'restored', '--data-dir', path.join(dir, 'data'), '--listen-client-urls', 'http://127.0.0.1:23979', '--advertise-client-urls', 'http://127.0.0.1:23979', '--listen-peer-urls', 'http://127.0.0.1:23980', '--initial-advertise-peer-urls', 'http://127.0.0.1:23980', '--initial-cluster', 'restored=http://127.0.0.1:23980'], { stdio: 'ignore' });
  const restored = new Etcd3({ hosts: 'http://127.0.0.1:23979' });
  try {
    return await eventually('the restored etcd to answer', () => restored.get(key).buffer().then((v) => v ?? Buffer.alloc(0)).catch(() => undefined));
  } finally {
    restored.close();
    server.kill('SIGKILL');
  }
}

test('a backup is a snapshot that etcdctl restores into an etcd serving the same bytes, with its manifest written last', async () => {
  const marker = `/dbr-test-etcdbk-${id}/marker`;
  const value = Buffer.from([0, 1, 2, 250, 255, ...Buffer.from(id)]);
  await etcd.put(marker).value(value);
  const workflowId = `backupEtcd/${cluster}/first`;
  const result = await backup({}, workflowId);
  expect(result.outcome).toBe('backed up');
  const folder = `${catalog}backupEtcd_${cluster}_first/`;
  expect(result.backup).toMatchObject({ kind: 'etcd', cluster, workflowId, verified: true, objectKey: `${folder}snapshot.db` });
  expect(await keysUnder(folder)).toEqual(['manifest.json', 'snapshot.db']);

  const object = await s3.send(new GetObjectCommand({ Bucket: 'db-runbooks', Key: `${folder}snapshot.db` }));
  const bytes = Buffer.from(await object.Body!.transformToByteArray());
  expect(bytes.length).toBe(result.backup!.bytes);
  expect(result.backup!.revision).toMatch(/^[1-9]\d*$/);
  expect(object.Metadata).toMatchObject({ sha256: result.backup!.sha256, bytes: String(bytes.length), revision: result.backup!.revision });
  const manifest = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: 'db-runbooks', Key: `${folder}manifest.json` }))).Body!.transformToString()) as Record<string, unknown>;
  expect(manifest).toEqual(result.backup);
  // The manifest is written after the snapshot is whole and checked.
  const [snapshotHead, manifestHead] = await Promise.all(['snapshot.db', 'manifest.json'].map((k) => s3.send(new HeadObjectCommand({ Bucket: 'db-runbooks', Key: `${folder}${k}` }))));
  expect(manifestHead!.LastModified!.getTime()).toBeGreaterThanOrEqual(snapshotHead!.LastModified!.getTime());

  expect((await restoreAndRead(bytes, marker))?.equals(value)).toBe(true);
});

test('retention deletes exactly the expired backups and never an unfinished one or the newest verified', async () => {
  // Earlier nights, as earlier runs would have left them: a manifest each (one unverified), and a
  // folder whose manifest was never written (a run that died half-way).
  const day = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString();
  const earlier = [
    { id: 'night-1', startedAt: day(1), verified: true },
    { id: 'night-2', startedAt: day(2), verified: true },
    { id: 'night-3', startedAt: day(3), verified: true },
    { id: 'night-9', startedAt: day(9), verified: true },
    { id: 'night-20', startedAt: day(20), verified: true },
  ];
  for (const b of earlier) {
    await s3.send(new PutObjectCommand({ Bucket: 'db-runbooks', Key: `${catalog}${b.id}/snapshot.db`, Body: 'old' }));
    await s3.send(new PutObjectCommand({ Bucket: 'db-runbooks', Key: `${catalog}${b.id}/manifest.json`, Body: JSON.stringify({ kind: 'etcd', cluster, workflowId: b.id, ...b }) }));
  }
  await s3.send(new PutObjectCommand({ Bucket: 'db-runbooks', Key: `${catalog}unfinished/snapshot.db.partial`, Body: 'half' }));

  const result = await backup({}, `backupEtcd/${cluster}/second`);
  // daily 2: today's two runs count as one day (the newer, "second"), then night-1; weekly 1: this ISO week's newest (second).
  // "first" ran today as well: the same day as "second", and not the newest of anything: expired.
  expect(result.retention!.kept).toEqual([`backupEtcd_${cluster}_second`, 'night-1']);
  expect(result.retention!.deleted.sort()).toEqual([`backupEtcd_${cluster}_first`, 'night-2', 'night-20', 'night-3', 'night-9'].sort());
  expect(await keysUnder(catalog)).toEqual([`backupEtcd_${cluster}_second/manifest.json`, `backupEtcd_${cluster}_second/snapshot.db`, 'night-1/manifest.json', 'night-1/snapshot.db', 'unfinished/snapshot.db.partial']);
});

test('a folder without a manifest is removed once it is more than a day old, never the current run\'s or a finished backup', async () => {
  // MinIO cannot date an object back, so the activity is asked as it would be tomorrow.
  const sweep = (olderThan: string) => inActivity(() => activities.deleteAbandonedEtcdBackups({ cluster, currentId: 'current', olderThan }));
  await s3.send(new PutObjectCommand({ Bucket: 'db-runbooks', Key: `${catalog}died/snapshot.db`, Body: 'a snapshot whose run died' }));
  await s3.send(new PutObjectCommand({ Bucket: 'db-runbooks', Key: `${catalog}current/snapshot.db`, Body: 'still being written' }));
  const before = await keysUnder(catalog);
  expect(before).toEqual(expect.arrayContaining(['died/snapshot.db', 'current/snapshot.db', 'unfinished/snapshot.db.partial', `backupEtcd_${cluster}_second/manifest.json`]));

  // Today, with the workflow's limit of a day: all too young.
  expect(await sweep(new Date(Date.now() - 86_400_000).toISOString())).toEqual({ deleted: [] });
  expect(await keysUnder(catalog)).toEqual(before);

  // A day and a minute later: the two unfinished folders go, the current run's and the finished backups stay.
  expect(await sweep(new Date(Date.now() + 60_000).toISOString())).toEqual({ deleted: ['died', 'unfinished'] });
  expect(await keysUnder(catalog)).toEqual(before.filter((k) => !k.startsWith('died/') && !k.startsWith('unfinished/')));
  await s3.send(new DeleteObjectCommand({ Bucket: 'db-runbooks', Key: `${catalog}current/snapshot.db` }));
});

test.each([
  [{ whenLocked: 'later' }, 'whenLocked: expected "skip" or "wait"'],
  [{ lockWaitSeconds: -1 }, 'lockWaitSeconds: expected a whole number from 0'],
  [{ cluster: 'Robert"); DROP TABLE' }, 'cluster: expected'],
  [{ cluster: 'no-such-cluster' }, 'no-such-cluster'],
])('bad input %j is refused before anything is written, naming the field', async (input, message) => {
  const before = await keysUnder(catalog);
  const err = await backup(input as Partial<BackupEtcdInput>).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  // An unknown cluster is found by the profile lookup: the activity's failure carries it.
  let cause: Error | undefined = (err as WorkflowFailedError).cause;
  while (cause && !(cause instanceof ApplicationFailure)) cause = cause.cause as Error | undefined;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect((cause as ApplicationFailure).nonRetryable).toBe(true);
  expect(cause!.message).toContain(message);
  expect(await keysUnder(catalog)).toEqual(before);
});

test('a failed backup fails with the cause and notifies once', async () => {
  const workflowId = `backupEtcd/${cluster}-broken/${randomUUID()}`;
  const err = await env.client.workflow
    .execute(backupEtcd, { taskQueue: worker.taskQueue, workflowId, args: [{ cluster: `${cluster}-broken` }] })
    .then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect(webhook.events(`/json/${cluster}-broken`)).toEqual([{ workflowId, kind: 'failed' }]);
  const body = webhook.received.find((r) => r.path === `/json/${cluster}-broken`)!.body;
  expect(body.summary).toMatch(/etcd backup of etcdbk-.*-broken failed: .*DBR_TEST_UNSET_ETCD_PASSWORD/);
  expect((await env.client.workflow.getHandle(workflowId).query(getProgressQuery)).outcome).toBe('failed');
});
