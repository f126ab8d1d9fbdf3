// refreshNodeAddresses and the pod watcher against the real stack: a StatefulSet on the real
// kube-apiserver (the test plays the kubelet), catalogs in the standalone MariaDB (an SQL table,
// and the same kind of table driven through the `mariadb` command) and in etcd (JSON records).
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { DefaultLogger } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Etcd3 } from 'etcd3';
import mysql from 'mysql2/promise';
import { kubernetesClientsFor } from '../../activities/kubernetes';
import { leaseName, startAddressWatchers, type AddressWatchers } from '../../worker/address-watcher';
import { refreshNodeAddresses } from '../../workflows';
import { getProgressQuery, refreshWorkflowId } from '../../workflows/definitions';
import type { RefreshNodeAddressesResult } from '../../workflows/refreshNodeAddresses';
import { Kubelet } from '../helpers/kubelet';
import { ADMIN_KUBECONFIG, adminClients, createStatefulSet, createTestNamespace, deleteTestNamespace, eventually, kubeConfigFrom, type AdminClients } from '../helpers/kubernetes';
import { stack } from '../helpers/stack';
import { realActivities, startTemporal, startWorker, testProfiles, type RunningWorker } from '../helpers/temporal';
import { spawnWorkerProcess } from '../helpers/worker-process';

const run = randomUUID().slice(0, 8);
const db = `antdb_${run}`;
const etcdPrefix = `/dbr-test-${run}/topology/`;
const PORT = 5432;
const HOSTILE = ["dn0'; DROP TABLE pgxc_node; --", 'dn1$(touch /tmp/dbr-pwned-RUN)'.replace('RUN', run), 'dn2"; rm -rf / #'];

let env: TestWorkflowEnvironment;
let worker: RunningWorker;
let admin: AdminClients;
let kubelet: Kubelet;
let namespace: string;
let etcd: Etcd3;
let sql: mysql.Connection;
let profilesFile: string;

function mariadbArgv(statement: string): string[] {
  return ['mariadb', '--no-defaults', '-h', '127.0.0.1', '-P', '3310', '-u', 'runbook', '-N', '-B', '-e', statement];
}

function profilesYaml(ns: string): string {
  const workload = (name: string) => `    namespace: ${ns}\n    workload: { kind: StatefulSet, name: ${name}, selector: app=${name}, container: antdb, roleLabel: role }\n`;
  const mysqlSection = `    mysql:
      topology: standalone
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      nodes: [{ name: mariadb, host: 127.0.0.1, port: 3310 }]\n`;
  const sqlRegistry = (table: string) => `      registry: { kind: sql, database: ${db}, table: ${table}, columns: { name: node_name, host: node_host, port: node_port, role: node_role } }\n`;
  const commandRegistry = (table: string, update: string) => `      registry:
        kind: command
        list: ${JSON.stringify(mariadbArgv(`SELECT node_name, node_host, node_port, node_role FROM ${db}.${table}`))}
        update: ${JSON.stringify(mariadbArgv(update.replace('TABLE', `${db}.${table}`)))}
        env: { MYSQL_PWD: { env: DBR_LOCAL_MYSQL_PASSWORD } }\n`;
  const refresh = (registry: string, extra = '') => `    addressRefresh:\n${registry}      port: ${PORT}\n      quietSeconds: 3\n      waitForAddressSeconds: 60\n${extra}`;
  return `clusters:
  cat-sql:
${workload('antdb')}${mysqlSection}${refresh(sqlRegistry('pgxc_node'))}    lock: { waitSeconds: 120, leaseSeconds: 15 }
  cat-etcd:
${workload('antdb')}    etcd: { endpoints: [http://127.0.0.1:2379] }
${refresh(`      registry: { kind: etcd, prefix: ${etcdPrefix} }\n`)}    lock: { waitSeconds: 120, leaseSeconds: 15 }
  cat-cmd:
${workload('antdb')}${refresh(commandRegistry('pgxc_node_cmd', 'UPDATE TABLE SET node_host = {host:mysql}, node_port = {port}, node_role = {role:mysql} WHERE node_name = {node:mysql}'))}    lock: { waitSeconds: 120, leaseSeconds: 15 }
  hostile-sql:
${workload('hostile')}${mysqlSection}${refresh(sqlRegistry('hostile_node'), '      nodeNameAnnotation: antdb.io/node\n')}
  hostile-etcd:
${workload('hostile')}    etcd: { endpoints: [http://127.0.0.1:2379] }
${refresh(`      registry: { kind: etcd, prefix: ${etcdPrefix}hostile/ }\n`, '      nodeNameAnnotation: antdb.io/node\n')}
  hostile-cmd:
${workload('hostile')}${refresh(commandRegistry('hostile_node_cmd', 'UPDATE TABLE SET node_host = {host:mysql}, node_port = {port} WHERE node_name = {node:mysql}'), '      nodeNameAnnotation: antdb.io/node\n')}
  hostile-raw:
${workload('hostile')}${refresh(commandRegistry('hostile_node_cmd', 'UPDATE TABLE SET node_host = {host:mysql} WHERE node_name = "{node}"'), '      nodeNameAnnotation: antdb.io/node\n')}
`;
}

async function podIps(name: string): Promise<Record<string, string>> {
  const pods = await admin.core.listNamespacedPod({ namespace, labelSelector: `app=${name}` });
  return Object.fromEntries(pods.items.filter((p) => p.status?.podIP && !p.metadata?.deletionTimestamp).map((p) => [p.metadata!.name!, p.status!.podIP!]));
}

async function sqlCatalog(table: string): Promise<Record<string, string>> {
  const [rows] = await sql.query<mysql.RowDataPacket[]>(`SELECT node_name, node_host, node_port FROM ${db}.${table} ORDER BY node_name`);
  return Object.fromEntries(rows.map((r) => [String(r.node_name), `${String(r.node_host)}:${String(r.node_port)}`]));
}

async function etcdCatalog(prefix = etcdPrefix): Promise<Record<string, string>> {
  const records = await etcd.getAll().prefix(prefix).json();
  return Object.fromEntries(
    Object.entries(records)
      // The hostile cluster's records sit in a subtree of the first one.
      .filter(([key]) => prefix !== etcdPrefix || !key.startsWith(`${etcdPrefix}hostile/`))
      .map(([key, r]) => [key.slice(prefix.length), `${(r as { host: string }).host}:${(r as { port: number }).port}`]),
  );
}

const expectedFrom = (ips: Record<string, string>) => Object.fromEntries(Object.entries(ips).map(([pod, ip]) => [pod, `${ip}:${PORT}`]));

async function seedCatalogs(ips: Record<string, string>, stale = true): Promise<void> {
  for (const table of ['pgxc_node', 'pgxc_node_cmd']) {
    await sql.query(`DELETE FROM ${db}.${table}`);
    for (const pod of Object.keys(ips)) await sql.query(`INSERT INTO ${db}.${table} (node_name, node_host, node_port, node_role) VALUES (?, ?, ?, 'member')`, [pod, stale ? '10.255.0.1' : ips[pod], PORT]);
  }
  await etcd.delete().prefix(etcdPrefix);
  for (const pod of Object.keys(ips)) {
    await etcd.put(`${etcdPrefix}${pod}`).value(JSON.stringify({ name: pod, host: stale ? '10.255.0.1' : ips[pod], port: PORT, role: 'member', keyspace: 'commerce' }));
  }
}

async function runsOf(cluster: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const r of env.client.workflow.list({ query: `WorkflowId = "${refreshWorkflowId(cluster)}"` })) ids.push(r.runId);
  return ids;
}

async function scaleTo(replicas: number): Promise<void> {
  const scale = await admin.apps.readNamespacedStatefulSetScale({ name: 'antdb', namespace });
  await admin.apps.replaceNamespacedStatefulSetScale({ name: 'antdb', namespace, body: { ...scale, spec: { replicas } } });
}

function refresh(cluster: string): Promise<RefreshNodeAddressesResult> {
  return env.client.workflow.execute(refreshNodeAddresses, { taskQueue: worker.taskQueue, workflowId: `${refreshWorkflowId(cluster)}/manual-${randomUUID().slice(0, 6)}`, args: [{ cluster, reason: 'test' }] });
}

beforeAll(async () => {
  admin = adminClients();
  kubelet = new Kubelet(admin);
  namespace = await createTestNamespace(admin, 'dbr-refresh');
  profilesFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'dbr-refresh-')), 'clusters.yaml');
  writeFileSync(profilesFile, profilesYaml(namespace));
  etcd = new Etcd3({ hosts: 'http://127.0.0.1:2379' });
  sql = await mysql.createConnection({ host: '127.0.0.1', port: 3310, user: 'runbook', password: process.env.DBR_LOCAL_MYSQL_PASSWORD });
  await sql.query(`CREATE DATABASE ${db}`);
  for (const table of ['pgxc_node', 'pgxc_node_cmd', 'hostile_node', 'hostile_node_cmd']) {
    await sql.query(`CREATE TABLE ${db}.${table} (node_name VARCHAR(200) PRIMARY KEY, node_host VARCHAR(64) NOT NULL, node_port INT NOT NULL, node_role VARCHAR(32))`);
  }
  // Every address ever written, to show no empty one was.
  await sql.query(`CREATE TABLE ${db}.audit (node_name VARCHAR(200), node_host VARCHAR(64), at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))`);
  await sql.query(`CREATE TRIGGER ${db}.pgxc_node_audit AFTER UPDATE ON ${db}.pgxc_node FOR EACH ROW INSERT INTO ${db}.audit (node_name, node_host) VALUES (NEW.node_name, NEW.node_host)`);

  await createStatefulSet(admin, namespace, { name: 'antdb', replicas: 3, image: 'antdb:7.2', container: 'antdb', labels: { role: 'member' } });
  await createStatefulSet(admin, namespace, { name: 'hostile', replicas: 3, image: 'antdb:7.2', container: 'antdb' });
  const node = kubelet.autoReady(namespace, 'app');
  try {
    await eventually('6 pods with addresses', async () => (Object.keys(await podIps('antdb')).length === 3 && Object.keys(await podIps('hostile')).length === 3 ? true : undefined));
  } finally {
    await node.stop();
  }
  env = await startTemporal();
  worker = await startWorker(env, realActivities(env, testProfiles(profilesYaml(namespace)), { kubeconfigPath: ADMIN_KUBECONFIG }));
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  await sql?.query(`DROP DATABASE IF EXISTS ${db}`);
  await sql?.end();
  await etcd?.delete().prefix(`/dbr-test-${run}/`);
  etcd?.close();
  if (namespace) await deleteTestNamespace(admin, namespace);
});

test('a stale catalog is brought in line in all three adapters; a second run is a no-op', async () => {
  const ips = await podIps('antdb');
  await seedCatalogs(ips);
  for (const cluster of ['cat-sql', 'cat-etcd', 'cat-cmd']) {
    const result = await refresh(cluster);
    expect(result.rounds[0]!.applied).toEqual(['antdb-0', 'antdb-1', 'antdb-2']);
  }
  expect(await sqlCatalog('pgxc_node')).toEqual(expectedFrom(ips));
  expect(await sqlCatalog('pgxc_node_cmd')).toEqual(expectedFrom(ips));
  expect(await etcdCatalog()).toEqual(expectedFrom(ips));
  // The rest of an etcd record is the database's: left as it was.
  expect(JSON.parse((await etcd.get(`${etcdPrefix}antdb-0`).string())!)).toMatchObject({ name: 'antdb-0', keyspace: 'commerce' });

  const again = await refresh('cat-sql');
  expect(again.rounds[0]!.updates).toEqual([]);
  expect(again.summary).toBe('cat-sql: every registered address already matches its pod');
});

test('three pods restart at once with new IPs: one refresh run per cluster, catalogs correct', async () => {
  await seedCatalogs(await podIps('antdb'), false);
  const watchers: AddressWatchers = startAddressWatchers({
    profiles: new Map([...testProfiles(profilesYaml(namespace))].filter(([name]) => name.startsWith('cat-'))),
    kubernetes: () => kubernetesClientsFor(kubeConfigFrom(ADMIN_KUBECONFIG)),
    client: env.client,
    taskQueue: worker.taskQueue,
    identity: `test-${run}`,
    logger: new DefaultLogger('WARN'),
    leaseSeconds: 6,
  });
  const node = kubelet.autoReady(namespace, 'app=antdb');
  try {
    // Leading a cluster starts one refresh (changes made while nobody watched); let it finish.
    await eventually('the watcher to lead every cluster', () => Promise.resolve(watchers.leading().length === 3 ? true : undefined));
    for (const cluster of ['cat-sql', 'cat-etcd', 'cat-cmd']) {
      await eventually(`the start-up refresh of ${cluster}`, async () => ((await runsOf(cluster)).length === 1 ? true : undefined));
      await env.client.workflow.getHandle(refreshWorkflowId(cluster)).result();
    }
    const before = await podIps('antdb');
    await Promise.all(Object.keys(before).map((pod) => admin.core.deleteNamespacedPod({ name: pod, namespace })));
    const after = await eventually('three new addresses', async () => {
      const ips = await podIps('antdb');
      return Object.keys(ips).length === 3 && Object.keys(ips).every((p) => ips[p] !== before[p]) ? ips : undefined;
    });
    for (const cluster of ['cat-sql', 'cat-etcd', 'cat-cmd']) {
      await eventually(`the refresh of ${cluster}`, async () => ((await runsOf(cluster)).length === 2 ? true : undefined));
      const result = await env.client.workflow.getHandle<typeof refreshNodeAddresses>(refreshWorkflowId(cluster)).result();
      expect(result.changedPods).toEqual(['antdb-0', 'antdb-1', 'antdb-2']);
    }
    expect(await sqlCatalog('pgxc_node')).toEqual(expectedFrom(after));
    expect(await sqlCatalog('pgxc_node_cmd')).toEqual(expectedFrom(after));
    expect(await etcdCatalog()).toEqual(expectedFrom(after));
    // Still exactly two runs each: the three restarts made one.
    await new Promise((r) => setTimeout(r, 4000));
    for (const cluster of ['cat-sql', 'cat-etcd', 'cat-cmd']) expect(await runsOf(cluster)).toHaveLength(2);
  } finally {
    await node.stop();
    await watchers.stop();
  }
});

test('the catalog unreachable at first: the refresh retries, then writes the right addresses', async () => {
  const ips = await podIps('antdb');
  await seedCatalogs(ips);
  await stack('stop', 'mariadb');
  let restarted = false;
  try {
    const handle = await env.client.workflow.start(refreshNodeAddresses, { taskQueue: worker.taskQueue, workflowId: `${refreshWorkflowId('cat-sql')}/down-${run}`, args: [{ cluster: 'cat-sql' }] });
    await eventually('a failed attempt to read the catalog', async () => {
      const description = await handle.describe();
      const pending = description.raw.pendingActivities ?? [];
      return pending.some((a) => a.activityType?.name === 'readRegisteredNodes' && (a.attempt ?? 0) >= 2) ? true : undefined;
    });
    await stack('start', 'mariadb');
    restarted = true;
    const result = await handle.result();
    expect(result.rounds[0]!.applied).toEqual(['antdb-0', 'antdb-1', 'antdb-2']);
  } finally {
    if (!restarted) await stack('start', 'mariadb');
    // The test's own connection died with the server.
    sql = await mysql.createConnection({ host: '127.0.0.1', port: 3310, user: 'runbook', password: process.env.DBR_LOCAL_MYSQL_PASSWORD });
  }
  expect(await sqlCatalog('pgxc_node')).toEqual(expectedFrom(ips));
});

test('a pod without an address yet is waited for, and no empty address is ever written', async () => {
  const ips = await podIps('antdb');
  await seedCatalogs({ ...ips, 'antdb-3': '10.255.0.1' });
  await sql.query(`DELETE FROM ${db}.audit`);
  await scaleTo(4);
  await eventually('antdb-3 to exist without an address', async () => {
    const pod = await admin.core.readNamespacedPod({ name: 'antdb-3', namespace }).catch(() => undefined);
    return pod && !pod.status?.podIP ? true : undefined;
  });
  const handle = await env.client.workflow.start(refreshNodeAddresses, { taskQueue: worker.taskQueue, workflowId: `${refreshWorkflowId('cat-sql')}/wait-${run}`, args: [{ cluster: 'cat-sql' }] });
  await eventually('the refresh to wait for antdb-3', async () => ((await handle.query(getProgressQuery)).currentStep === 'read pods' ? true : undefined));
  await new Promise((r) => setTimeout(r, 3000));
  // Nothing is written while the refresh waits: the row still holds what the catalog had.
  expect(await sqlCatalog('pgxc_node')).toMatchObject({ 'antdb-3': `10.255.0.1:${PORT}` });
  const ip = await kubelet.markRunning(namespace, 'antdb-3');
  const result = await handle.result();
  expect(result.rounds[0]!.waitedFor).toEqual(['antdb-3']);
  expect(result.rounds[0]!.withoutAddress).toEqual([]);
  expect((await sqlCatalog('pgxc_node'))['antdb-3']).toBe(`${ip}:${PORT}`);
  const [written] = await sql.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${db}.audit WHERE node_host = '' OR node_host IS NULL`);
  expect(Number(written[0]!.n)).toBe(0);
  await scaleTo(3);
});

test('node names that would inject SQL or shell are stored literally, or refused where a template does not quote them', async () => {
  const ips = await podIps('hostile');
  const pods = Object.keys(ips).sort();
  for (const [i, pod] of pods.entries()) {
    const current = await admin.core.readNamespacedPod({ name: pod, namespace });
    current.metadata!.annotations = { ...current.metadata!.annotations, 'antdb.io/node': HOSTILE[i]! };
    await admin.core.replaceNamespacedPod({ name: pod, namespace, body: current });
  }
  for (const table of ['hostile_node', 'hostile_node_cmd']) {
    for (const name of HOSTILE) await sql.query(`INSERT INTO ${db}.${table} (node_name, node_host, node_port, node_role) VALUES (?, '10.255.0.9', ?, NULL)`, [name, PORT]);
  }
  for (const name of HOSTILE) await etcd.put(`${etcdPrefix}hostile/${name}`).value(JSON.stringify({ name, host: '10.255.0.9', port: PORT }));

  for (const cluster of ['hostile-sql', 'hostile-etcd', 'hostile-cmd']) {
    const result = await refresh(cluster);
    expect(result.rounds[0]!.applied.sort()).toEqual([...HOSTILE].sort());
  }
  const expected = Object.fromEntries(pods.map((pod, i) => [HOSTILE[i]!, `${ips[pod]!}:${PORT}`]));
  expect(await sqlCatalog('hostile_node')).toEqual(expected);
  expect(await sqlCatalog('hostile_node_cmd')).toEqual(expected);
  expect(await etcdCatalog(`${etcdPrefix}hostile/`)).toEqual(expected);
  expect(existsSync(`/tmp/dbr-pwned-${run}`)).toBe(false);
  const [tables] = await sql.query<mysql.RowDataPacket[]>(`SHOW TABLES FROM ${db} LIKE 'pgxc_node'`);
  expect(tables).toHaveLength(1);

  // An unquoted {node} in a template would put the name into SQL as it is: refused, naming the node.
  await sql.query(`UPDATE ${db}.hostile_node_cmd SET node_host = '10.255.0.9'`);
  const err = await refresh('hostile-raw').then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause && !(cause instanceof ApplicationFailure)) cause = (cause as Error).cause;
  expect((cause as ApplicationFailure).type).toBe('UnsafeCommandValue');
  expect((cause as ApplicationFailure).message).toContain('use {node:sql} or {node:mysql}');
  expect(Object.values(await sqlCatalog('hostile_node_cmd'))).toEqual([`10.255.0.9:${PORT}`, `10.255.0.9:${PORT}`, `10.255.0.9:${PORT}`]);
});

test('one leader per task queue: two worker processes, one watches; kill it and the other takes over', async () => {
  const taskQueue = `refresh-leader-${run}`;
  const only = profilesYaml(namespace).split('\n  cat-etcd:')[0]!;
  const file = path.join(path.dirname(profilesFile), 'leader.yaml');
  writeFileSync(file, only);
  const workerEnv = { TEMPORAL_ADDRESS: env.address, DBR_TASK_QUEUE: taskQueue, DBR_PROFILES: file, DBR_KUBECONFIG: ADMIN_KUBECONFIG, DBR_ADDRESS_WATCH_LEASE_SECONDS: '6' };
  const a = spawnWorkerProcess(workerEnv);
  const b = spawnWorkerProcess(workerEnv);
  const node = kubelet.autoReady(namespace, 'app=antdb');
  try {
    await Promise.all([a.waitUntilPolling(), b.waitUntilPolling()]);
    const lease = () => admin.coordination.readNamespacedLease({ name: leaseName('cat-sql', taskQueue), namespace });
    const first = await eventually('a leader', async () => (await lease().catch(() => undefined))?.spec?.holderIdentity || undefined);
    const leader = first.endsWith(`/${a.child.pid}`) ? a : b;
    const follower = leader === a ? b : a;
    expect(leader.output()).toContain('"message":"address watch: leading"');
    expect(follower.output()).not.toContain('"message":"address watch: leading"');

    await leader.kill('SIGKILL');
    const second = await eventually('the other to take over', async () => {
      const holder = (await lease()).spec?.holderIdentity;
      return holder && holder !== first ? holder : undefined;
    }, 60_000);
    expect(second.endsWith(`/${follower.child.pid}`)).toBe(true);

    // The new leader's watch works: a pod that moves gets its catalog row updated.
    await seedCatalogs(await podIps('antdb'), false);
    await admin.core.deleteNamespacedPod({ name: 'antdb-1', namespace });
    const moved = await eventually('antdb-1 with a new address', async () => (await podIps('antdb'))['antdb-1']);
    await eventually('the catalog to follow', async () => ((await sqlCatalog('pgxc_node'))['antdb-1'] === `${moved}:${PORT}` ? true : undefined), 60_000);
  } finally {
    await node.stop();
    await a.kill();
    await b.kill();
  }
});
