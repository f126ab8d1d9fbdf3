// The node-control adapter on its own, in an activity context: the process kind runs the stack
// script's real commands (and reports their failures with their output, and stops them when
// cancelled); the kubernetes kind fences through the real kube-apiserver and refuses what it cannot do.
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { FENCED_ANNOTATION } from '../../activities/nodes';
import { ADMIN_KUBECONFIG, adminClients, createTestNamespace, deleteTestNamespace, type AdminClients } from '../helpers/kubernetes';
import { REPO_ROOT } from '../helpers/stack';
import { inActivity, serverActivities, testProfiles, type ServerActivities } from '../helpers/temporal';

const marker = path.join(mkdtempSync(path.join(os.tmpdir(), 'dbr-node-control-')), 'finished');
let admin: AdminClients;
let namespace: string;
let activities: ServerActivities;

beforeAll(async () => {
  admin = adminClients();
  namespace = await createTestNamespace(admin, 'dbr-nodes');
  await admin.core.createNamespacedPod({ namespace, body: { metadata: { name: 'db-0' }, spec: { containers: [{ name: 'mariadb', image: 'mariadb:10.11' }] } } });
  const profiles = testProfiles(`
clusters:
  by-process:
    mysql:
      topology: galera
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      nodes:
        - { name: galera1, host: 127.0.0.1, port: 3321 }
        - { name: fo1, host: 127.0.0.1, port: 3331 }
      control:
        kind: process
        cwd: ${REPO_ROOT}
        grastate: [bash, scripts/stack.sh, grastate, '{node}']
        recover: [bash, scripts/stack.sh, wsrep-recover, '{node}']
        start: [bash, -c, 'sleep 3; touch "$0"', ${marker}]
  by-pod:
    namespace: ${namespace}
    mysql:
      topology: replication
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      nodes: [{ name: db, host: 127.0.0.1, port: 3310, pod: db-0 }]
      control: { kind: kubernetes }
`);
  activities = serverActivities(profiles, { kubeconfigPath: ADMIN_KUBECONFIG });
});

afterAll(async () => {
  if (namespace) await deleteTestNamespace(admin, namespace);
});

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(() => new Error('expected a failure'), (e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

test('process: a command that fails is reported with its own words; a running Galera node is not recovered', async () => {
  const notGalera = await failureOf(inActivity(() => activities.readGaleraState({ cluster: 'by-process', node: 'fo1' })));
  expect(notGalera).toMatchObject({ type: 'NodeCommandFailed', nonRetryable: true });
  expect(notGalera.message).toBe('node fo1: grastate (bash scripts/stack.sh grastate fo1) exited with 1: error: grastate: fo1 is not a Galera part');

  // grastate.dat of a running node says -1, so the adapter asks InnoDB, and the script refuses while the node runs.
  const running = await failureOf(inActivity(() => activities.readGaleraState({ cluster: 'by-process', node: 'galera1' })));
  expect(running.message).toBe('node galera1: recover (bash scripts/stack.sh wsrep-recover galera1) exited with 1: error: galera1 is running: --wsrep-recover needs the node stopped');
});

test('process: a command still running when the activity is cancelled is stopped', async () => {
  const environment = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  const started = inActivity(() => activities.controlNode({ cluster: 'by-process', node: 'galera1', action: 'start' }), environment);
  await new Promise((resolve) => setTimeout(resolve, 500));
  environment.cancel();
  await expect(started).rejects.toBeInstanceOf(CancelledFailure);
  await new Promise((resolve) => setTimeout(resolve, 4000));
  expect(existsSync(marker)).toBe(false);
});

test('kubernetes: fencing marks the pod and unfencing removes the mark; starting a pod\'s database or reading its Galera state is refused', async () => {
  await inActivity(() => activities.controlNode({ cluster: 'by-pod', node: 'db', action: 'fence' }));
  expect((await admin.core.readNamespacedPod({ name: 'db-0', namespace })).metadata?.annotations?.[FENCED_ANNOTATION]).toBe('read-only');
  await inActivity(() => activities.controlNode({ cluster: 'by-pod', node: 'db', action: 'unfence' }));
  expect((await admin.core.readNamespacedPod({ name: 'db-0', namespace })).metadata?.annotations?.[FENCED_ANNOTATION]).toBeUndefined();

  const start = await failureOf(inActivity(() => activities.controlNode({ cluster: 'by-pod', node: 'db', action: 'start' })));
  expect(start).toMatchObject({ type: 'NodeControlUnsupported', nonRetryable: true });
  expect(start.message).toBe('cluster by-pod: node control cannot start: starting and stopping database processes in pods needs a kubelet-side agent; only fence and unfence are implemented for kind kubernetes');
  const state = await failureOf(inActivity(() => activities.readGaleraState({ cluster: 'by-pod', node: 'db' })));
  expect(state.message).toBe("cluster by-pod: node control cannot grastate: reading grastate.dat from a pod's volume needs an exec or a Job that a kubelet runs; not implemented for kind kubernetes");
});
