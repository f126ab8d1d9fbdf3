// The pod watcher inside the worker: for each cluster whose profile asks for it, watches the
// workload's pods and, when one moves to a new address, signals-with-start the cluster's
// refreshNodeAddresses run (which waits for the changes to settle: pods restarting together make
// one run). Every worker process runs it, but a Kubernetes Lease per cluster and task queue lets
// only one of them watch; another takes over when the leader stops renewing.
import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Logger } from '@temporalio/common';
import { V1MicroTime } from '@kubernetes/client-node';
import { followPodAddresses, type KubernetesClientSource, type KubernetesClients } from '../activities/kubernetes';
import type { ClusterProfile } from '../activities/profile';
import { podsChangedSignal, refreshWorkflowId, searchAttributes } from '../workflows/definitions';

export interface AddressWatcherOptions {
  profiles: ReadonlyMap<string, ClusterProfile>;
  kubernetes: KubernetesClientSource;
  client: Client;
  taskQueue: string;
  /** This process, as written in the Lease. */
  identity: string;
  logger: Logger;
  leaseSeconds?: number;
}

export interface AddressWatchers {
  /** Clusters this process currently watches (holds the lease for). */
  leading(): string[];
  stop(): Promise<void>;
}

export function leaseName(cluster: string, taskQueue: string): string {
  return `db-runbooks-address-watch-${cluster}-${createHash('sha256').update(taskQueue).digest('hex').slice(0, 8)}`;
}

function isConflict(err: unknown): boolean {
  const code = (err as { code?: number }).code;
  return code === 409 || code === 404;
}

/** One attempt to hold the lease: true when this process holds it afterwards. */
export async function holdLease(api: KubernetesClients, namespace: string, name: string, identity: string, leaseSeconds: number): Promise<boolean> {
  // Lease times are MicroTime: the apiserver refuses the millisecond form a plain Date serializes to.
  const now = new V1MicroTime();
  let lease;
  try {
    lease = await api.coordination.readNamespacedLease({ name, namespace });
  } catch (err) {
    if ((err as { code?: number }).code !== 404) throw err;
    try {
      await api.coordination.createNamespacedLease({
        namespace,
        body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds: leaseSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 } },
      });
      return true;
    } catch (createErr) {
      if (isConflict(createErr)) return false;
      throw createErr;
    }
  }
  const spec = lease.spec ?? {};
  const holder = spec.holderIdentity ?? '';
  const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
  const expired = renewed + (spec.leaseDurationSeconds ?? leaseSeconds) * 1000 < now.getTime();
  if (holder !== identity && holder !== '' && !expired) return false;
  try {
    await api.coordination.replaceNamespacedLease({
      name,
      namespace,
      body: {
        metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds: leaseSeconds,
          renewTime: now,
          acquireTime: holder === identity && spec.acquireTime ? new V1MicroTime(spec.acquireTime) : now,
          leaseTransitions: (spec.leaseTransitions ?? 0) + (holder === identity ? 0 : 1),
        },
      },
    });
    return true;
  } catch (err) {
    // Someone else renewed or took it in between: not ours this time.
    if (isConflict(err)) return false;
    throw err;
  }
}

export async function releaseLease(api: KubernetesClients, namespace: string, name: string, identity: string): Promise<void> {
  const lease = await api.coordination.readNamespacedLease({ name, namespace });
  if (lease.spec?.holderIdentity !== identity) return;
  await api.coordination.replaceNamespacedLease({
    name,
    namespace,
    body: {
      metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
      spec: { ...lease.spec, holderIdentity: '', acquireTime: undefined, renewTime: new V1MicroTime(0) },
    },
  });
}

export function startAddressWatchers(options: AddressWatcherOptions): AddressWatchers {
  const leaseSeconds = options.leaseSeconds ?? 15;
  const stopping = new AbortController();
  const leading = new Set<string>();
  const { logger } = options;

  const signalRefresh = async (cluster: string, pods: string[], reason: string) => {
    await options.client.workflow.signalWithStart('refreshNodeAddresses', {
      workflowId: refreshWorkflowId(cluster),
      taskQueue: options.taskQueue,
      args: [{ cluster, reason }],
      signal: podsChangedSignal,
      signalArgs: [{ pods, at: new Date().toISOString() }],
      typedSearchAttributes: [
        { key: searchAttributes.cluster, value: cluster },
        { key: searchAttributes.runbook, value: 'refreshNodeAddresses' },
      ],
    });
  };

  const watchCluster = async (cluster: string, profile: ClusterProfile) => {
    const namespace = profile.namespace!;
    const selector = profile.workload!.selector;
    const name = leaseName(cluster, options.taskQueue);
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        stopping.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
    while (!stopping.signal.aborted) {
      let api: KubernetesClients;
      try {
        api = options.kubernetes();
        if (!(await holdLease(api, namespace, name, options.identity, leaseSeconds))) {
          await sleep((leaseSeconds * 1000) / 3);
          continue;
        }
      } catch (err) {
        logger.warn('address watch: cannot reach the lease', { cluster, error: (err as Error).message });
        await sleep((leaseSeconds * 1000) / 3);
        continue;
      }
      leading.add(cluster);
      logger.info('address watch: leading', { cluster, lease: `${namespace}/${name}` });
      const watching = new AbortController();
      const onStop = () => watching.abort();
      stopping.signal.addEventListener('abort', onStop, { once: true });
      const renewing = (async () => {
        while (!watching.signal.aborted) {
          await new Promise((resolve) => setTimeout(resolve, (leaseSeconds * 1000) / 3));
          if (watching.signal.aborted) return;
          const kept = await holdLease(api, namespace, name, options.identity, leaseSeconds).catch(() => false);
          if (!kept) {
            logger.warn('address watch: lost the lease', { cluster });
            watching.abort();
          }
        }
      })();
      // Changes made while nobody watched (a leader gap, a restart) are not seen as events: refresh once.
      await signalRefresh(cluster, [], 'the address watch (re)started').catch((err: unknown) => {
        logger.warn('address watch: cannot start a refresh', { cluster, error: (err as Error).message });
      });
      try {
        await followPodAddresses({
          clients: api,
          namespace,
          selector,
          signal: watching.signal,
          onChange: (change) => {
            logger.info('address watch: pod address changed', { cluster, pod: change.pod, from: change.from, to: change.to });
            signalRefresh(cluster, [change.pod], `pod ${change.pod} moved from ${change.from ?? 'no address'} to ${change.to}`).catch((err: unknown) => {
              logger.warn('address watch: cannot signal the refresh', { cluster, error: (err as Error).message });
            });
          },
        });
      } catch (err) {
        if (!watching.signal.aborted) logger.warn('address watch ended', { cluster, error: (err as Error).message });
      } finally {
        watching.abort();
        stopping.signal.removeEventListener('abort', onStop);
        await renewing;
        leading.delete(cluster);
      }
      if (stopping.signal.aborted) await releaseLease(api, namespace, name, options.identity).catch(() => undefined);
    }
  };

  const clusters = [...options.profiles].filter(([, p]) => p.addressRefresh?.watch && p.namespace && p.workload);
  const loops = clusters.map(([cluster, profile]) => watchCluster(cluster, profile));
  if (clusters.length) logger.info('address watch: starting', { clusters: clusters.map(([c]) => c), identity: options.identity });
  return {
    leading: () => [...leading].sort(),
    async stop() {
      stopping.abort();
      await Promise.all(loops);
    },
  };
}
