// Kubernetes: the API clients for a cluster's namespace and workload (both from its profile), and
// the activities the runbooks act on the workload with. Activities report facts and wait for the
// state they asked for; workflows decide what the facts mean.
//
// Every mutation compares the desired state with the current one first and writes with the
// resourceVersion it read, so it is idempotent and never overwrites a concurrent change blindly: a
// 409 Conflict re-reads and decides again. Refusals no retry can fix (403, 404, 422) become
// non-retryable ApplicationFailures that name the verb, the resource and the namespace.
import { createHash } from 'node:crypto';
import {
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  Watch,
  setHeaderOptions,
  type V1Deployment,
  type V1Job,
  type V1Pod,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import { activityInfo, cancellationSignal, cancelled, heartbeat, log, sleep } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ProfileSource } from './cluster';
import type { ClusterProfile } from './profile';
import type { KubernetesSecretReader } from './secrets';

// ---------------------------------------------------------------- clients and connector

export interface KubernetesClients {
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  /** Leases: the pod watcher's leader election. */
  coordination: CoordinationV1Api;
  /** Watch streams: the generated clients cannot stream. */
  watch: Watch;
}

/** Yields the API clients; built at first use, so a worker without Kubernetes access starts and fails only the activities that need it. */
export type KubernetesClientSource = () => KubernetesClients;

export function kubernetesClientsFor(config: KubeConfig): KubernetesClients {
  return {
    core: config.makeApiClient(CoreV1Api),
    apps: config.makeApiClient(AppsV1Api),
    batch: config.makeApiClient(BatchV1Api),
    coordination: config.makeApiClient(CoordinationV1Api),
    watch: new Watch(config),
  };
}

/** Clients from a kubeconfig file (DBR_KUBECONFIG), else from the service account of the pod the worker runs in. */
export function kubernetesClientSource(options: { kubeconfigPath?: string; env?: NodeJS.ProcessEnv } = {}): KubernetesClientSource {
  let clients: KubernetesClients | undefined;
  return () => {
    if (clients) return clients;
    const config = new KubeConfig();
    if (options.kubeconfigPath) {
      config.loadFromFile(options.kubeconfigPath);
    } else if ((options.env ?? process.env).KUBERNETES_SERVICE_HOST) {
      config.loadFromCluster();
    } else {
      throw ApplicationFailure.nonRetryable(
        'the worker has no Kubernetes access: set DBR_KUBECONFIG, or run the worker in a pod with its service account',
        'KubernetesUnconfigured',
      );
    }
    clients = kubernetesClientsFor(config);
    return clients;
  };
}

export type WorkloadProfile = NonNullable<ClusterProfile['workload']>;

export interface KubernetesTarget {
  cluster: string;
  namespace: string;
  workload?: WorkloadProfile;
  api: KubernetesClients;
}

export interface KubernetesConnector {
  /** The cluster's namespace and the API clients; ProfileIncomplete when the profile names no namespace. */
  target(cluster: string): KubernetesTarget;
  /** The same, for activities that act on the workload; ProfileIncomplete when the profile names none. */
  workload(cluster: string): KubernetesTarget & { workload: WorkloadProfile };
}

export function createKubernetesConnector(deps: { profiles: ProfileSource; clients: KubernetesClientSource }): KubernetesConnector {
  const target = (cluster: string): KubernetesTarget => {
    const profile = deps.profiles.get(cluster);
    if (!profile.namespace) {
      throw ApplicationFailure.nonRetryable(`cluster: cluster "${cluster}" has no namespace in its profile`, 'ProfileIncomplete');
    }
    return { cluster, namespace: profile.namespace, workload: profile.workload, api: deps.clients() };
  };
  return {
    target,
    workload(cluster) {
      const t = target(cluster);
      if (!t.workload) {
        throw ApplicationFailure.nonRetryable(`cluster: cluster "${cluster}" has no workload in its profile`, 'ProfileIncomplete');
      }
      return { ...t, workload: t.workload };
    },
  };
}

// ---------------------------------------------------------------- errors

/** What a call did, for messages: "patch statefulsets/orders-db in namespace databases". */
export interface KubernetesAction {
  verb: string;
  resource: string;
  namespace: string;
}

export function describeAction(action: KubernetesAction): string {
  return `${action.verb} ${action.resource} in namespace ${action.namespace}`;
}

interface ApiStatus {
  code?: number;
  reason?: string;
  message?: string;
}

/** The HTTP status and the apiserver's Status of a failed call; undefined for network errors. */
export function apiStatusOf(err: unknown): ApiStatus | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; body?: unknown };
  const code = typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
  // A DOMException (the watch's inactivity timeout, an abort) carries a small legacy numeric code too.
  if (code === undefined || code < 100 || code > 599) return undefined;
  let body: unknown = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      body = { message: body };
    }
  }
  const status = (body ?? {}) as { reason?: unknown; message?: unknown };
  return {
    code,
    reason: typeof status.reason === 'string' ? status.reason : undefined,
    message: typeof status.message === 'string' ? status.message : undefined,
  };
}

function networkErrorMessage(err: unknown): string {
  const e = err as Error & { cause?: unknown };
  const cause = e?.cause as { message?: string; code?: string } | undefined;
  const base = e?.message ?? String(err);
  return cause?.message && cause.message !== base ? `${base} (${cause.message})` : base;
}

const NON_RETRYABLE_STATUS: Record<number, string> = {
  400: 'KubernetesInvalid',
  401: 'KubernetesUnauthorized',
  403: 'KubernetesForbidden',
  404: 'KubernetesNotFound',
  422: 'KubernetesInvalid',
};

/**
 * The failure a caller sees for a refused or failed call. 400/401/403/404/422 are non-retryable;
 * 409 Conflict is retryable (the caller re-reads); anything else, including the apiserver being
 * unreachable, is a retryable KubernetesUnavailable.
 */
export function kubernetesFailure(err: unknown, action: KubernetesAction): Error {
  if (err instanceof ApplicationFailure) return err;
  const status = apiStatusOf(err);
  if (!status) {
    return ApplicationFailure.retryable(`${describeAction(action)}: the Kubernetes API did not answer: ${networkErrorMessage(err)}`, 'KubernetesUnavailable');
  }
  const detail = `${status.reason ?? `HTTP ${status.code}`}${status.message ? `: ${status.message}` : ''}`;
  const message = `${describeAction(action)}: ${detail}`;
  const type = NON_RETRYABLE_STATUS[status.code ?? 0];
  if (type) return ApplicationFailure.create({ message, type, nonRetryable: true, details: [{ ...action, code: status.code, reason: status.reason }] });
  if (status.code === 409) return ApplicationFailure.retryable(message, status.reason === 'AlreadyExists' ? 'KubernetesAlreadyExists' : 'KubernetesConflict');
  return ApplicationFailure.retryable(message, 'KubernetesUnavailable');
}

async function call<T>(action: KubernetesAction, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw kubernetesFailure(err, action);
  }
}

const CONFLICT_ATTEMPTS = 5;

/**
 * Runs a read-compare-write until it is not refused with a 409 Conflict: each attempt re-reads, so
 * a concurrent writer's change is seen and decided on, never overwritten.
 */
export async function retryOnConflict<T>(what: string, attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof ApplicationFailure) || err.type !== 'KubernetesConflict' || n >= CONFLICT_ATTEMPTS) throw err;
      log.info('resourceVersion conflict: re-reading and trying again', { what, attempt: n });
      await sleep(100 * n);
    }
  }
}

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const strategicMergePatch = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

function invalidInput(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'InvalidInput');
}

/** An ISO 8601 deadline from the workflow: absolute, so a retried attempt does not get a fresh allowance. */
function parseDeadline(deadline: unknown): number {
  const ms = typeof deadline === 'string' ? Date.parse(deadline) : NaN;
  if (Number.isNaN(ms)) throw invalidInput(`deadline: expected an ISO 8601 time such as "2026-01-01T00:00:00Z", got ${JSON.stringify(deadline)}`);
  return ms;
}

// ---------------------------------------------------------------- pod facts

export interface ContainerFacts {
  name: string;
  image: string;
  ready: boolean;
  restartCount: number;
  state: 'running' | 'waiting' | 'terminated' | 'unknown';
  reason?: string;
  message?: string;
  exitCode?: number;
  lastTerminationReason?: string;
  lastTerminatedAt?: string;
}

export interface PodFacts {
  name: string;
  ip: string | null;
  phase: string;
  ready: boolean;
  /** Value of the profile's workload.roleLabel, when it names one. */
  role: string | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  node: string | null;
  terminating: boolean;
  restartCount: number;
  lastRestartAt: string | null;
  lastRestartReason: string | null;
  /** Why the pod is not ready, from its conditions and its containers' states; empty when ready. */
  notReadyReasons: string[];
  containers: ContainerFacts[];
}

function iso(value: Date | string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return value instanceof Date ? value.toISOString() : new Date(value).toISOString();
}

function containerFacts(pod: V1Pod): ContainerFacts[] {
  const statuses = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, s]));
  return (pod.spec?.containers ?? []).map((c) => {
    const s = statuses.get(c.name);
    const facts: ContainerFacts = { name: c.name, image: s?.image ?? c.image ?? '', ready: s?.ready ?? false, restartCount: s?.restartCount ?? 0, state: 'unknown' };
    if (s?.state?.running) facts.state = 'running';
    else if (s?.state?.waiting) Object.assign(facts, { state: 'waiting', reason: s.state.waiting.reason, message: s.state.waiting.message });
    else if (s?.state?.terminated) {
      const t = s.state.terminated;
      Object.assign(facts, { state: 'terminated', reason: t.reason, message: t.message, exitCode: t.exitCode });
    }
    const last = s?.lastState?.terminated;
    if (last) {
      facts.lastTerminationReason = last.reason ?? `exit code ${last.exitCode}`;
      facts.lastTerminatedAt = iso(last.finishedAt);
    }
    return facts;
  });
}

function isPodReady(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

function notReadyReasons(pod: V1Pod, containers: ContainerFacts[]): string[] {
  const reasons: string[] = [];
  const phase = pod.status?.phase ?? 'Unknown';
  if (pod.metadata?.deletionTimestamp) reasons.push('terminating');
  if (phase === 'Pending' && !pod.spec?.nodeName) {
    const scheduled = (pod.status?.conditions ?? []).find((c) => c.type === 'PodScheduled');
    reasons.push(
      scheduled?.status === 'False'
        ? `not scheduled: ${scheduled.reason ?? 'Unschedulable'}${scheduled.message ? `: ${scheduled.message}` : ''}`
        : 'not scheduled to a node yet',
    );
  } else if (phase === 'Succeeded' || phase === 'Failed') {
    reasons.push(`phase ${phase}${pod.status?.reason ? `: ${pod.status.reason}` : ''}`);
  }
  const withStatus = new Set((pod.status?.containerStatuses ?? []).map((s) => s.name));
  for (const c of containers) {
    const why = c.reason ? `: ${c.reason}${c.message ? `: ${c.message}` : ''}` : '';
    if (c.state === 'waiting') reasons.push(`container ${c.name} waiting${why}`);
    else if (c.state === 'terminated') reasons.push(`container ${c.name} terminated${why || ''} (exit code ${c.exitCode ?? '?'})`);
    else if (c.state === 'running' && !c.ready) reasons.push(`container ${c.name} running but not ready`);
    else if (!withStatus.has(c.name) && pod.spec?.nodeName) reasons.push(`container ${c.name} has not started`);
  }
  const readyCondition = (pod.status?.conditions ?? []).find((c) => c.type === 'Ready');
  if (reasons.length === 0 && readyCondition?.status === 'False') {
    reasons.push(`Ready=False${readyCondition.reason ? `: ${readyCondition.reason}` : ''}${readyCondition.message ? `: ${readyCondition.message}` : ''}`);
  }
  if (reasons.length === 0) reasons.push(`phase ${phase}`);
  return reasons;
}

/** The annotation kubectl apply keeps a full copy of the object in: noise in a report. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

export function podFacts(pod: V1Pod, roleLabel?: string): PodFacts {
  const containers = containerFacts(pod);
  const ready = isPodReady(pod);
  const labels = pod.metadata?.labels ?? {};
  const annotations = Object.fromEntries(Object.entries(pod.metadata?.annotations ?? {}).filter(([k]) => k !== LAST_APPLIED));
  const lastRestart = containers
    .filter((c) => c.restartCount > 0 && c.lastTerminatedAt)
    .sort((a, b) => (b.lastTerminatedAt ?? '').localeCompare(a.lastTerminatedAt ?? ''))[0];
  return {
    name: pod.metadata?.name ?? '',
    ip: pod.status?.podIP || null,
    phase: pod.status?.phase ?? 'Unknown',
    ready,
    role: roleLabel ? (labels[roleLabel] ?? null) : null,
    labels,
    annotations,
    node: pod.spec?.nodeName || null,
    terminating: Boolean(pod.metadata?.deletionTimestamp),
    restartCount: containers.reduce((sum, c) => sum + c.restartCount, 0),
    lastRestartAt: lastRestart?.lastTerminatedAt ?? null,
    lastRestartReason: lastRestart?.lastTerminationReason ?? null,
    notReadyReasons: ready ? [] : notReadyReasons(pod, containers),
    containers,
  };
}

// ---------------------------------------------------------------- workloads

type Workload = V1StatefulSet | V1Deployment;

export interface WorkloadStatus {
  kind: 'StatefulSet' | 'Deployment';
  name: string;
  namespace: string;
  generation: number;
  observedGeneration: number;
  desired: number;
  /** Pods that exist (status.replicas). */
  current: number;
  ready: number;
  updated: number;
  available: number;
}

export function workloadStatus(kind: WorkloadStatus['kind'], namespace: string, w: Workload): WorkloadStatus {
  return {
    kind,
    name: w.metadata?.name ?? '',
    namespace,
    generation: w.metadata?.generation ?? 0,
    observedGeneration: w.status?.observedGeneration ?? 0,
    desired: w.spec?.replicas ?? 1,
    current: w.status?.replicas ?? 0,
    ready: w.status?.readyReplicas ?? 0,
    updated: w.status?.updatedReplicas ?? 0,
    available: w.status?.availableReplicas ?? 0,
  };
}

/** Scaled: the controller saw the change and exactly the desired number of pods exist and are ready. */
export function scaleComplete(s: WorkloadStatus): boolean {
  return s.observedGeneration >= s.generation && s.current === s.desired && s.ready === s.desired;
}

/**
 * Rolled out, as `kubectl rollout status` decides it: the controller saw the new template, every
 * pod runs it and is ready (and available, for a Deployment), no old pod is left, and a
 * StatefulSet's current revision has become its update revision.
 */
export function rolloutComplete(s: WorkloadStatus, w: Workload): boolean {
  if (s.observedGeneration < s.generation || s.updated !== s.desired || s.current !== s.desired || s.ready !== s.desired) return false;
  if (s.kind === 'Deployment') return s.available === s.desired;
  const status = (w as V1StatefulSet).status;
  return !status?.updateRevision || status.currentRevision === status.updateRevision;
}

function plural(kind: WorkloadStatus['kind']): 'statefulsets' | 'deployments' {
  return kind === 'StatefulSet' ? 'statefulsets' : 'deployments';
}

function readWorkload(t: KubernetesTarget & { workload: WorkloadProfile }): Promise<Workload> {
  const { name, kind } = t.workload;
  const { namespace } = t;
  return call<Workload>({ verb: 'get', resource: `${plural(kind)}/${name}`, namespace }, () =>
    kind === 'StatefulSet' ? t.api.apps.readNamespacedStatefulSet({ name, namespace }) : t.api.apps.readNamespacedDeployment({ name, namespace }),
  );
}

export async function listPodFacts(t: KubernetesTarget, selector: string): Promise<PodFacts[]> {
  const list = await call({ verb: 'list', resource: 'pods', namespace: t.namespace }, () =>
    t.api.core.listNamespacedPod({ namespace: t.namespace, labelSelector: selector }),
  );
  return list.items.map((p) => podFacts(p, t.workload?.roleLabel)).sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

function describeCounts(s: WorkloadStatus): string {
  return `${s.ready}/${s.desired} ready, ${s.updated} updated, ${s.current} existing`;
}

async function describeNotReadyPods(t: KubernetesTarget & { workload: WorkloadProfile }): Promise<string> {
  try {
    const waiting = (await listPodFacts(t, t.workload.selector)).filter((p) => !p.ready);
    return waiting.length ? `; not ready: ${waiting.map((p) => `${p.name} (${p.notReadyReasons.join(', ')})`).join('; ')}` : '';
  } catch {
    // The timeout must still be reported when the pods cannot be listed; they only explain it.
    return '';
  }
}

/**
 * Polls until done() says so, heartbeating the progress each time; past the deadline it throws
 * the failure timedOut() builds. Cancellation interrupts the sleep between polls.
 */
async function waitUntil<T>(params: {
  deadlineMs: number;
  pollIntervalMs: number;
  poll: () => Promise<T>;
  done: (value: T) => boolean;
  progress: (value: T) => unknown;
  timedOut: (value: T) => Promise<ApplicationFailure>;
}): Promise<T> {
  for (;;) {
    const value = await params.poll();
    heartbeat(params.progress(value));
    if (params.done(value)) return value;
    const left = params.deadlineMs - Date.now();
    if (left <= 0) throw await params.timedOut(value);
    await sleep(Math.min(params.pollIntervalMs, left));
  }
}

// ---------------------------------------------------------------- pod address watch

export interface PodAddressChange {
  pod: string;
  from: string | null;
  to: string;
  /** 'list' when seen by a (re)list, which means watch events were missed, 'watch' from a watch event. */
  via: 'list' | 'watch';
}

export interface PodAddressWatchState {
  /** The last address seen for each pod; a deleted pod's address stays, so its replacement's new one counts as a change. */
  addresses: Record<string, string>;
  resourceVersion: string | null;
  reconnects: number;
  relists: number;
}

export interface PodAddressWatchOptions {
  clients: Pick<KubernetesClients, 'core' | 'watch'>;
  namespace: string;
  selector: string;
  /** Addresses the caller already knows: differences from them are reported. Omitted: the first list is the baseline. */
  known?: Record<string, string>;
  /** Resume point (from a heartbeat); too old a version is answered with 410 Gone and leads to a relist. */
  resourceVersion?: string;
  signal: AbortSignal;
  onChange: (change: PodAddressChange, state: PodAddressWatchState) => void;
  onProgress?: (state: PodAddressWatchState, what: 'listed' | 'reconnected' | 'relisting' | 'event') => void;
  /** The apiserver ends each watch after this long; the client's own inactivity timeout is 30 s. */
  serverTimeoutSeconds?: number;
  retryDelayMs?: number;
}

type WatchEnd = { kind: 'closed' } | { kind: 'expired' } | { kind: 'error'; error: unknown };

/**
 * Watches the pods of a selector and calls onChange whenever a pod shows an address other than the
 * last one seen for it. Reconnects when a watch ends (from the last resourceVersion seen), relists
 * when the apiserver answers 410 Gone, and runs until the signal aborts. A 401/403/404 ends it with
 * the non-retryable failure.
 */
export async function followPodAddresses(options: PodAddressWatchOptions): Promise<PodAddressWatchState> {
  const { clients, namespace, selector, signal } = options;
  const state: PodAddressWatchState = {
    addresses: { ...(options.known ?? {}) },
    resourceVersion: options.resourceVersion ?? null,
    reconnects: 0,
    relists: 0,
  };
  let baseline = options.known === undefined && options.resourceVersion === undefined;

  const observe = (pod: V1Pod, via: PodAddressChange['via']) => {
    const name = pod.metadata?.name;
    const ip = pod.status?.podIP;
    if (!name || !ip || state.addresses[name] === ip) return;
    const from = state.addresses[name] ?? null;
    state.addresses[name] = ip;
    if (!baseline) options.onChange({ pod: name, from, to: ip, via }, state);
  };

  const watchOnce = (resourceVersion: string) =>
    new Promise<WatchEnd>((resolve) => {
      let expired = false;
      let controller: AbortController | undefined;
      const abort = () => controller?.abort();
      signal.addEventListener('abort', abort, { once: true });
      const finish = (end: WatchEnd) => {
        signal.removeEventListener('abort', abort);
        resolve(end);
      };
      clients.watch
        .watch(
          `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods`,
          { labelSelector: selector, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: options.serverTimeoutSeconds ?? 25 },
          (type: string, object: unknown) => {
            if (type === 'ERROR') {
              // The apiserver reports an expired resourceVersion inside the stream, as a Status with code 410.
              if ((object as ApiStatus).code === 410) {
                expired = true;
                abort();
              }
              return;
            }
            const pod = object as V1Pod;
            if (pod.metadata?.resourceVersion) state.resourceVersion = pod.metadata.resourceVersion;
            if (type === 'ADDED' || type === 'MODIFIED') observe(pod, 'watch');
            options.onProgress?.(state, 'event');
          },
          (err: unknown) => {
            if (expired || apiStatusOf(err)?.code === 410) finish({ kind: 'expired' });
            else if (err && !signal.aborted) finish({ kind: 'error', error: err });
            else finish({ kind: 'closed' });
          },
        )
        .then((c) => {
          controller = c;
          if (signal.aborted || expired) c.abort();
        })
        .catch((error: unknown) => finish({ kind: 'error', error }));
    });

  let failures = 0;
  while (!signal.aborted) {
    if (state.resourceVersion === null) {
      const list = await call({ verb: 'list', resource: 'pods', namespace }, () => clients.core.listNamespacedPod({ namespace, labelSelector: selector }));
      for (const pod of list.items) observe(pod, 'list');
      baseline = false;
      state.resourceVersion = list.metadata?.resourceVersion ?? null;
      options.onProgress?.(state, 'listed');
      if (signal.aborted) break;
    }
    const end = await watchOnce(state.resourceVersion ?? '0');
    if (signal.aborted) break;
    if (end.kind === 'expired') {
      state.relists += 1;
      state.resourceVersion = null;
      options.onProgress?.(state, 'relisting');
      continue;
    }
    if (end.kind === 'error') {
      const failure = kubernetesFailure(end.error, { verb: 'watch', resource: 'pods', namespace });
      if (failure instanceof ApplicationFailure && failure.nonRetryable) throw failure;
      failures += 1;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(30_000, (options.retryDelayMs ?? 500) * 2 ** Math.min(failures, 6)));
        signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
      });
    } else {
      failures = 0;
    }
    state.reconnects += 1;
    options.onProgress?.(state, 'reconnected');
  }
  return state;
}

// ---------------------------------------------------------------- jobs

export interface JobTemplate {
  image: string;
  command: string[];
  args?: string[];
  /** Plain values only: a secret goes in by reference, through secretEnv. */
  env?: Record<string, string>;
  /** Environment variables read by the Job's pod from Secrets of the cluster's namespace. */
  secretEnv?: Record<string, { name: string; key: string }>;
  /** Default 0: a failed step is reported, not silently run again. */
  backoffLimit?: number;
  activeDeadlineSeconds?: number;
  /** Default one day: long enough for a retried activity to find its Job again. */
  ttlSecondsAfterFinished?: number;
  serviceAccountName?: string;
}

export type JobLogs = { available: true; pod: string; tail: string } | { available: false; pod: string | null; reason: string };

export interface JobResult {
  job: string;
  namespace: string;
  outcome: 'succeeded' | 'failed';
  /** Whether this attempt created the Job, or found the one an earlier attempt created. */
  created: boolean;
  succeeded: number;
  failed: number;
  reason?: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  logs: JobLogs;
}

const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'db-runbooks' };
const TEMPLATE_HASH_ANNOTATION = 'db-runbooks/template-sha256';
const JOB_CONTAINER = 'runbook';

function jobFor(cluster: string, namespace: string, name: string, template: JobTemplate): V1Job {
  const hash = createHash('sha256').update(JSON.stringify(template)).digest('hex');
  const labels = { ...MANAGED_BY, 'db-runbooks/cluster': cluster };
  const env = [
    ...Object.entries(template.env ?? {}).map(([envName, value]) => ({ name: envName, value })),
    ...Object.entries(template.secretEnv ?? {}).map(([envName, ref]) => ({ name: envName, valueFrom: { secretKeyRef: { name: ref.name, key: ref.key } } })),
  ];
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace, labels, annotations: { [TEMPLATE_HASH_ANNOTATION]: hash } },
    spec: {
      backoffLimit: template.backoffLimit ?? 0,
      activeDeadlineSeconds: template.activeDeadlineSeconds,
      ttlSecondsAfterFinished: template.ttlSecondsAfterFinished ?? 86_400,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: template.serviceAccountName,
          containers: [{ name: JOB_CONTAINER, image: template.image, command: template.command, args: template.args, env: env.length ? env : undefined }],
        },
      },
    },
  };
}

function jobFinished(job: V1Job): { outcome: 'succeeded' | 'failed'; reason?: string; message?: string } | undefined {
  const conditions = job.status?.conditions ?? [];
  const complete = conditions.find((c) => c.type === 'Complete' && c.status === 'True');
  if (complete) return { outcome: 'succeeded', reason: complete.reason, message: complete.message };
  const failed = conditions.find((c) => c.type === 'Failed' && c.status === 'True');
  if (failed) return { outcome: 'failed', reason: failed.reason, message: failed.message };
  return undefined;
}

// ---------------------------------------------------------------- secrets

/**
 * Reads one key of a Secret in the cluster's namespace. The value is returned to the caller inside
 * the activity only; failures name the Secret and key, never the value.
 */
export function createKubernetesSecretReader(clients: KubernetesClientSource): KubernetesSecretReader {
  return {
    async readSecretKey(namespace, name, key) {
      const action = { verb: 'get', resource: `secrets/${name}`, namespace };
      let data: Record<string, string> | undefined;
      try {
        data = (await clients().core.readNamespacedSecret({ name, namespace })).data;
      } catch (err) {
        const failure = kubernetesFailure(err, action);
        if (failure instanceof ApplicationFailure && failure.nonRetryable) {
          throw ApplicationFailure.nonRetryable(`cannot be read: ${failure.message}`, 'SecretUnavailable');
        }
        throw failure;
      }
      const encoded = data?.[key];
      if (encoded === undefined) {
        throw ApplicationFailure.nonRetryable(`cannot be read: Secret ${name} in namespace ${namespace} has no key ${key}`, 'SecretUnavailable');
      }
      return Buffer.from(encoded, 'base64').toString('utf8');
    },
  };
}

// ---------------------------------------------------------------- activities

export interface WorkloadFacts extends WorkloadStatus {
  /** False when the Kubernetes API did not answer: every count below is then unknown (0). */
  reachable: boolean;
  exists: boolean;
  error?: string;
  selector: string;
  pods: PodFacts[];
}

export interface ScaleResult extends WorkloadStatus {
  replicas: number;
  changed: boolean;
}

export interface ImageRolloutResult extends WorkloadStatus {
  container: string;
  image: string;
  previousImage: string;
  changed: boolean;
}

export interface PodAddressReport {
  namespace: string;
  selector: string;
  addresses: Record<string, string>;
  changes: PodAddressChange[];
  resourceVersion: string | null;
  reconnects: number;
  relists: number;
}

/** What the image activity heartbeats, so that a retry after the patch still knows the image it replaced. */
interface ImageHeartbeat {
  previousImage: string;
  changed: boolean;
  progress?: WorkloadStatus;
}

interface AddressHeartbeat {
  addresses: Record<string, string>;
  resourceVersion: string | null;
  changes: PodAddressChange[];
}

const LOG_TAIL_LINES = 40;
const LOG_LIMIT_BYTES = 16 * 1024;

export function createKubernetesActivities(deps: { kubernetes: KubernetesConnector; pollIntervalMs?: number; keepAliveMs?: number }) {
  const pollIntervalMs = deps.pollIntervalMs ?? 2_000;
  const keepAliveMs = deps.keepAliveMs ?? 10_000;

  const selectorOf = (t: KubernetesTarget, selector: string | undefined): string => {
    const chosen = selector ?? t.workload?.selector;
    if (!chosen) throw ApplicationFailure.nonRetryable(`selector: cluster "${t.cluster}" has no workload selector in its profile and none was given`, 'ProfileIncomplete');
    return chosen;
  };

  const jobLogs = async (t: KubernetesTarget, job: string): Promise<JobLogs> => {
    const pods = await call({ verb: 'list', resource: 'pods', namespace: t.namespace }, () =>
      t.api.core.listNamespacedPod({ namespace: t.namespace, labelSelector: `batch.kubernetes.io/job-name=${job}` }),
    );
    const newest = [...pods.items].sort((a, b) => (iso(b.metadata?.creationTimestamp) ?? '').localeCompare(iso(a.metadata?.creationTimestamp) ?? ''))[0];
    const pod = newest?.metadata?.name;
    if (!newest || !pod) return { available: false, pod: null, reason: `no pod of job ${job} is left to read logs from` };
    if (!newest.spec?.nodeName) {
      // The apiserver answers an empty log for a pod no node runs: say why instead of returning nothing.
      return { available: false, pod, reason: `no logs: pod ${pod} was never scheduled to a node, so no kubelet ran it or kept its logs` };
    }
    try {
      const tail = await t.api.core.readNamespacedPodLog({ name: pod, namespace: t.namespace, container: JOB_CONTAINER, tailLines: LOG_TAIL_LINES, limitBytes: LOG_LIMIT_BYTES });
      return { available: true, pod, tail };
    } catch (err) {
      const failure = kubernetesFailure(err, { verb: 'get', resource: `pods/${pod}/log`, namespace: t.namespace });
      return { available: false, pod, reason: `the logs of pod ${pod} on node ${newest.spec.nodeName} could not be read: ${failure.message}` };
    }
  };

  return {
    /** The workload's replicas and each pod's readiness, why not, and restarts: the Kubernetes part of clusterHealth. */
    async checkWorkload(request: { cluster: string }): Promise<WorkloadFacts> {
      const t = deps.kubernetes.workload(request.cluster);
      const { kind, name, selector } = t.workload;
      const unknown: WorkloadFacts = {
        kind, name, namespace: t.namespace, selector, reachable: true, exists: false,
        generation: 0, observedGeneration: 0, desired: 0, current: 0, ready: 0, updated: 0, available: 0, pods: [],
      };
      let workload: Workload;
      try {
        workload = await readWorkload(t);
      } catch (err) {
        if (err instanceof ApplicationFailure && err.type === 'KubernetesNotFound') return { ...unknown, error: err.message };
        if (err instanceof ApplicationFailure && err.type === 'KubernetesUnavailable') return { ...unknown, reachable: false, error: err.message };
        throw err;
      }
      const pods = await listPodFacts(t, selector);
      return { ...workloadStatus(kind, t.namespace, workload), reachable: true, exists: true, selector, pods };
    },

    /** The pods of a selector (default: the workload's) with address, readiness, role and restarts. */
    async listPods(request: { cluster: string; selector?: string }): Promise<{ namespace: string; selector: string; pods: PodFacts[] }> {
      const t = deps.kubernetes.target(request.cluster);
      const selector = selectorOf(t, request.selector);
      return { namespace: t.namespace, selector, pods: await listPodFacts(t, selector) };
    },

    /** Sets an annotation on a pod; a pod that already carries the value is left alone. */
    async annotatePod(request: { cluster: string; pod: string; key: string; value: string }): Promise<{ pod: string; key: string; value: string; changed: boolean }> {
      const t = deps.kubernetes.target(request.cluster);
      const { pod, key, value } = request;
      const resource = `pods/${pod}`;
      const changed = await retryOnConflict(`annotate ${resource}`, async () => {
        const current = await call({ verb: 'get', resource, namespace: t.namespace }, () => t.api.core.readNamespacedPod({ name: pod, namespace: t.namespace }));
        if (current.metadata?.annotations?.[key] === value) return false;
        await call({ verb: 'patch', resource, namespace: t.namespace }, () =>
          t.api.core.patchNamespacedPod(
            { name: pod, namespace: t.namespace, body: { metadata: { resourceVersion: current.metadata?.resourceVersion, annotations: { [key]: value } } } },
            mergePatch,
          ),
        );
        return true;
      });
      log.info('pod annotation set', { namespace: t.namespace, pod, key, changed });
      return { pod, key, value, changed };
    },

    /** Removes an annotation from a pod; a pod without it is left alone. */
    async removePodAnnotation(request: { cluster: string; pod: string; key: string }): Promise<{ pod: string; key: string; changed: boolean }> {
      const t = deps.kubernetes.target(request.cluster);
      const { pod, key } = request;
      const resource = `pods/${pod}`;
      const changed = await retryOnConflict(`remove annotation from ${resource}`, async () => {
        const current = await call({ verb: 'get', resource, namespace: t.namespace }, () => t.api.core.readNamespacedPod({ name: pod, namespace: t.namespace }));
        if (current.metadata?.annotations?.[key] === undefined) return false;
        await call({ verb: 'patch', resource, namespace: t.namespace }, () =>
          t.api.core.patchNamespacedPod(
            { name: pod, namespace: t.namespace, body: { metadata: { resourceVersion: current.metadata?.resourceVersion, annotations: { [key]: null } } } },
            mergePatch,
          ),
        );
        return true;
      });
      log.info('pod annotation removed', { namespace: t.namespace, pod, key, changed });
      return { pod, key, changed };
    },

    /**
     * Sets the pod's role label (the profile's workload.roleLabel) to the value, or removes it when
     * the value is null: a Service selecting `<roleLabel>=primary` then routes to the pod or stops.
     * A pod that already has that value is left alone.
     */
    async setPodRole(request: { cluster: string; pod: string; role: string | null }): Promise<{ pod: string; role: string | null; previous: string | null; changed: boolean }> {
      const t = deps.kubernetes.workload(request.cluster);
      const label = t.workload.roleLabel;
      if (!label) throw ApplicationFailure.nonRetryable(`cluster "${request.cluster}": the profile's workload names no roleLabel`, 'ProfileIncomplete');
      const { pod, role } = request;
      if (role !== null && !/^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/.test(role)) throw invalidInput(`role: not a label value: ${JSON.stringify(role)}`);
      const resource = `pods/${pod}`;
      const { previous, changed } = await retryOnConflict(`label ${resource}`, async () => {
        const current = await call({ verb: 'get', resource, namespace: t.namespace }, () => t.api.core.readNamespacedPod({ name: pod, namespace: t.namespace }));
        const was = current.metadata?.labels?.[label] ?? null;
        if (was === role) return { previous: was, changed: false };
        await call({ verb: 'patch', resource, namespace: t.namespace }, () =>
          t.api.core.patchNamespacedPod(
            { name: pod, namespace: t.namespace, body: { metadata: { resourceVersion: current.metadata?.resourceVersion, labels: { [label]: role } } } },
            mergePatch,
          ),
        );
        return { previous: was, changed: true };
      });
      log.info('pod role set', { namespace: t.namespace, pod, label, role, previous, changed });
      return { pod, role, previous, changed };
    },

    /**
     * Waits until a pod of the workload other than `notPod` carries the role (its role label), and
     * returns it; past the deadline, RoleNotMoved naming every pod's role.
     */
    async waitForPodRole(request: { cluster: string; role: string; notPod?: string; deadline: string }): Promise<{ pod: string; role: string; pods: { name: string; role: string | null }[] }> {
      const deadlineMs = parseDeadline(request.deadline);
      const t = deps.kubernetes.workload(request.cluster);
      if (!t.workload.roleLabel) throw ApplicationFailure.nonRetryable(`cluster "${request.cluster}": the profile's workload names no roleLabel`, 'ProfileIncomplete');
      const roles = (pods: PodFacts[]) => pods.map((p) => ({ name: p.name, role: p.role }));
      const pods = await waitUntil({
        deadlineMs,
        pollIntervalMs,
        poll: () => listPodFacts(t, t.workload.selector),
        done: (list) => list.some((p) => p.role === request.role && p.name !== request.notPod && !p.terminating),
        progress: (list) => ({ pods: roles(list) }),
        timedOut: (list) =>
          Promise.resolve(
            ApplicationFailure.create({
              type: 'RoleNotMoved',
              nonRetryable: true,
              message: `no pod${request.notPod ? ` other than ${request.notPod}` : ''} of ${t.workload.kind} ${t.workload.name} in namespace ${t.namespace} became ${request.role} by ${request.deadline}: ${roles(list).map((p) => `${p.name}=${p.role ?? '(none)'}`).join(', ') || 'no pods'}`,
              details: [roles(list)],
            }),
          ),
      });
      const found = pods.find((p) => p.role === request.role && p.name !== request.notPod && !p.terminating)!;
      return { pod: found.name, role: request.role, pods: roles(pods) };
    },

    /** Scales the workload and waits until exactly that many pods exist and are ready, or the deadline passes (RolloutTimedOut). */
    /** The workload's declared replicas and the profile container's image: what a rollback restores. */
    async readWorkloadSpec(request: { cluster: string }): Promise<{ kind: string; name: string; namespace: string; container: string; image: string; replicas: number }> {
      const t = deps.kubernetes.workload(request.cluster);
      const workload = await readWorkload(t);
      const container = (workload.spec?.template.spec?.containers ?? []).find((c) => c.name === t.workload.container);
      if (!container?.image) {
        throw ApplicationFailure.nonRetryable(`${t.workload.kind} ${t.workload.name} in namespace ${t.namespace} has no container ${t.workload.container}`, 'KubernetesNotFound');
      }
      return { kind: t.workload.kind, name: t.workload.name, namespace: t.namespace, container: container.name, image: container.image, replicas: workload.spec?.replicas ?? 1 };
    },

    async scaleWorkload(request: { cluster: string; replicas: number; deadline: string }): Promise<ScaleResult> {
      const { replicas } = request;
      if (!Number.isInteger(replicas) || replicas < 0) throw invalidInput(`replicas: expected a whole number >= 0, got ${JSON.stringify(replicas)}`);
      const deadlineMs = parseDeadline(request.deadline);
      const t = deps.kubernetes.workload(request.cluster);
      const { kind, name } = t.workload;
      const { namespace } = t;
      const resource = `${plural(kind)}/${name}/scale`;
      const changed = await retryOnConflict(`scale ${kind} ${name}`, async () => {
        const scale = await call({ verb: 'get', resource, namespace }, () =>
          kind === 'StatefulSet' ? t.api.apps.readNamespacedStatefulSetScale({ name, namespace }) : t.api.apps.readNamespacedDeploymentScale({ name, namespace }),
        );
        if (scale.spec?.replicas === replicas) return false;
        const body = { metadata: { resourceVersion: scale.metadata?.resourceVersion }, spec: { replicas } };
        await call({ verb: 'patch', resource, namespace }, () =>
          kind === 'StatefulSet'
            ? t.api.apps.patchNamespacedStatefulSetScale({ name, namespace, body }, mergePatch)
            : t.api.apps.patchNamespacedDeploymentScale({ name, namespace, body }, mergePatch),
        );
        return true;
      });
      log.info('workload scale requested', { namespace, kind, name, replicas, changed });
      const status = await waitUntil({
        deadlineMs,
        pollIntervalMs,
        poll: async () => workloadStatus(kind, namespace, await readWorkload(t)),
        done: scaleComplete,
        progress: (s) => ({ replicas, progress: s }),
        timedOut: async (s) =>
          ApplicationFailure.create({
            type: 'RolloutTimedOut',
            nonRetryable: true,
            message: `scale ${kind} ${name} in namespace ${namespace} to ${replicas}: not done by ${request.deadline}: ${describeCounts(s)}${await describeNotReadyPods(t)}`,
            details: [s],
          }),
      });
      return { ...status, replicas, changed };
    },

    /**
     * Sets the image of one container of the workload (default: the profile's container) and waits
     * for the rollout, or the deadline (RolloutTimedOut). An image already in place is not patched again.
     */
    async setWorkloadImage(request: { cluster: string; image: string; container?: string; deadline: string }): Promise<ImageRolloutResult> {
      const { image } = request;
      if (typeof image !== 'string' || image.trim() === '') throw invalidInput(`image: expected an image reference, got ${JSON.stringify(image)}`);
      const deadlineMs = parseDeadline(request.deadline);
      const t = deps.kubernetes.workload(request.cluster);
      const { kind, name } = t.workload;
      const { namespace } = t;
      const container = request.container ?? t.workload.container;
      const resumed = activityInfo().heartbeatDetails as ImageHeartbeat | undefined;
      const resource = `${plural(kind)}/${name}`;

      const { previousImage, changed } = await retryOnConflict(`set image of ${kind} ${name}`, async () => {
        const workload = await readWorkload(t);
        const containers = workload.spec?.template.spec?.containers ?? [];
        const current = containers.find((c) => c.name === container);
        if (!current) {
          throw ApplicationFailure.nonRetryable(
            `${kind} ${name} in namespace ${namespace} has no container ${container} (containers: ${containers.map((c) => c.name).join(', ') || 'none'})`,
            'KubernetesNotFound',
          );
        }
        if (current.image === image) return { previousImage: resumed?.previousImage ?? image, changed: resumed?.changed ?? false };
        const body = { metadata: { resourceVersion: workload.metadata?.resourceVersion }, spec: { template: { spec: { containers: [{ name: container, image }] } } } };
        // A strategic merge patch merges containers by name: the other containers and fields stay as they are.
        await call<Workload>({ verb: 'patch', resource, namespace }, () =>
          kind === 'StatefulSet'
            ? t.api.apps.patchNamespacedStatefulSet({ name, namespace, body }, strategicMergePatch)
            : t.api.apps.patchNamespacedDeployment({ name, namespace, body }, strategicMergePatch),
        );
        return { previousImage: current.image ?? '', changed: true };
      });
      log.info('workload image set', { namespace, kind, name, container, image, previousImage, changed });
      heartbeat({ previousImage, changed } satisfies ImageHeartbeat);

      let latest: Workload | undefined;
      const status = await waitUntil({
        deadlineMs,
        pollIntervalMs,
        poll: async () => {
          latest = await readWorkload(t);
          return workloadStatus(kind, namespace, latest);
        },
        done: (s) => latest !== undefined && rolloutComplete(s, latest),
        progress: (s) => ({ previousImage, changed, progress: s }) satisfies ImageHeartbeat,
        timedOut: async (s) =>
          ApplicationFailure.create({
            type: 'RolloutTimedOut',
            nonRetryable: true,
            message: `rollout of ${image} to ${kind} ${name} in namespace ${namespace}: not done by ${request.deadline}: ${describeCounts(s)}${await describeNotReadyPods(t)}`,
            details: [{ ...s, previousImage }],
          }),
      });
      return { ...status, container, image, previousImage, changed };
    },

    /**
     * Watches the pods of a selector (default: the workload's) and returns as soon as a pod shows
     * an address other than the one known for it, or at the deadline with no change. Pass the
     * addresses you know (e.g. from the previous call) so a change between calls is not missed.
     * Heartbeats its position, and a retry resumes from it.
     */
    async watchPodAddresses(request: { cluster: string; selector?: string; known?: Record<string, string>; deadline: string }): Promise<PodAddressReport> {
      const deadlineMs = parseDeadline(request.deadline);
      const t = deps.kubernetes.target(request.cluster);
      const selector = selectorOf(t, request.selector);
      const resumed = activityInfo().heartbeatDetails as AddressHeartbeat | undefined;
      const changes: PodAddressChange[] = [...(resumed?.changes ?? [])];
      let latest: PodAddressWatchState = {
        addresses: resumed?.addresses ?? request.known ?? {},
        resourceVersion: resumed?.resourceVersion ?? null,
        reconnects: 0,
        relists: 0,
      };
      const report = (): PodAddressReport => ({ namespace: t.namespace, selector, changes, ...latest });
      if (changes.length > 0) return report();

      const stop = new AbortController();
      const cancellation = cancellationSignal();
      const onCancel = () => stop.abort();
      cancellation.addEventListener('abort', onCancel, { once: true });
      const beat = () => heartbeat({ addresses: latest.addresses, resourceVersion: latest.resourceVersion, changes } satisfies AddressHeartbeat);
      // setTimeout fires at once for delays beyond 2^31-1 ms: a deadline weeks away must not end the watch now.
      const deadlineTimer = setTimeout(() => stop.abort(), Math.min(2 ** 31 - 1, Math.max(0, deadlineMs - Date.now())));
      // A quiet watch sends nothing for minutes: keep telling Temporal the worker is alive.
      const keepAlive = setInterval(beat, keepAliveMs);
      try {
        latest = await followPodAddresses({
          clients: t.api,
          namespace: t.namespace,
          selector,
          known: resumed?.addresses ?? request.known,
          resourceVersion: resumed?.resourceVersion ?? undefined,
          signal: stop.signal,
          onChange: (change, state) => {
            latest = state;
            changes.push(change);
            log.info('pod address changed', { namespace: t.namespace, ...change });
            beat();
            // Return with this batch: a relist reports all its differences before the abort is seen.
            queueMicrotask(() => stop.abort());
          },
          onProgress: (state, what) => {
            latest = state;
            if (what !== 'event') log.info(`pod watch ${what}`, { namespace: t.namespace, selector, resourceVersion: state.resourceVersion, reconnects: state.reconnects, relists: state.relists });
            beat();
          },
        });
      } finally {
        clearTimeout(deadlineTimer);
        clearInterval(keepAlive);
        cancellation.removeEventListener('abort', onCancel);
      }
      if (cancellation.aborted) await cancelled();
      return report();
    },

    /**
     * Creates a Job from the template (or finds the one an earlier attempt created under the same
     * name) and waits for it to succeed, fail (JobFailed) or pass the deadline (JobTimedOut). The
     * result carries the tail of the pod's logs, or says why there are none.
     */
    async runJob(request: { cluster: string; name: string; template: JobTemplate; deadline: string }): Promise<JobResult> {
      const deadlineMs = parseDeadline(request.deadline);
      const t = deps.kubernetes.target(request.cluster);
      const { namespace } = t;
      const { name } = request;
      const resource = `jobs/${name}`;
      const wanted = jobFor(request.cluster, namespace, name, request.template);
      let created = true;
      try {
        await call({ verb: 'create', resource, namespace }, () => t.api.batch.createNamespacedJob({ namespace, body: wanted }));
        log.info('job created', { namespace, job: name });
      } catch (err) {
        if (!(err instanceof ApplicationFailure) || err.type !== 'KubernetesAlreadyExists') throw err;
        const existing = await call({ verb: 'get', resource, namespace }, () => t.api.batch.readNamespacedJob({ name, namespace }));
        const hash = existing.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION];
        if (hash !== wanted.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION]) {
          throw ApplicationFailure.nonRetryable(
            `create ${resource} in namespace ${namespace}: a different Job of that name exists (${hash ? 'another template' : 'not created by db-runbooks'}); choose another name`,
            'JobConflict',
          );
        }
        created = false;
        log.info('job exists from an earlier attempt: waiting for it', { namespace, job: name });
      }

      const job = await waitUntil({
        deadlineMs,
        pollIntervalMs,
        poll: () => call({ verb: 'get', resource, namespace }, () => t.api.batch.readNamespacedJob({ name, namespace })),
        done: (j) => jobFinished(j) !== undefined,
        progress: (j) => ({ job: name, active: j.status?.active ?? 0, succeeded: j.status?.succeeded ?? 0, failed: j.status?.failed ?? 0 }),
        timedOut: async (j) => {
          const logs = await jobLogs(t, name);
          return ApplicationFailure.create({
            type: 'JobTimedOut',
            nonRetryable: true,
            message: `job ${name} in namespace ${namespace} did not finish by ${request.deadline} (active ${j.status?.active ?? 0}, failed ${j.status?.failed ?? 0}); it is left running`,
            details: [{ job: name, namespace, logs }],
          });
        },
      });
      const finished = jobFinished(job)!;
      const result: JobResult = {
        job: name,
        namespace,
        outcome: finished.outcome,
        created,
        succeeded: job.status?.succeeded ?? 0,
        failed: job.status?.failed ?? 0,
        reason: finished.reason,
        message: finished.message,
        startedAt: iso(job.status?.startTime),
        finishedAt: iso(job.status?.completionTime) ?? new Date().toISOString(),
        logs: await jobLogs(t, name),
      };
      if (result.outcome === 'failed') {
        const logs = result.logs.available ? `last log lines:\n${result.logs.tail}` : result.logs.reason;
        throw ApplicationFailure.create({
          type: 'JobFailed',
          nonRetryable: true,
          message: `job ${name} in namespace ${namespace} failed: ${result.reason ?? 'Failed'}${result.message ? `: ${result.message}` : ''}; ${logs}`,
          details: [result],
        });
      }
      log.info('job succeeded', { namespace, job: name, logsAvailable: result.logs.available });
      return result;
    },
  };
}
