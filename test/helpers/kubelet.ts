// Plays the kubelet the local stack does not run: writes pod status through the real apiserver's
// status subresource (Running and Ready with an address, readiness flips, restarts, a Job's pod
// finishing), deletes pods, and can stand in for a node whose kubelet serves container logs.
// Controllers (StatefulSet, Deployment, Job) react to these writes exactly as they would to a kubelet's.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PatchStrategy, setHeaderOptions, type V1ContainerStatus, type V1Pod } from '@kubernetes/client-node';
import { KUBE_DIR, type AdminClients } from './kubernetes';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Status as the apiserver takes it in a patch: plain JSON, times as RFC 3339 strings. */
type Json = Record<string, unknown>;

function condition(type: string, ready: boolean, now: string, reason?: string, message?: string): Json {
  return { type, status: ready ? 'True' : 'False', lastTransitionTime: now, reason, message };
}

export class Kubelet {
  private addressCounter = 0;
  private readonly base = 1 + Math.floor(Math.random() * 200);
  private readonly logs = new Map<string, string>();
  private server?: Server;

  constructor(private readonly admin: AdminClients) {}

  /** A pod address no other pod of this kubelet has had. */
  nextAddress(): string {
    this.addressCounter += 1;
    return `10.${this.base}.${Math.floor(this.addressCounter / 250)}.${(this.addressCounter % 250) + 1}`;
  }

  private async pod(namespace: string, name: string): Promise<V1Pod> {
    return this.admin.core.readNamespacedPod({ name, namespace });
  }

  private async writeStatus(namespace: string, name: string, status: Record<string, unknown>): Promise<void> {
    await this.admin.core.patchNamespacedPodStatus({ name, namespace, body: { status } }, mergePatch);
  }

  private containerStatuses(pod: V1Pod, state: (name: string, previous?: V1ContainerStatus) => Json): Json[] {
    const previous = new Map((pod.status?.containerStatuses ?? []).map((s) => [s.name, s]));
    return (pod.spec?.containers ?? []).map((c) => ({
      name: c.name,
      image: c.image ?? '',
      imageID: '',
      restartCount: previous.get(c.name)?.restartCount ?? 0,
      // A kubelet keeps the last termination until the next one.
      lastState: previous.get(c.name)?.lastState,
      ready: false,
      ...state(c.name, previous.get(c.name)),
    }));
  }

  /** Running and (by default) Ready, with an address (a new one unless given). Returns the address. */
  async markRunning(namespace: string, name: string, options: { ip?: string; ready?: boolean } = {}): Promise<string> {
    const pod = await this.pod(namespace, name);
    const ip = options.ip ?? pod.status?.podIP ?? this.nextAddress();
    const ready = options.ready ?? true;
    const now = new Date().toISOString();
    await this.writeStatus(namespace, name, {
      phase: 'Running',
      podIP: ip,
      podIPs: [{ ip }],
      startTime: now,
      conditions: [condition('Initialized', true, now), condition('ContainersReady', ready, now), condition('Ready', ready, now)],
      containerStatuses: this.containerStatuses(pod, (_, prev) => ({ ready, started: true, state: { running: { startedAt: prev?.state?.running?.startedAt ?? now } } })),
    });
    return ip;
  }

  /** Flips readiness, as a failing or recovering readiness probe would. */
  async setReady(namespace: string, name: string, ready: boolean): Promise<void> {
    const pod = await this.pod(namespace, name);
    const now = new Date().toISOString();
    const names = (pod.spec?.containers ?? []).map((c) => c.name).join(' ');
    await this.writeStatus(namespace, name, {
      conditions: [
        condition('Initialized', true, now),
        condition('ContainersReady', ready, now, ready ? undefined : 'ContainersNotReady', ready ? undefined : `containers with unready status: [${names}]`),
        condition('Ready', ready, now, ready ? undefined : 'ContainersNotReady', ready ? undefined : `containers with unready status: [${names}]`),
      ],
      containerStatuses: this.containerStatuses(pod, (_, prev) => ({ ready, started: true, state: prev?.state ?? { running: { startedAt: now } } })),
    });
  }

  /** A container that crashed and waits to be restarted: not ready, one more restart, the last termination recorded now. */
  async crashLoop(namespace: string, name: string, container: string, termination: { reason: string; exitCode: number }): Promise<void> {
    const pod = await this.pod(namespace, name);
    const now = new Date().toISOString();
    await this.writeStatus(namespace, name, {
      conditions: [
        condition('Initialized', true, now),
        condition('ContainersReady', false, now, 'ContainersNotReady', `containers with unready status: [${container}]`),
        condition('Ready', false, now, 'ContainersNotReady', `containers with unready status: [${container}]`),
      ],
      containerStatuses: this.containerStatuses(pod, (c, prev) =>
        c === container
          ? {
              ready: false,
              started: false,
              restartCount: (prev?.restartCount ?? 0) + 1,
              state: { waiting: { reason: 'CrashLoopBackOff', message: `back-off 10s restarting failed container=${container}` } },
              lastState: { terminated: { reason: termination.reason, exitCode: termination.exitCode, startedAt: now, finishedAt: now } },
            }
          : { ready: prev?.ready ?? false, started: true, state: prev?.state },
      ),
    });
  }

  /** A Job's pod ran to the end: Succeeded (exit 0) or Failed (the exit code given). */
  async finish(namespace: string, name: string, phase: 'Succeeded' | 'Failed', exitCode = phase === 'Succeeded' ? 0 : 1): Promise<void> {
    const pod = await this.pod(namespace, name);
    const now = new Date().toISOString();
    await this.writeStatus(namespace, name, {
      phase,
      conditions: [condition('Ready', false, now, 'PodCompleted')],
      containerStatuses: this.containerStatuses(pod, () => ({
        ready: false,
        started: false,
        state: { terminated: { exitCode, reason: phase === 'Succeeded' ? 'Completed' : 'Error', startedAt: now, finishedAt: now } },
      })),
    });
  }

  /** Deletes a pod; unscheduled pods go at once, pods on a node without delay (there is no kubelet to wait for). */
  async deletePod(namespace: string, name: string): Promise<void> {
    await this.admin.core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
  }

  async podNames(namespace: string, selector: string): Promise<string[]> {
    const list = await this.admin.core.listNamespacedPod({ namespace, labelSelector: selector });
    return list.items.map((p) => p.metadata!.name!).sort();
  }

  /**
   * Until stopped, makes every new pod of the selector Running and Ready with a fresh address, as a
   * healthy node would: StatefulSet and Deployment rollouts then proceed on their own.
   */
  autoReady(namespace: string, selector: string): { stop(): Promise<void> } {
    let running = true;
    const loop = (async () => {
      while (running) {
        try {
          const list = await this.admin.core.listNamespacedPod({ namespace, labelSelector: selector });
          for (const pod of list.items) {
            if (pod.metadata?.deletionTimestamp || pod.status?.phase === 'Running') continue;
            await this.markRunning(namespace, pod.metadata!.name!).catch(() => undefined);
          }
        } catch {
          // The namespace may be going away at the end of a test: stop() ends the loop.
        }
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
      },
    };
  }

  /**
   * A Node object whose kubelet endpoint is a small HTTPS server here that answers the apiserver's
   * container-log requests with the lines given to writeLogs(). Pods bound to it have logs.
   */
  async startNode(name: string): Promise<void> {
    const server = createServer(
      { key: readFileSync(path.join(KUBE_DIR, 'apiserver.key')), cert: readFileSync(path.join(KUBE_DIR, 'apiserver.crt')) },
      (req, res) => {
        const match = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/?]+)(\?.*)?$/.exec(req.url ?? '');
        const text = match ? this.logs.get(`${match[1]}/${match[2]}/${match[3]}`) : undefined;
        if (text === undefined) {
          res.writeHead(404).end('not found');
          return;
        }
        const tail = Number(new URLSearchParams(match![4]?.slice(1) ?? '').get('tailLines') ?? 0);
        const lines = text.split('\n').filter((l) => l !== '');
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`${(tail > 0 ? lines.slice(-tail) : lines).join('\n')}\n`);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    const port = (server.address() as AddressInfo).port;
    await this.admin.core.createNode({ body: { metadata: { name } } });
    await this.admin.core.patchNodeStatus(
      { name, body: { status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }], daemonEndpoints: { kubeletEndpoint: { Port: port } } } } },
      mergePatch,
    );
  }

  async stopNode(name: string): Promise<void> {
    await this.admin.core.deleteNode({ name }).catch(() => undefined);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  /** Binds the pod to the node, as the scheduler would. */
  async bind(namespace: string, pod: string, node: string): Promise<void> {
    await this.admin.core.createNamespacedPodBinding({ name: pod, namespace, body: { metadata: { name: pod }, target: { kind: 'Node', name: node } } });
  }

  writeLogs(namespace: string, pod: string, container: string, text: string): void {
    this.logs.set(`${namespace}/${pod}/${container}`, text);
  }
}
