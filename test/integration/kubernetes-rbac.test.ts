// Least privilege, against the real apiserver's RBAC: deploy/rbac.yaml and
// deploy/rbac-namespace.yaml are applied for this file's namespace, then every Kubernetes activity
// runs as the worker (the stack's worker.kubeconfig authenticates as its ServiceAccount). Every
// request the activities send is recorded: each is allowed, and together they are exactly what the
// manifests grant. What the worker must not do is refused.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PatchStrategy, type KubernetesObject, type V1PolicyRule } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { parseAllDocuments } from 'yaml';
import { kubernetesClientsFor, kubernetesFailure, type KubernetesClients } from '../../activities/kubernetes';
import { holdLease, releaseLease } from '../../worker/address-watcher';
import { Kubelet } from '../helpers/kubelet';
import {
  WORKER_KUBECONFIG,
  adminClients,
  createDeployment,
  createStatefulSet,
  createTestNamespace,
  deleteTestNamespace,
  eventually,
  inSeconds,
  kubeConfigFrom,
  recordingClients,
  type AdminClients,
  type RecordedRequest,
} from '../helpers/kubernetes';
import { REPO_ROOT } from '../helpers/stack';
import { serverActivities, testProfiles, type ServerActivities } from '../helpers/temporal';

let admin: AdminClients;
let kubelet: Kubelet;
let namespace: string;
let clusterRoleName: string;
let manifests: KubernetesObject[];
let worker: { clients: KubernetesClients; requests: RecordedRequest[] };
let activities: ServerActivities;
let stopKubelet: () => Promise<void>;

const password = () => process.env.DBR_LOCAL_MYSQL_PASSWORD!;

/**
 * The manifests as an operator would apply them to this namespace: the per-namespace ones moved
 * to it, the Secret the profiles below reference, and (the stack being shared) the ClusterRole
 * under a name of its own.
 */
function loadManifests(ns: string, roleName: string): KubernetesObject[] {
  const documents = ['rbac.yaml', 'rbac-namespace.yaml'].flatMap((file) =>
    parseAllDocuments(readFileSync(path.join(REPO_ROOT, 'deploy', file), 'utf8')).map((d) => d.toJS() as KubernetesObject & Record<string, unknown>),
  );
  for (const doc of documents) {
    if (doc.metadata?.namespace === 'databases') doc.metadata.namespace = ns;
    if (doc.kind === 'ClusterRole') doc.metadata!.name = roleName;
    const roleRef = doc.roleRef as { kind: string; name: string } | undefined;
    if (roleRef?.kind === 'ClusterRole') roleRef.name = roleName;
    if (doc.kind === 'Role') for (const rule of doc.rules as V1PolicyRule[]) if (rule.resources?.includes('secrets')) rule.resourceNames = ['mysql-credentials'];
  }
  return documents;
}

/** "verb group/resource[/subresource]" as RBAC sees a request; a Secret with its name, as its rule names it. */
function permissionOf({ method, url }: RecordedRequest): string {
  const parts = url.pathname.split('/').filter(Boolean);
  const [group, rest] = parts[0] === 'api' ? ['core', parts.slice(2)] : [parts[1]!, parts.slice(3)];
  const [scope, , resource, name, subresource] = rest;
  if (scope !== 'namespaces') throw new Error(`a request outside a namespace: ${method} ${url.pathname}`);
  const verbs: Record<string, string> = { PATCH: 'patch', POST: 'create', PUT: 'update', DELETE: name ? 'delete' : 'deletecollection' };
  const verb = method === 'GET' ? (name ? 'get' : url.searchParams.get('watch') === 'true' ? 'watch' : 'list') : verbs[method]!;
  return `${verb} ${group}/${resource}${subresource ? `/${subresource}` : ''}${resource === 'secrets' && name ? ` ${name}` : ''}`;
}

function permissionsGranted(objects: KubernetesObject[]): string[] {
  const granted = new Set<string>();
  for (const role of objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')) {
    for (const rule of (role as { rules: V1PolicyRule[] }).rules) {
      for (const group of rule.apiGroups ?? []) {
        for (const resource of rule.resources ?? []) {
          for (const verb of rule.verbs) {
            for (const name of rule.resourceNames ?? ['']) granted.add(`${verb} ${group || 'core'}/${resource}${name ? ` ${name}` : ''}`);
          }
        }
      }
    }
  }
  return [...granted].sort();
}

function run<R>(activity: () => Promise<R>): Promise<R> {
  return new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') }).run(activity);
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

beforeAll(async () => {
  admin = adminClients();
  kubelet = new Kubelet(admin);
  namespace = await createTestNamespace(admin, 'dbr-rbac');
  clusterRoleName = `db-runbooks-worker-${namespace}`;
  manifests = loadManifests(namespace, clusterRoleName);
  for (const object of manifests) {
    await admin.objects.patch(object, undefined, undefined, 'db-runbooks-test', true, PatchStrategy.ServerSideApply);
  }

  await createStatefulSet(admin, namespace, { name: 'db', replicas: 1, image: 'mariadb:10.11' });
  await createDeployment(admin, namespace, { name: 'web', replicas: 1, image: 'nginx:1.26', container: 'app' });
  const statefulSetKubelet = kubelet.autoReady(namespace, 'app=db');
  const deploymentKubelet = kubelet.autoReady(namespace, 'app=web');
  stopKubelet = async () => {
    await statefulSetKubelet.stop();
    await deploymentKubelet.stop();
  };
  await admin.core.createNamespacedSecret({ namespace, body: { metadata: { name: 'mysql-credentials' }, stringData: { password: password() } } });
  await admin.core.createNamespacedSecret({ namespace, body: { metadata: { name: 'other-credentials' }, stringData: { password: password() } } });

  const profiles = testProfiles(`
clusters:
  db:
    namespace: ${namespace}
    workload: { kind: StatefulSet, name: db, selector: app=db, container: mariadb, roleLabel: role }
    mysql:
      topology: standalone
      user: runbook
      password: { kubernetes: { name: mysql-credentials, key: password } }
      nodes: [{ name: mariadb, host: 127.0.0.1, port: 3310, pod: db-0 }]
      control: { kind: kubernetes }
  web:
    namespace: ${namespace}
    workload: { kind: Deployment, name: web, selector: app=web, container: app }
  unlisted-secret:
    namespace: ${namespace}
    mysql:
      topology: standalone
      user: runbook
      password: { kubernetes: { name: other-credentials, key: password } }
      nodes: [{ name: mariadb, host: 127.0.0.1, port: 3310 }]
`);
  worker = recordingClients(WORKER_KUBECONFIG);
  activities = serverActivities(profiles, { kubernetesClients: () => worker.clients });
  // RBAC reads bindings from the apiserver's caches: wait until the new ones apply.
  const probe = kubernetesClientsFor(kubeConfigFrom(WORKER_KUBECONFIG));
  await eventually('the RoleBindings to take effect', () => probe.core.listNamespacedPod({ namespace }).then(() => true));
  await eventually('db and web ready', async () => {
    const [db, web] = await Promise.all([admin.apps.readNamespacedStatefulSet({ name: 'db', namespace }), admin.apps.readNamespacedDeployment({ name: 'web', namespace })]);
    return db.status?.readyReplicas === 1 && web.status?.readyReplicas === 1 ? true : undefined;
  });
});

afterAll(async () => {
  await stopKubelet?.();
  if (namespace) await deleteTestNamespace(admin, namespace);
  if (clusterRoleName) await admin.objects.delete({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: clusterRoleName } }).catch(() => undefined);
});

test('every activity runs as the worker, and the manifests grant exactly the calls the activities make', async () => {
  expect(await run(() => activities.checkWorkload({ cluster: 'db' }))).toMatchObject({ exists: true, desired: 1, ready: 1 });
  expect(await run(() => activities.scaleWorkload({ cluster: 'db', replicas: 2, deadline: inSeconds(60) }))).toMatchObject({ changed: true, ready: 2 });
  expect(await run(() => activities.setWorkloadImage({ cluster: 'db', image: 'mariadb:11.4', deadline: inSeconds(90) }))).toMatchObject({ changed: true, updated: 2 });
  expect(await run(() => activities.scaleWorkload({ cluster: 'web', replicas: 2, deadline: inSeconds(60) }))).toMatchObject({ changed: true, ready: 2 });
  expect(await run(() => activities.setWorkloadImage({ cluster: 'web', image: 'nginx:1.27', deadline: inSeconds(90) }))).toMatchObject({ changed: true, updated: 2 });
  expect((await run(() => activities.listPods({ cluster: 'db' }))).pods).toHaveLength(2);
  expect(await run(() => activities.annotatePod({ cluster: 'db', pod: 'db-0', key: 'drain.planetscale.com/started', value: 'db-runbooks' }))).toMatchObject({ changed: true });
  expect(await run(() => activities.removePodAnnotation({ cluster: 'db', pod: 'db-0', key: 'drain.planetscale.com/started' }))).toMatchObject({ changed: true });
  expect(await run(() => activities.setPodRole({ cluster: 'db', pod: 'db-1', role: 'primary' }))).toMatchObject({ changed: true, previous: null });
  expect(await run(() => activities.waitForPodRole({ cluster: 'db', role: 'primary', notPod: 'db-0', deadline: inSeconds(10) }))).toMatchObject({ pod: 'db-1' });
  expect(await run(() => activities.controlNode({ cluster: 'db', node: 'mariadb', action: 'fence' }))).toMatchObject({ output: 'pod db-0 annotated db-runbooks/fenced=read-only' });
  expect(await run(() => activities.controlNode({ cluster: 'db', node: 'mariadb', action: 'unfence' }))).toMatchObject({ action: 'unfence' });
  expect(await run(() => activities.watchPodAddresses({ cluster: 'db', deadline: inSeconds(1) }))).toMatchObject({ changes: [] });
  expect(await run(() => activities.checkMysqlNode({ cluster: 'db', node: 'mariadb' }))).toMatchObject({ reachable: true });

  const node = `${namespace}-node`;
  await kubelet.startNode(node);
  try {
    const job = run(() => activities.runJob({ cluster: 'db', name: 'backup-1', template: { image: 'busybox:1.36', command: ['true'] }, deadline: inSeconds(60) }));
    const pod = await eventually('the Job pod', async () => (await kubelet.podNames(namespace, 'batch.kubernetes.io/job-name=backup-1'))[0]);
    await kubelet.bind(namespace, pod, node);
    kubelet.writeLogs(namespace, pod, 'runbook', 'backup done');
    await kubelet.finish(namespace, pod, 'Succeeded');
    expect((await job).logs).toEqual({ available: true, pod, tail: 'backup done\n' });
  } finally {
    await kubelet.stopNode(node);
  }

  // The pod watcher's leader election: create, renew (get + update), release.
  expect(await holdLease(worker.clients, namespace, 'rbac-watch', 'worker-a', 15)).toBe(true);
  expect(await holdLease(worker.clients, namespace, 'rbac-watch', 'worker-a', 15)).toBe(true);
  expect(await holdLease(worker.clients, namespace, 'rbac-watch', 'worker-b', 15)).toBe(false);
  await releaseLease(worker.clients, namespace, 'rbac-watch', 'worker-a');
  expect(await holdLease(worker.clients, namespace, 'rbac-watch', 'worker-b', 15)).toBe(true);

  const used = [...new Set(worker.requests.map(permissionOf))].sort();
  expect(used).toEqual(permissionsGranted(manifests));
});

test('the worker may not delete a StatefulSet, read a Secret its Role does not name, list Secrets, create pods, or act in another namespace', async () => {
  const direct = kubernetesClientsFor(kubeConfigFrom(WORKER_KUBECONFIG));
  const refusal = async (action: { verb: string; resource: string; namespace: string }, call: () => Promise<unknown>) => {
    const failure = kubernetesFailure(await call().then(() => new Error(`${action.verb} ${action.resource} was allowed`), (e: unknown) => e), action);
    expect(failure).toMatchObject({ type: 'KubernetesForbidden', nonRetryable: true });
    return failure.message;
  };
  const user = 'User "system:serviceaccount:db-runbooks:db-runbooks-worker"';

  expect(await refusal({ verb: 'delete', resource: 'statefulsets/db', namespace }, () => direct.apps.deleteNamespacedStatefulSet({ name: 'db', namespace }))).toBe(
    `delete statefulsets/db in namespace ${namespace}: Forbidden: statefulsets.apps "db" is forbidden: ${user} cannot delete resource "statefulsets" in API group "apps" in the namespace "${namespace}"`,
  );
  expect((await admin.apps.readNamespacedStatefulSet({ name: 'db', namespace })).metadata?.deletionTimestamp).toBeUndefined();

  const unlisted = await failureOf(run(() => activities.checkMysqlNode({ cluster: 'unlisted-secret', node: 'mariadb' })));
  expect(unlisted).toMatchObject({ type: 'SecretUnavailable', nonRetryable: true });
  expect(unlisted.message).toBe(
    `cluster unlisted-secret: mysql.password: Kubernetes Secret other-credentials key password cannot be read: get secrets/other-credentials in namespace ${namespace}: Forbidden: secrets "other-credentials" is forbidden: ${user} cannot get resource "secrets" in API group "" in the namespace "${namespace}"`,
  );

  expect(await refusal({ verb: 'list', resource: 'secrets', namespace }, () => direct.core.listNamespacedSecret({ namespace }))).toContain('cannot list resource "secrets"');
  expect(
    await refusal({ verb: 'create', resource: 'pods', namespace }, () =>
      direct.core.createNamespacedPod({ namespace, body: { metadata: { name: 'intruder' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } }),
    ),
  ).toContain('cannot create resource "pods"');
  expect(await refusal({ verb: 'list', resource: 'pods', namespace: 'default' }, () => direct.core.listNamespacedPod({ namespace: 'default' }))).toContain(
    'cannot list resource "pods" in API group "" in the namespace "default"',
  );
});
