// bench/upgrade: how long the service is stopped during an upgrade, split into the raw work (the
// activities: backup bytes, dry-run, migration, deploy) and the orchestration around it (workflow
// tasks, scheduling), at two metadata sizes; and the backup step side by side with the plain tool
// (`etcdctl get --prefix -w json | gzip`) in the same run.
//   npm run bench:upgrade [-- --sizes 10,500]     sizes in MB of metadata (default 10 and 500)
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { Etcd3 } from 'etcd3';
import { createActivities, createConnectors } from '../activities';
import { parseProfiles } from '../activities/profile';
import { workerOptions } from '../worker/options';
import { getProgressQuery, searchAttributes } from '../workflows/definitions';
import { Kubelet } from '../test/helpers/kubelet';
import { ADMIN_KUBECONFIG, adminClients, createStatefulSet, createTestNamespace, deleteTestNamespace } from '../test/helpers/kubernetes';
import { stackSecrets, TEMPORAL_BINARY } from '../test/helpers/stack';

const run = promisify(execFile);
const VALUE_BYTES = 2048;
const STOPPED_STEPS = ['stop service', 'back up metadata', 'dry-run', 'approval', 'change metadata', 'deploy'];

function argSizes(): number[] {
  const i = process.argv.indexOf('--sizes');
  return (i > 0 ? process.argv[i + 1]! : '10,500').split(',').map(Number);
}

function ms(t: temporal.api.history.v1.IHistoryEvent): number {
  return Number(t.eventTime!.seconds) * 1000 + Math.floor((t.eventTime!.nanos ?? 0) / 1e6);
}

/** Gives the shared stack's etcd its space back: the run's history compacted, the file defragmented. */
async function shrinkEtcd(etcd: Etcd3): Promise<void> {
  const { header } = await etcd.maintenance.status();
  await etcd.kv.compact({ revision: header.revision, physical: true });
  await etcd.maintenance.defragment();
}

async function seed(etcd: Etcd3, prefix: string, megabytes: number): Promise<number> {
  const keys = Math.ceil((megabytes * 1024 * 1024) / VALUE_BYTES);
  const filler = randomBytes(VALUE_BYTES / 2).toString('hex').slice(0, VALUE_BYTES - 80);
  for (let i = 0; i < keys; i += 100) {
    const ops = [];
    for (let j = i; j < Math.min(keys, i + 100); j += 1) {
      ops.push({ request_put: { key: Buffer.from(`${prefix}catalog/t${String(j).padStart(7, '0')}`), value: Buffer.from(JSON.stringify({ id: j, spec: { version: 1 }, pad: filler })) } });
    }
    await etcd.kv.txn({ compare: [], success: ops, failure: [] });
  }
  await etcd.put(`${prefix}schema_version`).value('1');
  return keys + 1;
}

async function main(): Promise<void> {
  Object.assign(process.env, stackSecrets());
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const admin = adminClients();
  const kubelet = new Kubelet(admin);
  const namespace = await createTestNamespace(admin, 'dbr-bench-upgrade');
  const node = kubelet.autoReady(namespace, 'app');
  const id = randomUUID().slice(0, 8);
  const etcd = new Etcd3({ hosts: 'http://127.0.0.1:2379' });
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'existing-path', path: TEMPORAL_BINARY }, ip: '127.0.0.1', searchAttributes: Object.values(searchAttributes), extraArgs: ['--log-level', 'error'] },
  });
  const rows: string[] = [];
  try {
    for (const [n, megabytes] of argSizes().entries()) {
      const cluster = `bench-${id}-${n}`;
      const prefix = `/dbr-bench-${id}-${n}/meta/`;
      const profiles = parseProfiles(
        `clusters:
  ${cluster}:
    namespace: ${namespace}
    workload: { kind: StatefulSet, name: meta-${n}, selector: app=meta-${n}, container: greptimedb }
    etcd: { endpoints: [http://127.0.0.1:2379], metadataPrefix: ${prefix} }
    s3:
      endpoint: http://127.0.0.1:9000
      bucket: db-runbooks
      prefix: bench-upgrade-${id}-${n}/
      forcePathStyle: true
      accessKeyId: { env: DBR_LOCAL_S3_ACCESS_KEY }
      secretAccessKey: { env: DBR_LOCAL_S3_SECRET_KEY }
    # The dump, the scratch copy of the dry-run and the restores put GBs of history into etcd at
    # 500 MB of metadata: the health check's default 2 GB limit would roll the upgrade back.
    health: { maxEtcdDbSizeBytes: 17179869184 }
`,
        'bench profile',
        process.cwd(),
      );
      await createStatefulSet(admin, namespace, { name: `meta-${n}`, replicas: 2, image: 'greptime/greptimedb:v0.11.0', container: 'greptimedb' });
      try {
      const keys = await seed(etcd, prefix, megabytes);

      // The plain tool, on the same keys, in the same run.
      const plainStarted = performance.now();
      await run('bash', ['-c', `ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2379 get --prefix '${prefix}' -w json | gzip > /dev/null`], { maxBuffer: 1024 });
      const plainMs = performance.now() - plainStarted;
      const snapshotFile = path.join(os.tmpdir(), `dbr-bench-${id}-${n}.db`);
      const plainSnapshotStarted = performance.now();
      await run('bash', ['-c', `ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:2379 snapshot save '${snapshotFile}' > /dev/null && rm -f '${snapshotFile}'`], { maxBuffer: 1024 * 1024 });
      const plainSnapshotMs = performance.now() - plainSnapshotStarted;

      const taskQueue = `bench-upgrade-${id}-${n}`;
      const activities = createActivities({ ...createConnectors({ profiles, profileSource: 'bench profile', kubeconfigPath: ADMIN_KUBECONFIG }), client: env.client }, { kubernetesPollIntervalMs: 200 });
      const worker = await Worker.create(
        workerOptions({
          connection: env.nativeConnection,
          config: { temporal: { address: env.address, namespace: 'default' }, taskQueue, maxConcurrentActivities: 20, maxConcurrentWorkflowTasks: 10, maxCachedWorkflows: 100, shutdownGraceSeconds: 5 },
          activities,
          workflowBundlePath: path.join(__dirname, '..', 'dist', 'workflow-bundle.js'),
        }),
      );
      const ran = await worker.runUntil(async () => {
        const h = await env.client.workflow.start('upgradeCluster', {
          taskQueue,
          workflowId: `upgradeCluster/${cluster}`,
          args: [{
            cluster,
            targetImage: 'greptime/greptimedb:v0.12.0',
            migration: { kind: 'etcd', version: '0.12.0', steps: [
              { op: 'put', key: `${prefix}schema_version`, value: '2' },
              { op: 'setJsonField', key: `${prefix}catalog/t0000007`, path: 'spec.version', value: 2 },
            ] },
          }],
        });
        await h.result();
        // Queried while the worker still runs: a query needs a worker to answer it.
        return { h, progress: await h.query(getProgressQuery) };
      });
      const { h: handle, progress } = ran;
      const history = await handle.fetchHistory();
      // Activity time per step: from each activity's start to its completion, as the server recorded them.
      const scheduled = new Map<number, { type: string; at: number }>();
      const started = new Map<number, number>();
      const spans: { type: string; start: number; end: number }[] = [];
      for (const e of history.events!) {
        const id2 = Number(e.eventId);
        if (e.activityTaskScheduledEventAttributes) scheduled.set(id2, { type: e.activityTaskScheduledEventAttributes.activityType!.name!, at: ms(e) });
        if (e.activityTaskStartedEventAttributes) started.set(Number(e.activityTaskStartedEventAttributes.scheduledEventId), ms(e));
        const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
        if (done) {
          const sid = Number(done.scheduledEventId);
          spans.push({ type: scheduled.get(sid)!.type, start: started.get(sid)!, end: ms(e) });
        }
      }
      const stepRows: string[] = [];
      let windowMs = 0;
      let workMs = 0;
      for (const name of STOPPED_STEPS) {
        const step = progress.steps.find((s) => s.name === name);
        if (!step?.startedAt || !step.endedAt) continue;
        const from = Date.parse(step.startedAt);
        const to = Date.parse(step.endedAt);
        const work = spans.filter((s) => s.start >= from - 5 && s.end <= to + 5).reduce((sum, s) => sum + (s.end - s.start), 0);
        windowMs += to - from;
        workMs += Math.min(work, to - from);
        stepRows.push(`| ${megabytes} MB | ${name} | ${((to - from) / 1000).toFixed(2)} s | ${(work / 1000).toFixed(2)} s | ${(Math.max(0, to - from - work) / 1000).toFixed(2)} s |`);
      }
      const dump = spans.find((s) => s.type === 'dumpMetadata')!;
      const snapshot = spans.find((s) => s.type === 'snapshotEtcdToS3')!;
      rows.push(
        `\n### ${megabytes} MB of metadata (${keys} keys of ~${VALUE_BYTES} bytes)`,
        '| size | step | duration | activity work | orchestration |',
        '| --- | --- | --- | --- | --- |',
        ...stepRows,
        `service stopped for ${(windowMs / 1000).toFixed(2)} s: raw work ${(workMs / 1000).toFixed(2)} s, orchestration overhead ${((windowMs - workMs) / 1000).toFixed(2)} s = ${(((windowMs - workMs) / windowMs) * 100).toFixed(1)}% of the window`,
        `backup side by side: this project's dump to MinIO ${((dump.end - dump.start) / 1000).toFixed(2)} s (read, gzip, upload, verify) vs etcdctl get | gzip > /dev/null ${(plainMs / 1000).toFixed(2)} s: ratio ${((dump.end - dump.start) / plainMs).toFixed(2)}`,
        `snapshot side by side: this project's etcd snapshot to MinIO ${((snapshot.end - snapshot.start) / 1000).toFixed(2)} s (stream, hash check, upload, verify) vs etcdctl snapshot save to local disk ${(plainSnapshotMs / 1000).toFixed(2)} s: ratio ${((snapshot.end - snapshot.start) / plainSnapshotMs).toFixed(2)}`,
      );
      } finally {
        await etcd.delete().prefix(`/dbr-bench-${id}-${n}/`);
        await etcd.delete().prefix(`/__db_runbooks/migrations/${cluster}/`);
        await shrinkEtcd(etcd);
      }
    }
  } finally {
    await env.teardown();
    await node.stop();
    etcd.close();
    await deleteTestNamespace(admin, namespace);
  }
  console.log(`\nbench/upgrade — ${new Date().toISOString()}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}`);
  console.log(rows.join('\n'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
