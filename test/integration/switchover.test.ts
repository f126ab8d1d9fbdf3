// switchover on the stack's real GTID pair (3311 primary, 3312 replica) with routing through the
// real kube-apiserver (the test plays the kubelet and a client application), on a real Temporal dev
// server. The pair ends as it began: the tests switch back, and restorePair() runs whatever happens.
import { randomBytes } from 'node:crypto';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { switchover } from '../../workflows';
import { getProgressQuery } from '../../workflows/definitions';
import type { SwitchoverResult } from '../../workflows/switchover';
import { Kubelet } from '../helpers/kubelet';
import { ADMIN_KUBECONFIG, adminClients, createStatefulSet, createTestNamespace, deleteTestNamespace, eventually, type AdminClients } from '../helpers/kubernetes';
import { PAIR, connectAs, facts, restorePair, sql, waitForPosition } from '../helpers/replication';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';
import { RoutedWriter, type Endpoint } from '../helpers/writer';

const suffix = randomBytes(3).toString('hex');
const CLUSTER = `so-${suffix}`;
const STRICT = `so-strict-${suffix}`;
const ONE_WAY = `so-one-way-${suffix}`;
/** A replication account that exists on the primary (3311) only: the replica can follow it, never the other way round. */
const ONE_WAY_REPL = { user: `dbr_so_repl_${suffix}`, password: randomBytes(12).toString('hex') };
const DATABASE = `dbr_switchover_${suffix}`;
const WRITER = { user: `dbr_so_${suffix}`, password: randomBytes(12).toString('hex') };
const PODS: Record<string, number> = { 'so-db-0': PAIR.primary, 'so-db-1': PAIR.replica };

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let admin: AdminClients;
let namespace: string;
let stopKubelet: () => Promise<void>;
let runs = 0;

beforeAll(async () => {
  await restorePair();
  admin = adminClients();
  const kubelet = new Kubelet(admin);
  namespace = await createTestNamespace(admin, 'dbr-switchover');
  const cluster = (name: string, extra: string, replicationUser = 'repl', replicationPasswordEnv = 'DBR_LOCAL_REPL_PASSWORD') => `
  ${name}:
    namespace: ${namespace}
    workload: { kind: StatefulSet, name: so-db, selector: app=so-db, container: mariadb, roleLabel: role }
    mysql:
      topology: replication
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      replicationUser: ${replicationUser}
      replicationPassword: { env: ${replicationPasswordEnv} }
      nodes:
        - { name: primary, host: 127.0.0.1, port: ${PAIR.primary}, pod: so-db-0 }
        - { name: replica, host: 127.0.0.1, port: ${PAIR.replica}, pod: so-db-1 }
    health: { maxReplicationLagSeconds: 10 }
    failover: { strategy: gtid, writerGraceSeconds: 1${extra} }`;
  process.env.DBR_TEST_ONE_WAY_REPL_PASSWORD = ONE_WAY_REPL.password;
  const profiles = testProfiles(
    `clusters:${cluster(CLUSTER, ', catchUpTimeoutSeconds: 30')}${cluster(STRICT, ', catchUpTimeoutSeconds: 30, maxTransactionSeconds: 1')}${cluster(ONE_WAY, ', catchUpTimeoutSeconds: 3', ONE_WAY_REPL.user, 'DBR_TEST_ONE_WAY_REPL_PASSWORD')}\n`,
  );
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, profiles, { kubeconfigPath: ADMIN_KUBECONFIG }));

  await createStatefulSet(admin, namespace, { name: 'so-db', replicas: 2, image: 'mariadb:10.11' });
  const node = kubelet.autoReady(namespace, 'app=so-db');
  stopKubelet = () => node.stop();
  await eventually('so-db ready', async () => ((await admin.apps.readNamespacedStatefulSet({ name: 'so-db', namespace })).status?.readyReplicas === 2 ? true : undefined));
  await setRole('so-db-0', 'primary');
  await setRole('so-db-1', 'replica');

  await sql(PAIR.primary, `CREATE DATABASE ${DATABASE}`);
  await sql(PAIR.primary, `CREATE TABLE ${DATABASE}.writes (seq BIGINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))`);
  // The application's account: no READ ONLY ADMIN, so a read-only server refuses its writes.
  await sql(PAIR.primary, `CREATE USER '${WRITER.user}'@'127.0.0.1' IDENTIFIED BY '${WRITER.password}'`);
  await sql(PAIR.primary, `GRANT SELECT, INSERT ON ${DATABASE}.* TO '${WRITER.user}'@'127.0.0.1'`);
  await waitForPosition(PAIR.replica, (await facts(PAIR.primary)).gtidBinlogPos);
});

afterAll(async () => {
  try {
    await restorePair();
    await sql(PAIR.primary, `DROP DATABASE IF EXISTS ${DATABASE}`);
    await sql(PAIR.primary, `DROP USER IF EXISTS '${WRITER.user}'@'127.0.0.1'`);
    await sql(PAIR.primary, 'DROP DATABASE IF EXISTS db_runbooks');
    await waitForPosition(PAIR.replica, (await facts(PAIR.primary)).gtidBinlogPos);
  } finally {
    await worker?.stop();
    await env?.teardown();
    await stopKubelet?.();
    if (namespace) await deleteTestNamespace(admin, namespace);
  }
});

async function setRole(pod: string, role: string): Promise<void> {
  await admin.core.patchNamespacedPod({ name: pod, namespace, body: { metadata: { labels: { role } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
}

async function roles(): Promise<Record<string, string | undefined>> {
  const pods = await admin.core.listNamespacedPod({ namespace, labelSelector: 'app=so-db' });
  return Object.fromEntries(pods.items.map((p) => [p.metadata!.name!, p.metadata?.labels?.role]));
}

/** What a client's connection pool would do: ask the routing which pod is primary, and connect there. */
async function routedPrimary(): Promise<Endpoint> {
  const pods = await admin.core.listNamespacedPod({ namespace, labelSelector: 'app=so-db,role=primary' });
  if (pods.items.length !== 1) throw new Error(`${pods.items.length} pods are primary`);
  return { host: '127.0.0.1', port: PODS[pods.items[0]!.metadata!.name!]! };
}

function start(input: Record<string, unknown>, cluster = CLUSTER) {
  return env.client.workflow.start(switchover, { taskQueue: worker.taskQueue, workflowId: `switchover/${cluster}-${++runs}`, args: [{ cluster, ...input }] });
}

async function failureOf(promise: Promise<unknown>): Promise<{ failure: ApplicationFailure | CancelledFailure; error: WorkflowFailedError }> {
  const err = await promise.then(() => new Error('expected the runbook to fail'), (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause && !(cause instanceof ApplicationFailure) && !(cause instanceof CancelledFailure)) cause = (cause as Error).cause;
  return { failure: cause as ApplicationFailure, error: err as WorkflowFailedError };
}

async function rowsOn(port: number): Promise<Set<number>> {
  return new Set((await sql<{ seq: number }>(port, `SELECT seq FROM ${DATABASE}.writes`)).map((r) => Number(r.seq)));
}

test('switchover under a continuous writer: no acknowledged write lost, the writer follows routing to the new primary; a second switchover switches back', async () => {
  const writer = new RoutedWriter({ resolvePrimary: routedPrimary, ...WRITER, table: `${DATABASE}.writes` });
  writer.start();
  let report;
  try {
    await eventually('the writer to write', () => Promise.resolve(writer.count >= 50 ? true : undefined));
    const result: SwitchoverResult = await (await start({})).result();
    expect(result).toMatchObject({ oldPrimary: 'primary', newPrimary: 'replica', replicas: ['primary'], routing: 'role=primary moved from pod so-db-0 to pod so-db-1' });
    // The writer carries on, on the new primary.
    const before = writer.ackedOn(PAIR.replica);
    await eventually('acknowledged writes on the new primary', () => Promise.resolve(writer.ackedOn(PAIR.replica) >= before + 50 ? true : undefined));
  } finally {
    report = await writer.stop();
  }
  expect(report.endpoints).toEqual([PAIR.primary, PAIR.replica]);
  expect(await roles()).toEqual({ 'so-db-0': 'replica', 'so-db-1': 'primary' });

  const [newPrimary, newReplica] = await Promise.all([facts(PAIR.replica), facts(PAIR.primary)]);
  expect(newPrimary).toMatchObject({ readOnly: false, source: null });
  expect(newReplica).toMatchObject({ readOnly: true, source: `127.0.0.1:${PAIR.replica}`, io: 'Yes', sqlThread: 'Yes' });
  await waitForPosition(PAIR.primary, newPrimary.gtidBinlogPos);
  const acked = report.acked.map((a) => a.seq);
  for (const port of [PAIR.replica, PAIR.primary]) {
    const present = await rowsOn(port);
    expect(acked.filter((seq) => !present.has(seq))).toEqual([]);
  }

  const back: SwitchoverResult = await (await start({ newPrimary: 'primary' })).result();
  expect(back).toMatchObject({ oldPrimary: 'replica', newPrimary: 'primary', replicas: ['replica'] });
  expect(await roles()).toEqual({ 'so-db-0': 'primary', 'so-db-1': 'replica' });
  expect(await facts(PAIR.primary)).toMatchObject({ readOnly: false, source: null });
  expect(await facts(PAIR.replica)).toMatchObject({ readOnly: true, source: `127.0.0.1:${PAIR.primary}`, io: 'Yes', sqlThread: 'Yes' });
});

/** Holds a write lock on the replica's copy of the table, so its SQL thread stops at the next row and cannot catch up. */
async function blockReplica(): Promise<Connection> {
  const lock = await connectAs(PAIR.replica);
  await lock.query(`LOCK TABLES ${DATABASE}.writes WRITE`);
  await sql(PAIR.primary, `INSERT INTO ${DATABASE}.writes (seq) VALUES (?)`, [1_000_000 + runs]);
  return lock;
}

test('a switchover that fails before the promotion leaves the old primary writable and routing unchanged', async () => {
  const lock = await blockReplica();
  try {
    const handle = await start({ catchUpTimeoutSeconds: 2 });
    const { failure } = await failureOf(handle.result());
    expect(failure).toMatchObject({ type: 'SwitchoverFailed', nonRetryable: true });
    expect(failure.message).toMatch(/^switchover of so-[0-9a-f]+ from primary to replica failed at "wait for the replica to catch up": node replica did not reach 0-1-\d+ by .*; rolled back: primary is the writable primary again and routing is unchanged$/);
    const progress = await handle.query(getProgressQuery);
    expect(progress.outcome).toBe('rolled back');
    expect(progress.steps.filter((s) => s.name.startsWith('undo: ')).map((s) => [s.name, s.state])).toEqual([['undo: give the old primary its writes back', 'compensated']]);
    expect(progress.steps.find((s) => s.name === 'promote the replica')!.state).toBe('pending');
  } finally {
    await lock.end();
  }
  expect(await facts(PAIR.primary)).toMatchObject({ readOnly: false, source: null });
  expect(await roles()).toEqual({ 'so-db-0': 'primary', 'so-db-1': 'replica' });
  // The application writes again, and the replica catches up once it is no longer blocked.
  const app = await connectAs(PAIR.primary, WRITER.user, WRITER.password);
  await app.query(`INSERT INTO ${DATABASE}.writes (seq) VALUES (?)`, [2_000_000]);
  await app.end();
  await waitForPosition(PAIR.replica, (await facts(PAIR.primary)).gtidBinlogPos);
});

test('a switchover that fails after the promotion is rolled back: the old primary leads again and the new one follows it', async () => {
  // Not replicated (sql_log_bin=0): the account exists on 3311 only, so 3311 cannot follow 3312 but 3312 can follow 3311.
  const c = await connectAs(PAIR.primary);
  await c.query('SET SESSION sql_log_bin = 0');
  await c.query(`CREATE USER '${ONE_WAY_REPL.user}'@'127.0.0.1' IDENTIFIED BY '${ONE_WAY_REPL.password}'`);
  await c.query(`GRANT REPLICATION SLAVE ON *.* TO '${ONE_WAY_REPL.user}'@'127.0.0.1'`);
  try {
    const handle = await start({}, ONE_WAY);
    const { failure } = await failureOf(handle.result());
    expect(failure).toMatchObject({ type: 'SwitchoverFailed', nonRetryable: true });
    expect(failure.message).toMatch(
      /failed at "point the old primary at the new one": node primary did not start replicating from replica by .*Access denied for user .*; rolled back: primary is the writable primary again and routing is unchanged$/,
    );
    const progress = await handle.query(getProgressQuery);
    expect(progress.outcome).toBe('rolled back');
    expect(progress.steps.find((x) => x.name === 'promote the replica')!.state).toBe('done');
    expect(progress.steps.filter((x) => x.name.startsWith('undo: ')).map((x) => [x.name, x.state])).toEqual([
      ['undo: stop the old primary following the new one', 'compensated'],
      ['undo: make the new primary a replica of the old one again', 'compensated'],
      ['undo: give the old primary its writes back', 'compensated'],
    ]);
    expect(await facts(PAIR.primary)).toMatchObject({ readOnly: false, source: null });
    expect(await facts(PAIR.replica)).toMatchObject({ readOnly: true, source: `127.0.0.1:${PAIR.primary}`, io: 'Yes', sqlThread: 'Yes' });
    expect(await roles()).toEqual({ 'so-db-0': 'primary', 'so-db-1': 'replica' });
  } finally {
    // The rollback pointed 3312 at 3311 with the one-way account: back to the stack's own before it goes.
    await restorePair();
    await c.query(`DROP USER IF EXISTS '${ONE_WAY_REPL.user}'@'127.0.0.1'`);
    await c.end();
  }
});

test('a session still holding uncommitted writes after the grace period is killed, and its write is not on the new primary', async () => {
  const app = await connectAs(PAIR.primary, WRITER.user, WRITER.password);
  try {
    const [[session]] = await app.query<RowDataPacket[]>('SELECT CONNECTION_ID() AS id');
    await app.query('BEGIN');
    await app.query(`INSERT INTO ${DATABASE}.writes (seq) VALUES (?)`, [4_000_000]);
    const result: SwitchoverResult = await (await start({})).result();
    expect(result.killedSessions).toEqual([{ id: Number(session!.id), user: WRITER.user, host: '127.0.0.1', seconds: expect.any(Number) as number, rowsModified: 1 }]);
    await expect(app.query('COMMIT')).rejects.toThrow();
    expect((await rowsOn(PAIR.replica)).has(4_000_000)).toBe(false);
  } finally {
    app.destroy();
  }
  await (await start({ newPrimary: 'primary' })).result();
  expect(await facts(PAIR.primary)).toMatchObject({ readOnly: false, source: null });
});

test('a switchover cancelled while the replica catches up is rolled back too', async () => {
  const lock = await blockReplica();
  try {
    const handle = await start({ catchUpTimeoutSeconds: 120 });
    await eventually('the switchover to wait for the replica', async () => ((await handle.query(getProgressQuery)).currentStep === 'wait for the replica to catch up' ? true : undefined));
    expect(await facts(PAIR.primary)).toMatchObject({ readOnly: true });
    await handle.cancel();
    const { failure } = await failureOf(handle.result());
    expect(failure).toBeInstanceOf(CancelledFailure);
    expect((await handle.query(getProgressQuery)).outcome).toBe('cancelled');
  } finally {
    await lock.end();
  }
  expect(await facts(PAIR.primary)).toMatchObject({ readOnly: false, source: null });
  expect(await roles()).toEqual({ 'so-db-0': 'primary', 'so-db-1': 'replica' });
  await waitForPosition(PAIR.replica, (await facts(PAIR.primary)).gtidBinlogPos);
});

test('a transaction open past the bound stops the switchover at its pre-flight, before any change', async () => {
  const app = await connectAs(PAIR.primary, WRITER.user, WRITER.password);
  try {
    await app.query('BEGIN');
    await app.query(`INSERT INTO ${DATABASE}.writes (seq) VALUES (?)`, [3_000_000]);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const { failure } = await failureOf((await start({}, STRICT)).result());
    expect(failure).toMatchObject({ type: 'PreflightFailed', nonRetryable: true });
    expect(failure.message).toMatch(new RegExp(`^switchover of ${STRICT} refused: primary primary: transaction of ${WRITER.user}@127\\.0\\.0\\.1 \\(session \\d+\\) open for \\d+s \\(limit 1s, failover\\.maxTransactionSeconds\\)$`));
  } finally {
    await app.query('ROLLBACK');
    await app.end();
  }
  expect(await facts(PAIR.primary)).toMatchObject({ readOnly: false, source: null });
});

test('bad input is refused before any activity, naming every field', async () => {
  const { failure } = await failureOf(
    env.client.workflow.execute(switchover, { taskQueue: worker.taskQueue, workflowId: `switchover/bad-${++runs}`, args: [{ cluster: CLUSTER, newPrimary: '-x', graceSeconds: -1, colour: 'red' } as never] }),
  );
  expect(failure).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
  expect(failure.message).toBe(
    'switchover: invalid input: colour: unknown field (known: cluster, newPrimary, graceSeconds, catchUpTimeoutSeconds, lockWaitSeconds); newPrimary: expected a node name of the cluster profile, got "-x"; graceSeconds: expected a number from 0 to 600, got number -1',
  );
});
