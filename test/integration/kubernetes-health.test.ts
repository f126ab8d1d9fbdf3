// clusterHealth's workload checks through a real workflow on a Temporal dev server, against the
// stack's real kube-apiserver and StatefulSet controller, with the test playing the kubelet.
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { RUNBOOKS } from '../../client/runbooks';
import { clusterHealth } from '../../workflows';
import type { ClusterHealthReport } from '../../workflows/health';
import { Kubelet } from '../helpers/kubelet';
import { ADMIN_KUBECONFIG, adminClients, createStatefulSet, createTestNamespace, deleteTestNamespace, eventually, type AdminClients } from '../helpers/kubernetes';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let admin: AdminClients;
let kubelet: Kubelet;
let namespace: string;
let runs = 0;

beforeAll(async () => {
  admin = adminClients();
  kubelet = new Kubelet(admin);
  namespace = await createTestNamespace(admin, 'dbr-health');
  const profiles = testProfiles(`
clusters:
  orders:
    namespace: ${namespace}
    workload: { kind: StatefulSet, name: orders-db, selector: app=orders-db, container: mariadb, roleLabel: role }
  ghost:
    namespace: ${namespace}
    workload: { kind: StatefulSet, name: ghost-db, selector: app=ghost-db, container: mariadb }
`);
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, profiles, { kubeconfigPath: ADMIN_KUBECONFIG }));
  await createStatefulSet(admin, namespace, { name: 'orders-db', replicas: 2, image: 'mariadb:10.11' });
  const node = kubelet.autoReady(namespace, 'app=orders-db');
  try {
    await readyReplicas(2);
  } finally {
    await node.stop();
  }
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  if (namespace) await deleteTestNamespace(admin, namespace);
});

/** Waits until the StatefulSet controller has counted the pods the kubelet made ready or not. */
async function readyReplicas(count: number): Promise<void> {
  await eventually(`orders-db to report ${count} ready`, async () => {
    const sts = await admin.apps.readNamespacedStatefulSet({ name: 'orders-db', namespace });
    return (sts.status?.readyReplicas ?? 0) === count ? true : undefined;
  });
}

function runHealth(cluster: string): Promise<ClusterHealthReport> {
  return env.client.workflow.execute(clusterHealth, {
    taskQueue: worker.taskQueue,
    workflowId: `clusterHealth/${cluster}-${++runs}-${Date.now()}`,
    args: [{ cluster }],
  });
}

test('a StatefulSet with every replica ready is healthy, each pod reported with its address', async () => {
  const report = await runHealth('orders');
  expect(report.verdict).toBe('healthy');
  expect(report.summary).toBe('healthy: StatefulSet orders-db (2/2 ready)');
  expect(report.workload).toMatchObject({ kind: 'StatefulSet', name: 'orders-db', namespace, desired: 2, ready: 2, updated: 2 });
  expect(report.workload!.pods.map((p) => [p.name, p.ready, p.restartCount])).toEqual([
    ['orders-db-0', true, 0],
    ['orders-db-1', true, 0],
  ]);
  expect(report.workload!.pods.every((p) => /^10\.\d+\.\d+\.\d+$/.test(p.ip ?? ''))).toBe(true);
});

test('a pod whose readiness fails makes the cluster degraded, naming the pod and why', async () => {
  await kubelet.setReady(namespace, 'orders-db-1', false);
  await readyReplicas(1);
  const report = await runHealth('orders');
  expect(report.verdict).toBe('degraded');
  expect(report.reasons).toEqual(['StatefulSet orders-db: 1 of 2 replicas ready', 'pod orders-db-1 is not ready: container mariadb running but not ready']);

  const rendered = RUNBOOKS.clusterHealth!.render!(report);
  expect(rendered.exitCode).toBe(4);
  expect(rendered.lines).toContain(`  StatefulSet orders-db (namespace ${namespace}): 1/2 ready, 2 updated`);
  expect(rendered.lines).toContainEqual(expect.stringMatching(/^ {4}pod orders-db-1 10\.\S+: not ready \(container mariadb running but not ready\), 0 restart\(s\)$/));
});

test('a crash-looping container is named with its state, and its restart stays a warning after it recovers', async () => {
  await kubelet.crashLoop(namespace, 'orders-db-1', 'mariadb', { reason: 'OOMKilled', exitCode: 137 });
  const crashing = await runHealth('orders');
  expect(crashing.verdict).toBe('degraded');
  expect(crashing.reasons).toContain('pod orders-db-1 is not ready: container mariadb waiting: CrashLoopBackOff: back-off 10s restarting failed container=mariadb');
  expect(crashing.warnings).toEqual([expect.stringMatching(/^pod orders-db-1 restarted recently: 1 restart\(s\), the last at \S+ \(OOMKilled\)$/)]);

  await kubelet.markRunning(namespace, 'orders-db-1');
  await readyReplicas(2);
  const recovered = await runHealth('orders');
  expect(recovered.verdict).toBe('healthy');
  expect(recovered.warnings).toHaveLength(1);
  expect(recovered.summary).toBe('healthy: StatefulSet orders-db (2/2 ready) (1 warning(s))');
});

test('no replica ready is down', async () => {
  await kubelet.setReady(namespace, 'orders-db-0', false);
  await kubelet.setReady(namespace, 'orders-db-1', false);
  await readyReplicas(0);
  const report = await runHealth('orders');
  expect(report.verdict).toBe('down');
  expect(report.reasons[0]).toBe('StatefulSet orders-db: 0 of 2 replicas ready');
  expect(RUNBOOKS.clusterHealth!.render!(report).exitCode).toBe(5);
});

test('a workload the profile names but the namespace lacks is down', async () => {
  const report = await runHealth('ghost');
  expect(report.verdict).toBe('down');
  expect(report.reasons).toEqual([`StatefulSet ghost-db does not exist in namespace ${namespace}`]);
});
