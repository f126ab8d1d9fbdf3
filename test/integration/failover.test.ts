// failover on the stack's failover set (fo1 primary, fo2 and fo3 replicas; real MariaDB), with the
// primary killed (SIGKILL), routing through the real kube-apiserver, on a real Temporal dev server.
// Every test starts from a rebuilt set (resetFailoverSet), and the set is rebuilt at the end.
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { failover } from '../../workflows';
import { getProgressQuery } from '../../workflows/definitions';
import type { FailoverResult } from '../../workflows/failover';
import { Kubelet } from '../helpers/kubelet';
import { ADMIN_KUBECONFIG, adminClients, createStatefulSet, createTestNamespace, deleteTestNamespace, eventually, podRoles, setPodRoles, type AdminClients } from '../helpers/kubernetes';
import { FAILOVER_SET, FAILOVER_SET_MYSQL, FAILOVER_TABLE as TABLE, connectAs, facts, idsOf, insertIds, resetFailoverSet, seedFailoverSet, sql, waitForPosition } from '../helpers/replication';
import { stack } from '../helpers/stack';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';

const suffix = randomBytes(3).toString('hex');
const CLUSTER = `fo-${suffix}`;
/** The same set, but the profile names a pod for fo1 that does not exist (as when the old primary's pod was deleted with its node). */
const POD_GONE = `fo-gone-${suffix}`;
const { fo1, fo2, fo3 } = FAILOVER_SET;

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let admin: AdminClients;
let namespace: string;
let stopKubelet: () => Promise<void>;
let runs = 0;

beforeAll(async () => {
  admin = adminClients();
  const kubelet = new Kubelet(admin);
  namespace = await createTestNamespace(admin, 'dbr-failover');
  const profiles = testProfiles(`
clusters:
  ${CLUSTER}:
    namespace: ${namespace}
    workload: { kind: StatefulSet, name: fo-db, selector: app=fo-db, container: mariadb, roleLabel: role }
${FAILOVER_SET_MYSQL}    failover: { strategy: gtid, maxLagSeconds: 2, catchUpTimeoutSeconds: 60 }
  ${POD_GONE}:
    namespace: ${namespace}
    workload: { kind: StatefulSet, name: fo-db, selector: app=fo-db, container: mariadb, roleLabel: role }
${FAILOVER_SET_MYSQL.replace('pod: fo-db-0', 'pod: fo-db-gone')}    failover: { strategy: gtid, maxLagSeconds: 2, catchUpTimeoutSeconds: 60 }
`);
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, profiles, { kubeconfigPath: ADMIN_KUBECONFIG }));
  await createStatefulSet(admin, namespace, { name: 'fo-db', replicas: 3, image: 'mariadb:10.11' });
  const node = kubelet.autoReady(namespace, 'app=fo-db');
  stopKubelet = () => node.stop();
  await eventually('fo-db ready', async () => ((await admin.apps.readNamespacedStatefulSet({ name: 'fo-db', namespace })).status?.readyReplicas === 3 ? true : undefined));
});

beforeEach(async () => {
  await resetFailoverSet();
  await setPodRoles(admin, namespace, { 'fo-db-0': 'primary', 'fo-db-1': 'replica', 'fo-db-2': 'replica' });
  await seedFailoverSet(10);
});

afterAll(async () => {
  try {
    await resetFailoverSet();
  } finally {
    await worker?.stop();
    await env?.teardown();
    await stopKubelet?.();
    if (namespace) await deleteTestNamespace(admin, namespace);
  }
});

function roles(): Promise<Record<string, string | undefined>> {
  return podRoles(admin, namespace, 'app=fo-db');
}

function insertRows(from: number, to: number, port: number = fo1): Promise<void> {
  return insertIds(port, TABLE, from, to);
}

function ids(port: number): Promise<number[]> {
  return idsOf(port, TABLE);
}

function start(input: Record<string, unknown>, cluster = CLUSTER) {
  return env.client.workflow.start(failover, { taskQueue: worker.taskQueue, workflowId: `failover/${cluster}-${++runs}`, args: [{ cluster, ...input }] });
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(() => new Error('expected the runbook to fail'), (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause && !(cause instanceof ApplicationFailure)) cause = (cause as Error).cause;
  return cause as ApplicationFailure;
}

/** The killed primary comes back: fenced, it starts read-only, and the routing does not send clients to it. */
async function oldPrimaryReturnsFenced(): Promise<void> {
  await stack('start', 'fo1');
  expect(await facts(fo1)).toMatchObject({ readOnly: true, source: null });
  expect((await roles())['fo-db-0']).toBe('fenced');
}

test('with the primary killed, the most advanced replica is promoted; the other follows it; the old primary comes back read-only and unrouted', async () => {
  // fo2 stops receiving; fo3 gets ten more transactions.
  await sql(fo2, 'STOP SLAVE IO_THREAD');
  await insertRows(11, 20);
  await waitForPosition(fo3, (await facts(fo1)).gtidBinlogPos);
  await stack('kill', 'fo1');

  const result: FailoverResult = await (await start({})).result();
  expect(result).toMatchObject({ oldPrimary: 'fo1', newPrimary: 'fo3', replicas: ['fo2'], problems: [], warnings: [] });
  expect(result.reason).toMatch(/^fo3 is the most advanced replica \(0-31-\d+\)$/);
  expect(result.candidates.map((c) => [c.node, c.lagSeconds])).toEqual([
    ['fo2', 0],
    ['fo3', 0],
  ]);
  expect(result.fencing).toBe('fo1 starts read-only from now on');

  expect(await roles()).toEqual({ 'fo-db-0': 'fenced', 'fo-db-1': 'replica', 'fo-db-2': 'primary' });
  expect(await facts(fo3)).toMatchObject({ readOnly: false, source: null });
  expect(await facts(fo2)).toMatchObject({ readOnly: true, source: `127.0.0.1:${fo3}`, io: 'Yes', sqlThread: 'Yes' });
  const all = Array.from({ length: 20 }, (_, i) => i + 1);
  expect(await ids(fo3)).toEqual(all);
  await waitForPosition(fo2, (await facts(fo3)).gtidBinlogPos);
  expect(await ids(fo2)).toEqual(all);

  await oldPrimaryReturnsFenced();
});

/** Holds a write lock on the replica's copy of the table: its SQL thread stops at the next row. */
async function blockSqlThread(port: number): Promise<Connection> {
  const lock = await connectAs(port);
  await lock.query(`LOCK TABLES ${TABLE} WRITE`);
  return lock;
}

async function sqlThreadSeconds(port: number): Promise<number> {
  const [row] = await sql<RowDataPacket>(port, "SELECT TIME AS t, STATE AS s FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_SQL'");
  return String(row?.s).includes('metadata lock') ? Number(row?.t) : -1;
}

test('a best replica lagging more than the profile allows is refused, changing nothing; forced, it is promoted once it has applied what it received', async () => {
  const locks = await Promise.all([blockSqlThread(fo2), blockSqlThread(fo3)]);
  try {
    await insertRows(11, 11);
    await eventually('both replicas to lag 3s', async () => ((await sqlThreadSeconds(fo2)) >= 3 && (await sqlThreadSeconds(fo3)) >= 3 ? true : undefined), 30_000);
    await stack('kill', 'fo1');

    const refused = await failureOf((await start({})).result());
    expect(refused).toMatchObject({ type: 'FailoverRefused', nonRetryable: true });
    expect(refused.message).toMatch(/^failover of fo-[0-9a-f]+ refused: the most advanced replica fo2 lags \d+s: it still applies changes its primary made \d+s ago \(limit 2s, failover\.maxLagSeconds\); set force to promote it once it has applied what it received\. Replicas: fo2: at 0-31-\d+ \(applied 0-31-\d+\), lag \d+s, 1 received transaction\(s\) still to apply; fo3: /);
    for (const port of [fo2, fo3]) expect(await facts(port)).toMatchObject({ readOnly: true, source: `127.0.0.1:${fo1}`, sqlThread: 'Yes' });
    expect(await roles()).toEqual({ 'fo-db-0': 'primary', 'fo-db-1': 'replica', 'fo-db-2': 'replica' });

    const forced = await start({ force: true });
    await eventually('the forced failover to wait for fo2 to apply', async () => ((await forced.query(getProgressQuery)).currentStep === 'apply what the new primary received' ? true : undefined));
    await Promise.all(locks.map((l) => l.end()));
    const result: FailoverResult = await forced.result();
    expect(result).toMatchObject({ newPrimary: 'fo2', replicas: ['fo3'], problems: [] });
    expect(result.warnings).toEqual([expect.stringMatching(/^forced: the most advanced replica fo2 lags \d+s/)]);
    expect(await ids(fo2)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
  } finally {
    await Promise.all(locks.map((l) => l.end().catch(() => undefined)));
  }
  await oldPrimaryReturnsFenced();
});

test('two replicas equally advanced with different transactions are refused, with the explanation', async () => {
  // Each replica takes a write of its own at the same sequence number: their histories diverge.
  for (const [port, id] of [[fo2, 102], [fo3, 103]] as const) {
    await sql(port, 'STOP SLAVE');
    await sql(port, `INSERT INTO ${TABLE} (id) VALUES (?)`, [id]);
  }
  await stack('kill', 'fo1');
  const refused = await failureOf((await start({})).result());
  expect(refused).toMatchObject({ type: 'FailoverRefused', nonRetryable: true });
  expect(refused.message).toMatch(
    /^failover of fo-[0-9a-f]+ refused: fo2 \(0-32-(\d+)\) and fo3 \(0-33-\1\) are equally advanced but their histories diverged \(domain 0: transaction 0-32-\1 against 0-33-\1, the same sequence number from different servers\): promoting either one loses the other's transactions; set force to promote anyway \(newPrimary chooses which\)\. Replicas: /,
  );
  for (const port of [fo2, fo3]) expect(await facts(port)).toMatchObject({ readOnly: true, source: `127.0.0.1:${fo1}` });
  expect(await roles()).toEqual({ 'fo-db-0': 'primary', 'fo-db-1': 'replica', 'fo-db-2': 'replica' });
});

test('a failover while the primary is up is refused: that is a switchover', async () => {
  const refused = await failureOf((await start({ force: true })).result());
  expect(refused.message).toBe(`failover of ${CLUSTER} refused: the primary fo1 is reachable (writable): a failover is for a primary that is down; use switchover`);
  expect(await facts(fo1)).toMatchObject({ readOnly: false, source: null });
});

test("the old primary's pod cannot be relabelled: routing still moves to the new primary, fo1 is fenced, fo3 follows fo2; the run ends FailoverIncomplete saying so", async () => {
  await stack('kill', 'fo1');
  const incomplete = await failureOf((await start({}, POD_GONE)).result());
  expect(incomplete).toMatchObject({ type: 'FailoverIncomplete', nonRetryable: true });
  expect(incomplete.message).toMatch(
    /^failover of fo-gone-[0-9a-f]+: fo2 is the primary of fo-gone-[0-9a-f]+ \(fo1 was down\); .*; routing: NOT moved as planned: role=primary is on pod fo-db-1, but pod fo-db-gone could not be set to role=fenced: .+; fencing: fo1 starts read-only from now on; fo3 follow it$/,
  );
  expect(await roles()).toMatchObject({ 'fo-db-1': 'primary', 'fo-db-2': 'replica' });
  expect(await facts(fo2)).toMatchObject({ readOnly: false, source: null });
  expect(await facts(fo3)).toMatchObject({ readOnly: true, source: `127.0.0.1:${fo2}`, io: 'Yes', sqlThread: 'Yes' });
  await stack('start', 'fo1');
  expect(await facts(fo1)).toMatchObject({ readOnly: true, source: null });
});
