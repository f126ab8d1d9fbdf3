// The node-control adapter on its own, in an activity context: the process kind runs the stack
// script's real commands (and reports their failures with their output, and stops them when
// cancelled, and never bootstraps a Galera node twice); the kubernetes kind fences through the real
// kube-apiserver and refuses what it cannot do.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { FENCED_ANNOTATION } from '../../activities/nodes';
import { GALERA_NODES, galeraStatus, restoreGaleraCluster, wholeGaleraCluster } from '../helpers/galera';
import { ADMIN_KUBECONFIG, adminClients, createTestNamespace, deleteTestNamespace, type AdminClients } from '../helpers/kubernetes';
import { connectAs } from '../helpers/replication';
import { REPO_ROOT, stack } from '../helpers/stack';
import { inActivity, serverActivities, testProfiles, type ServerActivities } from '../helpers/temporal';

const execFileAsync = promisify(execFile);
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
  by-restart:
    mysql:
      topology: galera
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      nodes:
        - { name: galera1, host: 127.0.0.1, port: ${GALERA_NODES.galera1} }
        - { name: galera2, host: 127.0.0.1, port: ${GALERA_NODES.galera2} }
        - { name: galera3, host: 127.0.0.1, port: ${GALERA_NODES.galera3} }
      control:
        kind: process
        cwd: ${REPO_ROOT}
        # As MariaDB's galera_new_cluster does (systemctl restart): whatever runs is restarted as a new cluster.
        bootstrap: [bash, -c, 'bash scripts/stack.sh stop "$0" && bash scripts/stack.sh start --bootstrap "$0"', '{node}']
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

test('process: a bootstrap retried after its command ran is not run again, and none runs beside a Primary component', async () => {
  // A full outage, galera1 the last to stop.
  await wholeGaleraCluster();
  await stack('stop', 'galera3');
  await stack('stop', 'galera2');
  await stack('stop', 'galera1');
  try {
    // The first attempt's worker died while its command ran: the command goes on without it, and
    // Temporal retries the activity, whose heartbeat said the command had started.
    const orphan = execFileAsync('bash', ['scripts/stack.sh', 'start', '--bootstrap', 'galera1'], { cwd: REPO_ROOT }).then(
      () => 'finished',
      (err: Error) => `failed: ${err.message}`,
    );
    const waited = await inActivity(
      () => activities.controlNode({ cluster: 'by-restart', node: 'galera1', action: 'bootstrap' }),
      new MockActivityEnvironment({ attempt: 2, heartbeatDetails: { node: 'galera1', action: 'bootstrap', commandStarted: true } }, { logger: new DefaultLogger('ERROR') }),
    );
    expect(waited.output).toBe('galera1 is already in a Primary component (size 1, Synced): not bootstrapped again');
    // The first command was left to finish: nobody stopped the node under it.
    expect(await orphan).toBe('finished');
    expect(await galeraStatus('galera1')).toMatchObject({ wsrep_cluster_status: 'Primary', wsrep_cluster_size: '1' });
    const session = await connectAs(GALERA_NODES.galera1);
    try {
      const [[before]] = (await session.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];

      // A retry after an attempt that finished its command but died before reporting it.
      const retried = await inActivity(
        () => activities.controlNode({ cluster: 'by-restart', node: 'galera1', action: 'bootstrap' }),
        new MockActivityEnvironment({ attempt: 2 }, { logger: new DefaultLogger('ERROR') }),
      );
      expect(retried.output).toBe('galera1 is already in a Primary component (size 1, Synced): not bootstrapped again');
      // Not restarted: the session opened before the retry is still the same one.
      const [[after]] = (await session.query('SELECT CONNECTION_ID() AS id')) as unknown as [[{ id: number }]];
      expect(after.id).toBe(before.id);
    } finally {
      session.destroy();
    }

    const beside = await failureOf(inActivity(() => activities.controlNode({ cluster: 'by-restart', node: 'galera2', action: 'bootstrap' })));
    expect(beside).toMatchObject({ type: 'BootstrapRefused', nonRetryable: true });
    expect(beside.message).toBe(
      'node galera2: bootstrap refused: galera1 is in a Primary component of size 1 (Synced); a bootstrap would start a second cluster beside it: start galera2 to join it',
    );
    await expect(galeraStatus('galera2')).rejects.toThrow();
  } finally {
    await restoreGaleraCluster();
  }
});
