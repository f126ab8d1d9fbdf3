// vitessDrain against the real kube-apiserver, on a real Temporal dev server. The test plays the
// Vitess operator's drain controller: when the primary tablet's pod carries the drain annotation,
// it moves the primary (the tablet-type label) to another pod. The annotation must be gone at the
// end whatever happens: success, timeout, cancellation.
import { randomBytes } from 'node:crypto';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { vitessDrain } from '../../workflows';
import { getProgressQuery } from '../../workflows/definitions';
import { DRAIN_ANNOTATION, type VitessDrainResult } from '../../workflows/vitessDrain';
import { Kubelet } from '../helpers/kubelet';
import { ADMIN_KUBECONFIG, adminClients, createStatefulSet, createTestNamespace, deleteTestNamespace, eventually, type AdminClients } from '../helpers/kubernetes';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';

const CLUSTER = `vt-${randomBytes(3).toString('hex')}`;
const TABLET_TYPE = 'planetscale.com/tablet-type';
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let admin: AdminClients;
let namespace: string;
let stopKubelet: () => Promise<void>;
let runs = 0;

beforeAll(async () => {
  admin = adminClients();
  namespace = await createTestNamespace(admin, 'dbr-vitess');
  const profiles = testProfiles(`
clusters:
  ${CLUSTER}:
    namespace: ${namespace}
    workload: { kind: StatefulSet, name: tablet, selector: app=tablet, container: vttablet, roleLabel: ${TABLET_TYPE} }
    failover: { strategy: vitess, drainTimeoutSeconds: 60 }
`);
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, profiles, { kubeconfigPath: ADMIN_KUBECONFIG }));
  await createStatefulSet(admin, namespace, { name: 'tablet', replicas: 3, image: 'vitess/lite:v21.0.0', container: 'vttablet' });
  const node = new Kubelet(admin).autoReady(namespace, 'app=tablet');
  stopKubelet = () => node.stop();
  await eventually('the tablets ready', async () => ((await admin.apps.readNamespacedStatefulSet({ name: 'tablet', namespace })).status?.readyReplicas === 3 ? true : undefined));
});

beforeEach(async () => {
  await setTypes({ 'tablet-0': 'primary', 'tablet-1': 'replica', 'tablet-2': 'replica' });
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await stopKubelet?.();
  if (namespace) await deleteTestNamespace(admin, namespace);
});

async function setTypes(types: Record<string, string>): Promise<void> {
  for (const [pod, type] of Object.entries(types)) {
    await admin.core.patchNamespacedPod({ name: pod, namespace, body: { metadata: { labels: { [TABLET_TYPE]: type } } } }, mergePatch);
  }
}

async function tablets(): Promise<{ name: string; type?: string; drain?: string }[]> {
  const pods = await admin.core.listNamespacedPod({ namespace, labelSelector: 'app=tablet' });
  return pods.items
    .map((p) => ({ name: p.metadata!.name!, type: p.metadata?.labels?.[TABLET_TYPE], drain: p.metadata?.annotations?.[DRAIN_ANNOTATION] }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The operator's drain controller: a primary tablet annotated for drain hands the primary to the
 * first replica that is not drained itself. Returns the drain reasons it saw.
 */
function playOperator(): { seen: string[]; stop(): Promise<void> } {
  const seen: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const all = await tablets();
      const drained = all.find((t) => t.type === 'primary' && t.drain !== undefined);
      const next = all.find((t) => t.type === 'replica' && t.drain === undefined);
      if (drained && next) {
        seen.push(drained.drain!);
        await setTypes({ [drained.name]: 'replica', [next.name]: 'primary' });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  return {
    seen,
    async stop() {
      running = false;
      await loop;
    },
  };
}

function start(input: Record<string, unknown>) {
  return env.client.workflow.start(vitessDrain, { taskQueue: worker.taskQueue, workflowId: `vitessDrain/${CLUSTER}-${++runs}`, args: [{ cluster: CLUSTER, ...input }] });
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure | CancelledFailure> {
  const err = await promise.then(() => new Error('expected the runbook to fail'), (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause && !(cause instanceof ApplicationFailure) && !(cause instanceof CancelledFailure)) cause = (cause as Error).cause;
  return cause as ApplicationFailure | CancelledFailure;
}

test('the operator moves the primary after the drain annotation; the annotation is removed', async () => {
  const operator = playOperator();
  let result: VitessDrainResult;
  try {
    result = await (await start({ reason: 'node maintenance' })).result();
  } finally {
    await operator.stop();
  }
  expect(operator.seen).toEqual(['node maintenance']);
  expect(result).toMatchObject({ drainedPod: 'tablet-0', newPrimaryPod: 'tablet-1', annotationRemoved: true });
  expect(await tablets()).toEqual([
    { name: 'tablet-0', type: 'replica', drain: undefined },
    { name: 'tablet-1', type: 'primary', drain: undefined },
    { name: 'tablet-2', type: 'replica', drain: undefined },
  ]);
});

test('an operator that never moves the primary: the drain times out and the annotation is removed', async () => {
  const handle = await start({ timeoutSeconds: 2 });
  const failure = await failureOf(handle.result());
  expect(failure).toMatchObject({ type: 'RoleNotMoved', nonRetryable: true });
  expect(failure.message).toMatch(/^no pod other than tablet-0 of StatefulSet tablet in namespace dbr-vitess-[0-9a-f]+ became primary by .*: tablet-0=primary, tablet-1=replica, tablet-2=replica$/);
  expect((await tablets()).map((t) => t.drain)).toEqual([undefined, undefined, undefined]);
  const progress = await handle.query(getProgressQuery);
  expect(progress.steps.find((s) => s.name === 'remove the annotation')!.state).toBe('done');
});

test('a drain cancelled while it waits removes the annotation', async () => {
  const handle = await start({});
  await eventually('the annotation', async () => ((await tablets())[0]!.drain ? true : undefined));
  expect((await tablets())[0]!.drain).toBe(`db-runbooks ${handle.workflowId}`);
  await handle.cancel();
  expect(await failureOf(handle.result())).toBeInstanceOf(CancelledFailure);
  expect((await tablets()).map((t) => t.drain)).toEqual([undefined, undefined, undefined]);
  expect((await handle.query(getProgressQuery)).outcome).toBe('cancelled');
});

test('no single primary tablet: refused before any annotation', async () => {
  await setTypes({ 'tablet-0': 'replica' });
  const failure = await failureOf((await start({})).result());
  expect(failure).toMatchObject({ type: 'PreflightFailed' });
  expect(failure.message).toBe(`cluster ${CLUSTER}: expected exactly one pod with ${TABLET_TYPE}=primary, found 0: tablet-0=replica, tablet-1=replica, tablet-2=replica`);
  expect((await tablets()).map((t) => t.drain)).toEqual([undefined, undefined, undefined]);
});
