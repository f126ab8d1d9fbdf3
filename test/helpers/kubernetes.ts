// The stack's real kube-apiserver as the tests use it: the admin's clients (to set up what a test
// needs and to look at the result), a namespace per test file, and the workloads the runbooks act on.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import {
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  ServerConfiguration,
  Watch,
  createConfiguration,
  setHeaderOptions,
  type V1Deployment,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { kubernetesClientsFor, type KubernetesClients } from '../../activities/kubernetes';
import { STACK_STATE } from './stack';

export const KUBE_DIR = path.join(STACK_STATE, 'kube');
/** system:masters: sets up and inspects. */
export const ADMIN_KUBECONFIG = path.join(KUBE_DIR, 'admin.kubeconfig');
/** Authenticates as system:serviceaccount:db-runbooks:db-runbooks-worker, so the RBAC in deploy/ applies to it. */
export const WORKER_KUBECONFIG = path.join(KUBE_DIR, 'worker.kubeconfig');

export interface AdminClients extends KubernetesClients {
  config: KubeConfig;
  objects: KubernetesObjectApi;
}

export function kubeConfigFrom(file: string): KubeConfig {
  const config = new KubeConfig();
  config.loadFromFile(file);
  return config;
}

export function adminClients(): AdminClients {
  const config = kubeConfigFrom(ADMIN_KUBECONFIG);
  return { ...kubernetesClientsFor(config), config, objects: KubernetesObjectApi.makeApiClient(config) };
}

/** A request as sent: method and URL (path and query). */
export interface RecordedRequest {
  method: string;
  url: URL;
}

/**
 * Real clients for a kubeconfig that also record every request they send, watches included: what
 * the activities actually ask the apiserver for.
 */
export function recordingClients(kubeconfigPath: string): { clients: KubernetesClients; requests: RecordedRequest[] } {
  const config = kubeConfigFrom(kubeconfigPath);
  const requests: RecordedRequest[] = [];
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(config.getCurrentCluster()!.server, {}),
    authMethods: { default: config },
    promiseMiddleware: [
      {
        pre: (context) => {
          requests.push({ method: context.getHttpMethod(), url: new URL(context.getUrl()) });
          return Promise.resolve(context);
        },
        post: (context) => Promise.resolve(context),
      },
    ],
  });
  const watch = new Watch(config);
  const startWatch = watch.watch.bind(watch);
  watch.watch = (path, query, callback, done) => {
    const url = new URL(config.getCurrentCluster()!.server + path);
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
    url.searchParams.set('watch', 'true');
    requests.push({ method: 'GET', url });
    return startWatch(path, query, callback, done);
  };
  return {
    clients: { core: new CoreV1Api(configuration), apps: new AppsV1Api(configuration), batch: new BatchV1Api(configuration), coordination: new CoordinationV1Api(configuration), watch },
    requests,
  };
}

/** A fresh namespace with a unique name, so test files and parallel clones never see each other's objects. */
export async function createTestNamespace(admin: AdminClients, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await admin.core.createNamespace({ body: { metadata: { name, labels: { 'db-runbooks/test': 'true' } } } });
  return name;
}

/**
 * Deletes the namespace. Pods bound to a node would wait for a kubelet that never comes to confirm
 * their deletion, so they are force-deleted first; unscheduled pods go at once anyway.
 */
export async function deleteTestNamespace(admin: AdminClients, namespace: string): Promise<void> {
  const pods = await admin.core.listNamespacedPod({ namespace });
  await Promise.all(
    pods.items
      .filter((p) => p.spec?.nodeName)
      .map((p) => admin.core.deleteNamespacedPod({ name: p.metadata!.name!, namespace, gracePeriodSeconds: 0 }).catch(() => undefined)),
  );
  await admin.core.deleteNamespace({ name: namespace });
}

export interface WorkloadSpec {
  name: string;
  replicas: number;
  image: string;
  container?: string;
  /** Extra containers, to prove a change to one leaves the others alone. */
  sidecars?: { name: string; image: string }[];
  labels?: Record<string, string>;
}

function podTemplate(spec: WorkloadSpec) {
  const labels = { app: spec.name, ...spec.labels };
  return {
    selector: { matchLabels: { app: spec.name } },
    template: {
      metadata: { labels },
      spec: { containers: [{ name: spec.container ?? 'mariadb', image: spec.image }, ...(spec.sidecars ?? [])] },
    },
  };
}

export async function createStatefulSet(admin: AdminClients, namespace: string, spec: WorkloadSpec): Promise<V1StatefulSet> {
  return admin.apps.createNamespacedStatefulSet({
    namespace,
    body: { metadata: { name: spec.name }, spec: { replicas: spec.replicas, serviceName: spec.name, ...podTemplate(spec) } },
  });
}

export async function createDeployment(admin: AdminClients, namespace: string, spec: WorkloadSpec): Promise<V1Deployment> {
  return admin.apps.createNamespacedDeployment({
    namespace,
    body: { metadata: { name: spec.name }, spec: { replicas: spec.replicas, ...podTemplate(spec) } },
  });
}

/** Sets the role label (what a profile's workload.roleLabel names for routing) of each pod. */
export async function setPodRoles(admin: AdminClients, namespace: string, roles: Record<string, string>, label = 'role'): Promise<void> {
  for (const [pod, role] of Object.entries(roles)) {
    await admin.core.patchNamespacedPod({ name: pod, namespace, body: { metadata: { labels: { [label]: role } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }
}

/** Each selected pod's role label, by pod name. */
export async function podRoles(admin: AdminClients, namespace: string, selector: string, label = 'role'): Promise<Record<string, string | undefined>> {
  const pods = await admin.core.listNamespacedPod({ namespace, labelSelector: selector });
  const roles = pods.items.map((p): [string, string | undefined] => [p.metadata!.name!, p.metadata?.labels?.[label]]);
  return Object.fromEntries(roles.sort(([a], [b]) => a.localeCompare(b)));
}

/** Polls until check() returns a value (not undefined), or fails naming what it waited for. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

export function inSeconds(seconds: number): string {
  return new Date(Date.now() + seconds * 1000).toISOString();
}
