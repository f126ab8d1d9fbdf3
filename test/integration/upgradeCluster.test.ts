// upgradeCluster and downgradeCluster against the real stack: Temporal, etcd holding the
// database's metadata, MinIO for the backups, kube-apiserver with the StatefulSet controller (the
// test plays the kubelet). In every failure case the cluster must end with the previous image and
// replicas, and the etcd keys byte for byte as they were before the upgrade.
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Etcd3 } from 'etcd3';
import { backupEtcd, downgradeCluster, upgradeCluster } from '../../workflows';
import { approveUpdate, getProgressQuery, rejectUpdate, searchAttributes } from '../../workflows/definitions';
import { applyMigration, type EtcdMigrationSpec } from '../../workflows/etcd-migration';
import type { UpgradeClusterInput } from '../../workflows/upgradeCluster';
import type { ClusterChangeResult } from '../../workflows/upgrade-engine';
import { Kubelet } from '../helpers/kubelet';
import { ADMIN_KUBECONFIG, adminClients, createStatefulSet, createTestNamespace, deleteTestNamespace, eventually, type AdminClients } from '../helpers/kubernetes';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';
import { startRecordingWebhook, type RecordingWebhook } from '../helpers/webhook';
import { spawnWorkerProcess } from '../helpers/worker-process';
import { s3Client } from '../helpers/backup';

const OLD = 'greptime/greptimedb:v0.11.0';
const NEW = 'greptime/greptimedb:v0.12.0';
const BROKEN = 'greptime/greptimedb:v0.12.0-broken';

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let admin: AdminClients;
let kubelet: Kubelet;
let node: { stop(): Promise<void> };
let namespace: string;
let etcd: Etcd3;
let s3: S3Client;
let webhook: RecordingWebhook;
const run = randomUUID().slice(0, 8);
const profilesFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'dbr-upgrade-')), 'clusters.yaml');
let clusterCounter = 0;

interface TestCluster {
  name: string;
  prefix: string;
  s3Prefix: string;
  workload: string;
}

const clusters: TestCluster[] = Array.from({ length: 11 }, (_, i) => ({
  name: `upg-${run}-${i}`,
  prefix: `/dbr-test-${run}-${i}/meta/`,
  s3Prefix: `test-upgrade-${run}-${i}/`,
  workload: `meta-${i}`,
}));

function profilesYaml(ns: string): string {
  return `clusters:\n${clusters
    .map(
      (c) => `  ${c.name}:
    namespace: ${ns}
    workload: { kind: StatefulSet, name: ${c.workload}, selector: app=${c.workload}, container: greptimedb }
    etcd: { endpoints: [http://127.0.0.1:2379], metadataPrefix: ${c.prefix} }
    s3:
      endpoint: http://127.0.0.1:9000
      bucket: db-runbooks
      prefix: ${c.s3Prefix}
      forcePathStyle: true
      accessKeyId: { env: DBR_LOCAL_S3_ACCESS_KEY }
      secretAccessKey: { env: DBR_LOCAL_S3_SECRET_KEY }
    lock: { waitSeconds: 300, leaseSeconds: 30 }
    notify:
      slackWebhookUrl: ${webhook.url}/slack/${c.name}
      jsonWebhookUrl: ${webhook.url}/${c === clusters[1] ? 'broken' : 'json'}/${c.name}
`,
    )
    .join('')}`;
}

/** A cluster of its own for each test: its StatefulSet (2 ready replicas of OLD) and its metadata. */
async function newCluster(keys = 200): Promise<TestCluster> {
  const cluster = clusters[clusterCounter++]!;
  await createStatefulSet(admin, namespace, { name: cluster.workload, replicas: 2, image: OLD, container: 'greptimedb' });
  await readyReplicas(cluster, 2);
  const puts: [string, string | Buffer][] = [];
  for (let i = 0; i < keys; i += 1) puts.push([`${cluster.prefix}catalog/table-${String(i).padStart(5, '0')}`, JSON.stringify({ id: i, name: `t${i}`, spec: { version: 1 } })]);
  puts.push([`${cluster.prefix}schema_version`, '1'], [`${cluster.prefix}legacy/a`, 'A'], [`${cluster.prefix}legacy/b`, Buffer.from([0, 1, 2, 255])], [`${cluster.prefix}not-json`, 'plain']);
  for (let i = 0; i < puts.length; i += 500) await Promise.all(puts.slice(i, i + 500).map(([k, v]) => etcd.put(k).value(v).exec()));
  return cluster;
}

async function readyReplicas(cluster: TestCluster, count: number): Promise<void> {
  await eventually(`${cluster.workload} to have ${count} ready`, async () => {
    const sts = await admin.apps.readNamespacedStatefulSet({ name: cluster.workload, namespace });
    return (sts.status?.readyReplicas ?? 0) === count && (sts.status?.replicas ?? 0) === count ? true : undefined;
  });
}

/** Every key under the prefix with its exact bytes. */
async function metadata(cluster: TestCluster): Promise<Map<string, Buffer>> {
  return new Map(Object.entries(await etcd.getAll().prefix(cluster.prefix).buffers()));
}

async function workloadState(cluster: TestCluster): Promise<{ image: string; replicas: number; ready: number }> {
  const sts = await admin.apps.readNamespacedStatefulSet({ name: cluster.workload, namespace });
  return { image: sts.spec!.template.spec!.containers[0]!.image!, replicas: sts.spec!.replicas!, ready: sts.status?.readyReplicas ?? 0 };
}

/** The JSON notifications a run of the cluster sent; each Slack message must match one of them. */
function notificationsOf(cluster: TestCluster, workflowId: string): string[] {
  const json = webhook.events(`/json/${cluster.name}`).filter((e) => e.workflowId === workflowId).map((e) => e.kind);
  const slack = webhook.received.filter((r) => r.path === `/slack/${cluster.name}` && r.idempotencyKey?.startsWith(`${workflowId}/`)).map((r) => r.idempotencyKey!.slice(workflowId.length + 1));
  expect(slack).toEqual(json);
  return json;
}

/** The etcd snapshot of an upgrade: whole (etcd's trailing SHA-256 of the bbolt file) and as recorded. */
async function expectValidSnapshot(objectKey: string): Promise<void> {
  const object = await s3.send(new GetObjectCommand({ Bucket: 'db-runbooks', Key: objectKey }));
  const bytes = Buffer.from(await object.Body!.transformToByteArray());
  expect(bytes.length).toBeGreaterThan(32);
  const content = bytes.subarray(0, bytes.length - 32);
  expect(createHash('sha256').update(content).digest('hex')).toBe(bytes.subarray(bytes.length - 32).toString('hex'));
  expect(object.Metadata?.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
  // A bbolt file starts with its meta page: magic 0xED0CDAED at offset 16.
  expect(content.readUInt32LE(16)).toBe(0xed0cdaed);
}

async function objectsUnder(prefix: string): Promise<string[]> {
  const list = await s3.send(new ListObjectsV2Command({ Bucket: 'db-runbooks', Prefix: prefix }));
  return (list.Contents ?? []).map((o) => o.Key!.slice(prefix.length)).sort();
}

function migration(cluster: TestCluster, version = '0.12.0'): EtcdMigrationSpec {
  return {
    kind: 'etcd',
    version,
    steps: [
      { op: 'put', key: `${cluster.prefix}schema_version`, value: '2' },
      { op: 'renamePrefix', from: `${cluster.prefix}legacy/`, to: `${cluster.prefix}archive/` },
      { op: 'setJsonField', key: `${cluster.prefix}catalog/table-00007`, path: 'spec.version', value: 2 },
      { op: 'delete', key: `${cluster.prefix}not-json` },
    ],
  };
}

function start(cluster: TestCluster, input: Omit<UpgradeClusterInput, 'cluster'>, taskQueue = worker.taskQueue): Promise<WorkflowHandle<typeof upgradeCluster>> {
  return env.client.workflow.start(upgradeCluster, { taskQueue, workflowId: `upgradeCluster/${cluster.name}`, args: [{ cluster: cluster.name, ...input }] });
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(() => new Error('expected the runbook to fail'), (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

async function expectUnchanged(cluster: TestCluster, before: Map<string, Buffer>): Promise<void> {
  const after = await metadata(cluster);
  expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
  for (const [key, value] of before) expect([key, after.get(key)!.equals(value)]).toEqual([key, true]);
  await readyReplicas(cluster, 2);
  expect(await workloadState(cluster)).toEqual({ image: OLD, replicas: 2, ready: 2 });
  // A rolled-back migration's ledger is cleared: the same upgrade can run again later.
  expect(await etcd.getAll().prefix(`/__db_runbooks/migrations/${cluster.name}/`).keys()).toEqual([]);
}

beforeAll(async () => {
  webhook = await startRecordingWebhook();
  admin = adminClients();
  kubelet = new Kubelet(admin);
  namespace = await createTestNamespace(admin, 'dbr-upgrade');
  writeFileSync(profilesFile, profilesYaml(namespace));
  etcd = new Etcd3({ hosts: 'http://127.0.0.1:2379' });
  s3 = s3Client();
  node = kubelet.autoReady(namespace, 'app', { neverReadyImage: /broken/ });
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, testProfiles(profilesYaml(namespace)), { kubeconfigPath: ADMIN_KUBECONFIG }));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await node?.stop();
  for (const c of clusters) await etcd.delete().prefix(c.prefix.slice(0, c.prefix.indexOf('/meta/') + 1));
  etcd?.close();
  s3?.destroy();
  await webhook?.close();
  if (namespace) await deleteTestNamespace(admin, namespace);
});

test('a successful upgrade migrates the metadata as declared, deploys the image and records the backup', async () => {
  const cluster = await newCluster();
  const before = await metadata(cluster);
  const spec = migration(cluster);
  const handle = await start(cluster, { targetImage: NEW, migration: spec });
  const result: ClusterChangeResult = await handle.result();

  expect(result).toMatchObject({ outcome: 'upgraded', fromImage: OLD, toImage: NEW, replicas: 2 });
  expect(await workloadState(cluster)).toEqual({ image: NEW, replicas: 2, ready: 2 });
  expect(await metadata(cluster)).toEqual(applyMigration(before, spec.steps));
  expect(result.verification!.changes).toEqual({
    added: [`${cluster.prefix}archive/a`, `${cluster.prefix}archive/b`],
    changed: [`${cluster.prefix}catalog/table-00007`, `${cluster.prefix}schema_version`],
    removed: [`${cluster.prefix}legacy/a`, `${cluster.prefix}legacy/b`, `${cluster.prefix}not-json`],
  });
  expect(result.backup.keyCount).toBe(before.size);
  expect(await objectsUnder(`${cluster.s3Prefix}upgrades/upgradeCluster_${cluster.name}/`)).toEqual(['etcd.snapshot.db', 'manifest.json', 'metadata.jsonl.gz']);
  expect(result.snapshot!.objectKey).toBe(`${cluster.s3Prefix}upgrades/upgradeCluster_${cluster.name}/etcd.snapshot.db`);
  await expectValidSnapshot(result.snapshot!.objectKey);
  expect(notificationsOf(cluster, handle.workflowId)).toEqual(['started', 'succeeded']);
  const progress = await handle.query(getProgressQuery);
  expect(progress.outcome).toBe('succeeded');
  expect(progress.steps.filter((s) => s.state !== 'done' && s.state !== 'skipped')).toEqual([]);
  expect(JSON.parse((await etcd.get(`/__db_runbooks/migrations/${cluster.name}/0.12.0`).string())!)).toEqual({ stepsDone: 4, of: 4 });

  // downgradeCluster undoes it with the upgrade's own backup: keys byte for byte, the old image.
  const down = await env.client.workflow.execute(downgradeCluster, {
    taskQueue: worker.taskQueue,
    workflowId: `downgradeCluster/${cluster.name}`,
    args: [{ cluster: cluster.name, upgradeWorkflowId: `upgradeCluster/${cluster.name}` }],
  });
  expect(down).toMatchObject({ outcome: 'downgraded', fromImage: NEW, toImage: OLD });
  await expectUnchanged(cluster, before);
  expect(notificationsOf(cluster, `downgradeCluster/${cluster.name}`)).toEqual(['started', 'succeeded']);
});

test('a dry-run-only upgrade reports what would change and leaves everything as it was', async () => {
  const cluster = await newCluster();
  const before = await metadata(cluster);
  const handle = await start(cluster, { targetImage: NEW, migration: migration(cluster), dryRunOnly: true });
  const result = await handle.result();
  expect(result.outcome).toBe('dry-run');
  // This cluster's JSON webhook is down: recorded in the progress, and the runbook still succeeded.
  expect(cluster).toBe(clusters[1]);
  expect((await handle.query(getProgressQuery)).notifications).toEqual([
    { kind: 'started', delivered: ['slack'], failed: [{ webhook: 'json', error: 'HTTP 500' }] },
    { kind: 'succeeded', delivered: ['slack'], failed: [{ webhook: 'json', error: 'HTTP 500' }] },
  ]);
  expect(result.summary).toContain('the migration would add 2, change 2 and remove 3 key(s)');
  await expectUnchanged(cluster, before);
  expect(await etcd.getAll().prefix('/__db_runbooks/scratch/').keys()).toEqual([]);
});

test('a migration that fails half-way is rolled back: keys byte for byte, previous image and replicas', async () => {
  const cluster = await newCluster();
  const spec = migration(cluster);
  const handle = await start(cluster, { targetImage: NEW, migration: spec, requireApproval: true });
  await eventually('the approval gate', async () => ((await handle.query(getProgressQuery)).approval?.state === 'waiting' ? true : undefined));
  // The state to restore is the one the upgrade backed up; the dry-run passed on it.
  const before = await metadata(cluster);
  // Someone writes while the service is stopped: step 3 (setJsonField) now meets a value that is not JSON.
  await etcd.put(`${cluster.prefix}catalog/table-00007`).value('not json any more');
  before.set(`${cluster.prefix}catalog/table-00007`, Buffer.from('not json any more'));
  await handle.executeUpdate(approveUpdate, { args: [{ by: 'test', comment: 'go' }] });

  const failure = await failureOf(handle.result());
  expect(failure.type).toBe('UpgradeFailed');
  expect(failure.message).toMatch(/failed at "change metadata": migration step 2 \(setJsonField\) failed: .*not JSON; rolled back \(metadata restored: \d+ keys equal to the backup; greptime\/greptimedb:v0.11.0 × 2 ready\)/);
  // The restore puts back the backup, taken before the stray write: that write is undone too.
  before.set(`${cluster.prefix}catalog/table-00007`, Buffer.from(JSON.stringify({ id: 7, name: 't7', spec: { version: 1 } })));
  await expectUnchanged(cluster, before);
  expect((await handle.query(getProgressQuery)).outcome).toBe('rolled back');
  expect(notificationsOf(cluster, handle.workflowId)).toEqual(['started', 'rolled back']);
});

test('a deploy whose pods never become ready hits its deadline and is rolled back', async () => {
  const cluster = await newCluster();
  const before = await metadata(cluster);
  const handle = await start(cluster, { targetImage: BROKEN, migration: migration(cluster), rolloutTimeoutSeconds: 8 });
  const failure = await failureOf(handle.result());
  expect(failure.message).toMatch(/failed at "deploy": .*not done by/);
  expect(failure.message).toContain('metadata restored');
  await expectUnchanged(cluster, before);
  expect(notificationsOf(cluster, handle.workflowId)).toEqual(['started', 'rolled back']);
});

test('a cancellation mid-way rolls back before the run ends', async () => {
  const cluster = await newCluster();
  const before = await metadata(cluster);
  const handle = await start(cluster, { targetImage: NEW, migration: migration(cluster), requireApproval: true });
  await eventually('the approval gate', async () => ((await handle.query(getProgressQuery)).approval?.state === 'waiting' ? true : undefined));
  expect((await workloadState(cluster)).replicas).toBe(0);
  await handle.cancel();
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((await handle.describe()).status.name).toBe('CANCELLED');
  await expectUnchanged(cluster, before);
  const progress = await handle.query(getProgressQuery);
  expect(progress.outcome).toBe('cancelled');
  expect(progress.steps.find((s) => s.name === 'roll back: redeploy previous version')?.state).toBe('compensated');
  expect(notificationsOf(cluster, handle.workflowId)).toEqual(['started', 'cancelled']);
});

test('a rejected approval restarts the service unchanged and says who rejected it and why', async () => {
  const cluster = await newCluster();
  const before = await metadata(cluster);
  const handle = await start(cluster, { targetImage: NEW, migration: migration(cluster), requireApproval: true });
  await eventually('the approval gate', async () => ((await handle.query(getProgressQuery)).approval?.state === 'waiting' ? true : undefined));
  await handle.executeUpdate(rejectUpdate, { args: [{ by: 'dba-on-call', reason: 'not during the sale' }] });
  const failure = await failureOf(handle.result());
  expect(failure.type).toBe('ApprovalRejected');
  expect(failure.message).toContain('rejected by dba-on-call: not during the sale');
  await expectUnchanged(cluster, before);
});

test('a second upgrade of the same cluster is refused while one runs', async () => {
  const cluster = await newCluster();
  const first = await start(cluster, { targetImage: NEW, requireApproval: true });
  await expect(start(cluster, { targetImage: NEW })).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
  await eventually('the approval gate', async () => ((await first.query(getProgressQuery)).approval?.state === 'waiting' ? true : undefined));
  await first.executeUpdate(rejectUpdate, { args: [{ reason: 'test over' }] });
  expect((await failureOf(first.result())).type).toBe('ApprovalRejected');
});

test('the worker killed during the backup: the upgrade completes after a restart, with one backup', async () => {
  const cluster = await newCluster(20_000);
  const taskQueue = `upgrade-kill-${run}`;
  const workerEnv = { TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: taskQueue, DBR_PROFILES: profilesFile, DBR_KUBECONFIG: ADMIN_KUBECONFIG };
  let process1 = spawnWorkerProcess(workerEnv);
  await process1.waitUntilPolling();
  const before = await metadata(cluster);
  const spec = migration(cluster);
  const handle = await start(cluster, { targetImage: NEW, migration: spec }, taskQueue);
  try {
    await eventually('the backup to start', async () => ((await handle.query(getProgressQuery)).currentStep === 'back up metadata' ? true : undefined), 120_000);
    await process1.kill('SIGKILL');
    process1 = spawnWorkerProcess(workerEnv);
    await process1.waitUntilPolling();
    const result = await handle.result();
    expect(result.outcome).toBe('upgraded');
    expect(await metadata(cluster)).toEqual(applyMigration(before, spec.steps));
    // The retried backup wrote the same objects again: one dump, one snapshot, no partial upload.
    expect(await objectsUnder(`${cluster.s3Prefix}upgrades/upgradeCluster_${cluster.name}/`)).toEqual(['etcd.snapshot.db', 'manifest.json', 'metadata.jsonl.gz']);
    await expectValidSnapshot(result.snapshot!.objectKey);
    expect(result.backup.keyCount).toBe(before.size);
    expect(notificationsOf(cluster, handle.workflowId)).toEqual(['started', 'succeeded']);
  } finally {
    await process1.kill();
  }
});

test.each([
  [{}, 'targetImage: required'],
  [{ targetImage: 'Not An Image!' }, 'targetImage: expected an image reference'],
  [{ targetImage: NEW, migration: { kind: 'etcd', version: '1', steps: [{ op: 'put', key: '/elsewhere/x', value: '1' }] } }, 'migration.steps[0].key: expected a key under the metadata prefix'],
  [{ targetImage: NEW, rolloutTimeoutSeconds: 0 }, 'rolloutTimeoutSeconds: expected a whole number from 5 to 86400'],
])('bad input %j is refused before any side effect, naming the field', async (input, message) => {
  const cluster = clusters[clusters.length - 1]!;
  if (!(await admin.apps.readNamespacedStatefulSet({ name: cluster.workload, namespace }).catch(() => undefined))) {
    await createStatefulSet(admin, namespace, { name: cluster.workload, replicas: 2, image: OLD, container: 'greptimedb' });
    await readyReplicas(cluster, 2);
  }
  const failure = await failureOf(
    env.client.workflow.execute(upgradeCluster, { taskQueue: worker.taskQueue, workflowId: `upgradeCluster/${cluster.name}`, args: [{ cluster: cluster.name, ...input } as UpgradeClusterInput] }),
  );
  expect(failure.type).toBe('InvalidInput');
  expect(failure.nonRetryable).toBe(true);
  expect(failure.message).toContain(message);
  expect(await workloadState(cluster)).toEqual({ image: OLD, replicas: 2, ready: 2 });
});

test('two upgrades of one cluster: the second waits for the lock, then runs', async () => {
  const cluster = await newCluster();
  const first = await start(cluster, { targetImage: NEW, requireApproval: true });
  await eventually('the approval gate', async () => ((await first.query(getProgressQuery)).approval?.state === 'waiting' ? true : undefined));
  // Started by hand from the UI under another id: the cluster lock, not the id, keeps it apart.
  const second = await env.client.workflow.start(upgradeCluster, {
    taskQueue: worker.taskQueue,
    workflowId: `upgradeCluster/${cluster.name}/manual-2`,
    args: [{ cluster: cluster.name, targetImage: NEW, dryRunOnly: true }],
  });
  await eventually('the second to wait for the lock', async () => {
    const progress = await second.query(getProgressQuery);
    return progress.currentStep === 'cluster lock' && progress.steps.find((s) => s.name === 'pre-flight')?.state === 'pending' ? true : undefined;
  });
  expect(await workloadState(cluster)).toMatchObject({ replicas: 0 });
  await first.executeUpdate(approveUpdate, { args: [{ by: 'test' }] });
  expect((await first.result()).outcome).toBe('upgraded');
  const dryRun = await second.result();
  expect(dryRun).toMatchObject({ outcome: 'dry-run', fromImage: NEW });
});

test('a scheduled etcd backup during an upgrade is skipped and recorded, and the upgrade goes on', async () => {
  const cluster = await newCluster();
  const upgrade = await start(cluster, { targetImage: NEW, requireApproval: true });
  await eventually('the approval gate', async () => ((await upgrade.query(getProgressQuery)).approval?.state === 'waiting' ? true : undefined));
  // As a Schedule starts it: only the cluster in the input.
  const backupId = `backupEtcd/${cluster.name}/scheduled-${run}`;
  const skipped = await env.client.workflow.execute(backupEtcd, { taskQueue: worker.taskQueue, workflowId: backupId, args: [{ cluster: cluster.name }] });
  expect(skipped.outcome).toBe('skipped');
  expect(skipped.summary).toContain(`locked by upgradeCluster upgradeCluster/${cluster.name}`);
  const progress = await env.client.workflow.getHandle(backupId).query(getProgressQuery);
  expect(progress.outcome).toBe('skipped');
  expect(progress.steps.find((s) => s.name === 'snapshot')).toMatchObject({ state: 'skipped', detail: 'the cluster is locked' });
  expect(notificationsOf(cluster, backupId)).toEqual(['skipped']);
  // The memo and the search attribute say so in the UI's list of runs.
  const described = await env.client.workflow.getHandle(backupId).describe();
  expect(described.typedSearchAttributes.get(searchAttributes.outcome)).toBe('skipped');
  expect(await objectsUnder(`${cluster.s3Prefix}etcd-backups/`)).toEqual([]);

  await upgrade.executeUpdate(approveUpdate, { args: [{ by: 'test' }] });
  expect((await upgrade.result()).outcome).toBe('upgraded');
});
