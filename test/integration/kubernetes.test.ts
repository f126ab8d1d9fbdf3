// The Kubernetes activities against the stack's real kube-apiserver and controllers. Activities
// run in Temporal's activity context (MockActivityEnvironment: heartbeats, cancellation, retry
// info); the test plays the kubelet (test/helpers/kubelet.ts) so pods become ready, move, crash
// and finish. Each test acts on its own workload in a namespace made for this file.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import type { Info } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { kubernetesClientsFor, followPodAddresses, type PodAddressChange, type PodAddressWatchState } from '../../activities/kubernetes';
import { Kubelet } from '../helpers/kubelet';
import {
  ADMIN_KUBECONFIG,
  WORKER_KUBECONFIG,
  adminClients,
  createDeployment,
  createStatefulSet,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  inSeconds,
  kubeConfigFrom,
  type AdminClients,
} from '../helpers/kubernetes';
import { stack } from '../helpers/stack';
import { serverActivities, testProfiles, type ServerActivities } from '../helpers/temporal';

const exec = promisify(execFile);

/** Compacts the apiserver's own etcd up to its current revision, as the apiserver does every five minutes. */
async function compactKubeEtcd(): Promise<void> {
  const endpoint = `http://127.0.0.1:${process.env.KUBE_ETCD_PORT ?? 2381}`;
  const { stdout } = await exec('etcdctl', ['--endpoints', endpoint, 'endpoint', 'status', '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } });
  const [status] = JSON.parse(stdout) as { Status: { header: { revision: number } } }[];
  await exec('etcdctl', ['--endpoints', endpoint, 'compact', String(status!.Status.header.revision)], { env: { ...process.env, ETCDCTL_API: '3' } });
}

let admin: AdminClients;
let namespace: string;
let kubelet: Kubelet;
let activities: ServerActivities;

/** One cluster per workload, each in this file's namespace. */
function profilesYaml(ns: string): string {
  const workload = (cluster: string, kind: string, name: string, container = 'mariadb') =>
    `  ${cluster}:\n    namespace: ${ns}\n    workload: { kind: ${kind}, name: ${name}, selector: app=${name}, container: ${container}, roleLabel: role }\n`;
  return `clusters:
${workload('scaled', 'StatefulSet', 'scaled')}${workload('web', 'Deployment', 'web', 'app')}${workload('rolled', 'StatefulSet', 'rolled')}${workload('stuck', 'StatefulSet', 'stuck')}${workload('listed', 'StatefulSet', 'listed')}${workload('watched', 'StatefulSet', 'watched')}${workload('pending', 'StatefulSet', 'pending')}  jobs:
    namespace: ${ns}
  secret-db:
    namespace: ${ns}
    mysql:
      topology: standalone
      user: runbook
      password: { kubernetes: { name: mysql-credentials, key: password } }
      nodes: [{ name: mariadb, host: 127.0.0.1, port: 3310 }]
  secret-missing-key:
    namespace: ${ns}
    mysql:
      topology: standalone
      user: runbook
      password: { kubernetes: { name: mysql-credentials, key: no-such-key } }
      nodes: [{ name: mariadb, host: 127.0.0.1, port: 3310 }]
`;
}

beforeAll(async () => {
  admin = adminClients();
  namespace = await createTestNamespace(admin, 'dbr-k8s');
  kubelet = new Kubelet(admin);
  activities = serverActivities(testProfiles(profilesYaml(namespace)), { kubeconfigPath: ADMIN_KUBECONFIG });
});

afterAll(async () => {
  if (namespace) await deleteTestNamespace(admin, namespace);
});

function activityEnvironment(info: Partial<Info> = {}) {
  const env = new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR') });
  const heartbeats: unknown[] = [];
  env.on('heartbeat', (details: unknown) => heartbeats.push(details));
  return { heartbeats, run: <R>(activity: () => Promise<R>): Promise<R> => env.run(activity), cancel: () => env.cancel() };
}

function run<R>(activity: () => Promise<R>): Promise<R> {
  return activityEnvironment().run(activity);
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => {
      throw new Error('expected the activity to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

async function readyPods(selector: string): Promise<string[]> {
  const list = await admin.core.listNamespacedPod({ namespace, labelSelector: selector });
  return list.items
    .filter((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
    .map((p) => p.metadata!.name!)
    .sort();
}

describe('scale', () => {
  test('a StatefulSet scales up once its new pods are ready, a repeat changes nothing, and it scales down', async () => {
    await createStatefulSet(admin, namespace, { name: 'scaled', replicas: 1, image: 'mariadb:10.11' });
    const node = kubelet.autoReady(namespace, 'app=scaled');
    try {
      const { run: runRecorded, heartbeats } = activityEnvironment();
      const up = await runRecorded(() => activities.scaleWorkload({ cluster: 'scaled', replicas: 3, deadline: inSeconds(90) }));
      expect(up).toMatchObject({ kind: 'StatefulSet', name: 'scaled', namespace, replicas: 3, changed: true, desired: 3, current: 3, ready: 3 });
      expect(await readyPods('app=scaled')).toEqual(['scaled-0', 'scaled-1', 'scaled-2']);
      expect(heartbeats.at(-1)).toMatchObject({ replicas: 3, progress: { desired: 3, ready: 3 } });

      const again = await run(() => activities.scaleWorkload({ cluster: 'scaled', replicas: 3, deadline: inSeconds(30) }));
      expect(again).toMatchObject({ changed: false, ready: 3 });
      const sts = await admin.apps.readNamespacedStatefulSet({ name: 'scaled', namespace });
      expect(sts.metadata?.generation).toBe(2);

      const down = await run(() => activities.scaleWorkload({ cluster: 'scaled', replicas: 1, deadline: inSeconds(60) }));
      expect(down).toMatchObject({ changed: true, desired: 1, current: 1, ready: 1 });
      expect(await kubelet.podNames(namespace, 'app=scaled')).toEqual(['scaled-0']);
    } finally {
      await node.stop();
    }
  });

  test('a bad replica count or deadline is refused before anything changes', async () => {
    const failure = await failureOf(run(() => activities.scaleWorkload({ cluster: 'scaled', replicas: -1, deadline: inSeconds(10) })));
    expect(failure).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(failure.message).toBe('replicas: expected a whole number >= 0, got -1');
    const late = await failureOf(run(() => activities.scaleWorkload({ cluster: 'scaled', replicas: 2, deadline: 'soon' })));
    expect(late.message).toMatch(/^deadline: expected an ISO 8601 time/);
    expect((await admin.apps.readNamespacedStatefulSet({ name: 'scaled', namespace })).spec?.replicas).toBe(1);
  });
});

describe('image rollout', () => {
  test('a StatefulSet rolls out the new image pod by pod, its sidecar untouched; a repeat changes nothing', async () => {
    await createStatefulSet(admin, namespace, {
      name: 'rolled', replicas: 2, image: 'mariadb:10.11', sidecars: [{ name: 'exporter', image: 'mysqld-exporter:0.15' }],
    });
    const node = kubelet.autoReady(namespace, 'app=rolled');
    try {
      await eventually('both rolled pods ready', async () => ((await readyPods('app=rolled')).length === 2 ? true : undefined));
      const { run: runRecorded, heartbeats } = activityEnvironment();
      const result = await runRecorded(() => activities.setWorkloadImage({ cluster: 'rolled', image: 'mariadb:11.4', deadline: inSeconds(120) }));
      expect(result).toMatchObject({ container: 'mariadb', image: 'mariadb:11.4', previousImage: 'mariadb:10.11', changed: true, desired: 2, updated: 2, ready: 2 });
      expect(heartbeats[0]).toEqual({ previousImage: 'mariadb:10.11', changed: true });

      const pods = await admin.core.listNamespacedPod({ namespace, labelSelector: 'app=rolled' });
      expect(pods.items.map((p) => p.spec!.containers.map((c) => `${c.name}=${c.image}`))).toEqual([
        ['mariadb=mariadb:11.4', 'exporter=mysqld-exporter:0.15'],
        ['mariadb=mariadb:11.4', 'exporter=mysqld-exporter:0.15'],
      ]);

      const generation = (await admin.apps.readNamespacedStatefulSet({ name: 'rolled', namespace })).metadata?.generation;
      const again = await run(() => activities.setWorkloadImage({ cluster: 'rolled', image: 'mariadb:11.4', deadline: inSeconds(30) }));
      expect(again).toMatchObject({ changed: false, image: 'mariadb:11.4' });
      expect((await admin.apps.readNamespacedStatefulSet({ name: 'rolled', namespace })).metadata?.generation).toBe(generation);

      // A retry after the first attempt patched and died reports what that attempt did, from its heartbeat.
      const retry = activityEnvironment({ attempt: 2, heartbeatDetails: { previousImage: 'mariadb:10.11', changed: true } });
      expect(await retry.run(() => activities.setWorkloadImage({ cluster: 'rolled', image: 'mariadb:11.4', deadline: inSeconds(30) }))).toMatchObject({
        previousImage: 'mariadb:10.11',
        changed: true,
      });
    } finally {
      await node.stop();
    }
  });

  test('a Deployment scales and rolls out to a new ReplicaSet, the old pods gone', async () => {
    await createDeployment(admin, namespace, { name: 'web', replicas: 1, image: 'nginx:1.26', container: 'app' });
    const node = kubelet.autoReady(namespace, 'app=web');
    try {
      const scaled = await run(() => activities.scaleWorkload({ cluster: 'web', replicas: 2, deadline: inSeconds(60) }));
      expect(scaled).toMatchObject({ kind: 'Deployment', changed: true, desired: 2, ready: 2 });
      const result = await run(() => activities.setWorkloadImage({ cluster: 'web', image: 'nginx:1.27', deadline: inSeconds(120) }));
      expect(result).toMatchObject({ kind: 'Deployment', previousImage: 'nginx:1.26', changed: true, desired: 2, updated: 2, available: 2, current: 2 });
      const pods = await eventually('only new pods left', async () => {
        const list = await admin.core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
        return list.items.length === 2 ? list.items : undefined;
      });
      expect(pods.map((p) => p.spec!.containers[0]!.image)).toEqual(['nginx:1.27', 'nginx:1.27']);
    } finally {
      await node.stop();
    }
  });

  test('a rollout whose new pod never becomes ready fails at the deadline, naming the pod and why', async () => {
    await createStatefulSet(admin, namespace, { name: 'stuck', replicas: 1, image: 'mariadb:10.11' });
    await eventually('stuck-0 created', () => kubelet.podNames(namespace, 'app=stuck').then((n) => (n.length ? n : undefined)));
    await kubelet.markRunning(namespace, 'stuck-0');
    const failure = await failureOf(run(() => activities.setWorkloadImage({ cluster: 'stuck', image: 'mariadb:11.4', deadline: inSeconds(4) })));
    expect(failure).toMatchObject({ type: 'RolloutTimedOut', nonRetryable: true });
    expect(failure.message).toMatch(new RegExp(`^rollout of mariadb:11.4 to StatefulSet stuck in namespace ${namespace}: not done by .*: 0/1 ready`));
    expect(failure.message).toContain('not ready: stuck-0 (not scheduled to a node yet)');
  });
});

describe('pods', () => {
  test('pods are listed with address, readiness and why not, role label and restarts', async () => {
    await createStatefulSet(admin, namespace, { name: 'listed', replicas: 2, image: 'mariadb:10.11' });
    await eventually('listed-0 created', () => kubelet.podNames(namespace, 'app=listed').then((n) => (n.length ? n : undefined)));
    const ip = await kubelet.markRunning(namespace, 'listed-0');
    await admin.core.patchNamespacedPod({ name: 'listed-0', namespace, body: [{ op: 'add', path: '/metadata/labels/role', value: 'primary' }] });
    await eventually('listed-1 created', () => kubelet.podNames(namespace, 'app=listed').then((n) => (n.length === 2 ? n : undefined)));
    await kubelet.markRunning(namespace, 'listed-1');
    await kubelet.crashLoop(namespace, 'listed-1', 'mariadb', { reason: 'OOMKilled', exitCode: 137 });

    const { pods, selector } = await run(() => activities.listPods({ cluster: 'listed' }));
    expect(selector).toBe('app=listed');
    expect(pods.map((p) => p.name)).toEqual(['listed-0', 'listed-1']);
    expect(pods[0]).toMatchObject({ ip, ready: true, phase: 'Running', role: 'primary', restartCount: 0, notReadyReasons: [] });
    expect(pods[1]).toMatchObject({ ready: false, role: null, restartCount: 1, lastRestartReason: 'OOMKilled' });
    expect(pods[1]!.notReadyReasons).toEqual(['container mariadb waiting: CrashLoopBackOff: back-off 10s restarting failed container=mariadb']);
    expect(Date.parse(pods[1]!.lastRestartAt!)).toBeGreaterThan(Date.now() - 60_000);
  });

  test('annotating twice has the effect of once, and so has removing twice; other annotations stay', async () => {
    await admin.core.patchNamespacedPod({ name: 'listed-0', namespace, body: [{ op: 'add', path: '/metadata/annotations', value: { keep: 'me' } }] });
    const key = 'drain.planetscale.com/started';
    expect(await run(() => activities.annotatePod({ cluster: 'listed', pod: 'listed-0', key, value: 'db-runbooks' }))).toEqual({ pod: 'listed-0', key, value: 'db-runbooks', changed: true });
    const rv = (await admin.core.readNamespacedPod({ name: 'listed-0', namespace })).metadata?.resourceVersion;
    expect(await run(() => activities.annotatePod({ cluster: 'listed', pod: 'listed-0', key, value: 'db-runbooks' }))).toMatchObject({ changed: false });
    const annotated = await admin.core.readNamespacedPod({ name: 'listed-0', namespace });
    expect(annotated.metadata?.resourceVersion).toBe(rv);
    expect(annotated.metadata?.annotations).toEqual({ keep: 'me', [key]: 'db-runbooks' });

    expect(await run(() => activities.removePodAnnotation({ cluster: 'listed', pod: 'listed-0', key }))).toEqual({ pod: 'listed-0', key, changed: true });
    expect(await run(() => activities.removePodAnnotation({ cluster: 'listed', pod: 'listed-0', key }))).toMatchObject({ changed: false });
    expect((await admin.core.readNamespacedPod({ name: 'listed-0', namespace })).metadata?.annotations).toEqual({ keep: 'me' });
  });

  test('a write that loses a race with another writer is retried on the fresh object, keeping the other change', async () => {
    const clients = kubernetesClientsFor(kubeConfigFrom(ADMIN_KUBECONFIG));
    const read = clients.core.readNamespacedPod.bind(clients.core);
    let reads = 0;
    // Another writer changes the pod between the activity's read and its write, so the write's resourceVersion is stale.
    clients.core.readNamespacedPod = async (...args: Parameters<typeof read>) => {
      const pod = await read(...args);
      reads += 1;
      if (reads === 1) await admin.core.patchNamespacedPod({ name: 'listed-0', namespace, body: [{ op: 'add', path: '/metadata/labels/touched', value: 'elsewhere' }] });
      return pod;
    };
    const racing = serverActivities(testProfiles(profilesYaml(namespace)), { kubernetesClients: () => clients });
    const result = await run(() => racing.annotatePod({ cluster: 'listed', pod: 'listed-0', key: 'db-runbooks/raced', value: 'yes' }));
    expect(result.changed).toBe(true);
    expect(reads).toBe(2);
    const pod = await admin.core.readNamespacedPod({ name: 'listed-0', namespace });
    expect(pod.metadata?.labels).toMatchObject({ touched: 'elsewhere' });
    expect(pod.metadata?.annotations).toMatchObject({ 'db-runbooks/raced': 'yes' });
  });

  test('404, 422 and 403 are non-retryable failures naming the verb and the resource', async () => {
    const missing = await failureOf(run(() => activities.annotatePod({ cluster: 'listed', pod: 'listed-9', key: 'a', value: 'b' })));
    expect(missing).toMatchObject({ type: 'KubernetesNotFound', nonRetryable: true });
    expect(missing.message).toBe(`get pods/listed-9 in namespace ${namespace}: NotFound: pods "listed-9" not found`);

    const invalid = await failureOf(run(() => activities.annotatePod({ cluster: 'listed', pod: 'listed-0', key: 'not a key!', value: 'b' })));
    expect(invalid).toMatchObject({ type: 'KubernetesInvalid', nonRetryable: true });
    expect(invalid.message).toMatch(new RegExp(`^patch pods/listed-0 in namespace ${namespace}: Invalid: .*metadata.annotations`));

    // The worker's identity has no Role in this namespace.
    const unbound = serverActivities(testProfiles(profilesYaml(namespace)), { kubeconfigPath: WORKER_KUBECONFIG });
    const forbidden = await failureOf(run(() => unbound.listPods({ cluster: 'listed' })));
    expect(forbidden).toMatchObject({ type: 'KubernetesForbidden', nonRetryable: true });
    expect(forbidden.message).toBe(
      `list pods in namespace ${namespace}: Forbidden: pods is forbidden: User "system:serviceaccount:db-runbooks:db-runbooks-worker" cannot list resource "pods" in API group "" in the namespace "${namespace}"`,
    );
  });
});

describe('pod address watch', () => {
  let firstAddress: string;
  let secondAddress: string;
  /** The pods' resourceVersion before the pod moved: what a watcher that stopped then resumes from. */
  let versionBeforeTheMove: string;

  beforeAll(async () => {
    await createStatefulSet(admin, namespace, { name: 'watched', replicas: 1, image: 'mariadb:10.11' });
    await eventually('watched-0 created', () => kubelet.podNames(namespace, 'app=watched').then((n) => (n.length ? n : undefined)));
    firstAddress = await kubelet.markRunning(namespace, 'watched-0');
    versionBeforeTheMove = (await admin.core.listNamespacedPod({ namespace, labelSelector: 'app=watched' })).metadata!.resourceVersion!;
  });

  /** Deletes the pod; the StatefulSet controller recreates it and the kubelet gives it a new address. */
  async function movePod(): Promise<string> {
    const before = (await admin.core.readNamespacedPod({ name: 'watched-0', namespace })).metadata?.uid;
    await kubelet.deletePod(namespace, 'watched-0');
    await eventually('watched-0 recreated', async () => {
      const pod = await admin.core.readNamespacedPod({ name: 'watched-0', namespace });
      return pod.metadata?.uid !== before ? pod : undefined;
    });
    return kubelet.markRunning(namespace, 'watched-0');
  }

  test('a pod recreated with a new address is reported by the watch', async () => {
    const { run: runRecorded, heartbeats } = activityEnvironment();
    const watching = runRecorded(() => activities.watchPodAddresses({ cluster: 'watched', known: { 'watched-0': firstAddress }, deadline: inSeconds(60) }));
    await eventually('the watch to list and heartbeat', () => Promise.resolve(heartbeats.length > 0 ? true : undefined));
    secondAddress = await movePod();
    const report = await watching;
    expect(report.changes).toEqual([{ pod: 'watched-0', from: firstAddress, to: secondAddress, via: 'watch' }]);
    expect(report.addresses).toEqual({ 'watched-0': secondAddress });
    expect(report.relists).toBe(0);
  });

  test('resuming from a resourceVersion the apiserver no longer has gets 410 Gone, relists, and reports what it missed', async () => {
    // What makes a version too old for real: the history behind it compacted, and an apiserver whose
    // watch cache starts after it (a young apiserver still holds every event since it started).
    await compactKubeEtcd();
    await stack('stop', 'kube-apiserver');
    await stack('start', 'kube-apiserver');
    const { run: runResumed } = activityEnvironment({ attempt: 2, heartbeatDetails: { addresses: { 'watched-0': firstAddress }, resourceVersion: versionBeforeTheMove, changes: [] } });
    const report = await runResumed(() => activities.watchPodAddresses({ cluster: 'watched', deadline: inSeconds(30) }));
    expect(report.relists).toBe(1);
    expect(report.changes).toEqual([{ pod: 'watched-0', from: firstAddress, to: secondAddress, via: 'list' }]);
  });

  test('with nothing known, the first list is the baseline, and the deadline ends a quiet watch with no change', async () => {
    const report = await run(() => activities.watchPodAddresses({ cluster: 'watched', deadline: inSeconds(2) }));
    expect(report.changes).toEqual([]);
    expect(report.addresses).toEqual({ 'watched-0': secondAddress });
  });

  test('followPodAddresses reconnects when the apiserver ends a watch and keeps reporting', async () => {
    const stop = new AbortController();
    const changes: PodAddressChange[] = [];
    let latest: PodAddressWatchState | undefined;
    const watching = followPodAddresses({
      clients: admin,
      namespace,
      selector: 'app=watched',
      known: { 'watched-0': secondAddress },
      signal: stop.signal,
      serverTimeoutSeconds: 1,
      onChange: (change) => {
        changes.push(change);
        stop.abort();
      },
      onProgress: (state) => (latest = state),
    });
    await eventually('two reconnects', () => Promise.resolve(latest && latest.reconnects >= 2 ? true : undefined));
    const third = await movePod();
    const state = await watching;
    expect(changes).toEqual([{ pod: 'watched-0', from: secondAddress, to: third, via: 'watch' }]);
    expect(state.reconnects).toBeGreaterThanOrEqual(2);
    expect(state.relists).toBe(0);
  });
});

describe('jobs', () => {
  const template = { image: 'busybox:1.36', command: ['sh', '-c', 'echo backing up'], env: { TARGET: 's3://bucket/x' } };

  async function jobPod(job: string): Promise<string> {
    return eventually(`the pod of job ${job}`, async () => (await kubelet.podNames(namespace, `batch.kubernetes.io/job-name=${job}`))[0]);
  }

  test('a Job that succeeds returns its result and says there are no logs without a kubelet; a retry finds the same Job', async () => {
    const running = run(() => activities.runJob({ cluster: 'jobs', name: 'backup-1', template, deadline: inSeconds(60) }));
    const pod = await jobPod('backup-1');
    await kubelet.finish(namespace, pod, 'Succeeded');
    const result = await running;
    expect(result).toMatchObject({ job: 'backup-1', namespace, outcome: 'succeeded', created: true, succeeded: 1, failed: 0 });
    expect(result.logs).toEqual({ available: false, pod, reason: `no logs: pod ${pod} was never scheduled to a node, so no kubelet ran it or kept its logs` });

    const again = await run(() => activities.runJob({ cluster: 'jobs', name: 'backup-1', template, deadline: inSeconds(30) }));
    expect(again).toMatchObject({ outcome: 'succeeded', created: false });
    expect(await kubelet.podNames(namespace, 'batch.kubernetes.io/job-name=backup-1')).toHaveLength(1);

    const other = await failureOf(run(() => activities.runJob({ cluster: 'jobs', name: 'backup-1', template: { ...template, command: ['false'] }, deadline: inSeconds(30) })));
    expect(other).toMatchObject({ type: 'JobConflict', nonRetryable: true });
    expect(other.message).toBe(`create jobs/backup-1 in namespace ${namespace}: a different Job of that name exists (another template); choose another name`);
  });

  test('a Job that fails is a non-retryable JobFailed with the reason', async () => {
    const running = run(() => activities.runJob({ cluster: 'jobs', name: 'migrate-1', template, deadline: inSeconds(60) }));
    await kubelet.finish(namespace, await jobPod('migrate-1'), 'Failed', 3);
    const failure = await failureOf(running);
    expect(failure).toMatchObject({ type: 'JobFailed', nonRetryable: true });
    expect(failure.message).toMatch(new RegExp(`^job migrate-1 in namespace ${namespace} failed: BackoffLimitExceeded: .*; no logs: pod migrate-1-\\w+ was never scheduled`));
  });

  test('a Job on a node with a kubelet returns the tail of its logs', async () => {
    const node = `${namespace}-node`;
    await kubelet.startNode(node);
    try {
      const running = run(() => activities.runJob({ cluster: 'jobs', name: 'dump-1', template, deadline: inSeconds(60) }));
      const pod = await jobPod('dump-1');
      await kubelet.bind(namespace, pod, node);
      kubelet.writeLogs(namespace, pod, 'runbook', Array.from({ length: 60 }, (_, i) => `line ${i + 1}`).join('\n'));
      await kubelet.finish(namespace, pod, 'Succeeded');
      const result = await running;
      expect(result.logs).toEqual({ available: true, pod, tail: `${Array.from({ length: 40 }, (_, i) => `line ${i + 21}`).join('\n')}\n` });
    } finally {
      await kubelet.stopNode(node);
    }
  });

  test('a Job still running at the deadline is a JobTimedOut, and is left running', async () => {
    const deadline = inSeconds(2);
    const failure = await failureOf(run(() => activities.runJob({ cluster: 'jobs', name: 'slow-1', template, deadline })));
    expect(failure).toMatchObject({ type: 'JobTimedOut', nonRetryable: true });
    expect(failure.message).toBe(`job slow-1 in namespace ${namespace} did not finish by ${deadline} (active 1, failed 0); it is left running`);
    expect((await admin.batch.readNamespacedJob({ name: 'slow-1', namespace })).status?.active).toBe(1);
  });
});

describe('secrets', () => {
  const password = process.env.DBR_LOCAL_MYSQL_PASSWORD!;

  beforeAll(async () => {
    await admin.core.createNamespacedSecret({ namespace, body: { metadata: { name: 'mysql-credentials' }, stringData: { password } } });
  });

  test('a profile password from a Kubernetes Secret connects, and the value appears in no result', async () => {
    const facts = await run(() => activities.checkMysqlNode({ cluster: 'secret-db', node: 'mariadb' }));
    expect(facts).toMatchObject({ node: 'mariadb', reachable: true, flavor: 'MariaDB' });
    expect(facts.error).toBeUndefined();
    expect(JSON.stringify(facts)).not.toContain(password);
  });

  test('a key the Secret does not have is a SecretUnavailable failure naming the Secret and key, not the value', async () => {
    const failure = await failureOf(run(() => activities.checkMysqlNode({ cluster: 'secret-missing-key', node: 'mariadb' })));
    expect(failure).toMatchObject({ type: 'SecretUnavailable', nonRetryable: true });
    expect(failure.message).toBe(
      `cluster secret-missing-key: mysql.password: Kubernetes Secret mysql-credentials key no-such-key cannot be read: Secret mysql-credentials in namespace ${namespace} has no key no-such-key`,
    );
    expect(JSON.stringify({ message: failure.message, details: failure.details })).not.toContain(password);
  });
});

describe('cancellation and an API that does not answer', () => {
  test('a wait and a watch stop promptly when the activity is cancelled', async () => {
    await createStatefulSet(admin, namespace, { name: 'pending', replicas: 1, image: 'mariadb:10.11' });
    const scale = activityEnvironment();
    const waiting = scale.run(() => activities.scaleWorkload({ cluster: 'pending', replicas: 1, deadline: inSeconds(600) }));
    await eventually('the wait to heartbeat', () => Promise.resolve(scale.heartbeats.length > 0 ? true : undefined));
    scale.cancel();
    expect(await waiting.catch((e: unknown) => e)).toBeInstanceOf(CancelledFailure);

    const watch = activityEnvironment();
    const watching = watch.run(() => activities.watchPodAddresses({ cluster: 'pending', deadline: inSeconds(600) }));
    await eventually('the watch to heartbeat', () => Promise.resolve(watch.heartbeats.length > 0 ? true : undefined));
    watch.cancel();
    expect(await watching.catch((e: unknown) => e)).toBeInstanceOf(CancelledFailure);
  });

  test('an apiserver that does not answer is a fact for the health check and a retryable failure for a change', async () => {
    // A port that was free a moment ago: the connection is refused, as it is while an apiserver restarts.
    const closedPort = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const config = new KubeConfig();
    config.loadFromString(readFileSync(ADMIN_KUBECONFIG, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, `server: https://127.0.0.1:${closedPort}`));
    const offline = serverActivities(testProfiles(profilesYaml(namespace)), { kubernetesClients: () => kubernetesClientsFor(config) });

    const facts = await run(() => offline.checkWorkload({ cluster: 'listed' }));
    expect(facts).toMatchObject({ reachable: false, exists: false, pods: [] });
    expect(facts.error).toMatch(new RegExp(`^get statefulsets/listed in namespace ${namespace}: the Kubernetes API did not answer: .*ECONNREFUSED`));

    const failure = await failureOf(run(() => offline.annotatePod({ cluster: 'listed', pod: 'listed-0', key: 'a', value: 'b' })));
    expect(failure).toMatchObject({ type: 'KubernetesUnavailable', nonRetryable: false });
  });
});
