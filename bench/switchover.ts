// bench/switchover: how long a client cannot write during a switchover, and whether it loses an
// acknowledged write. A writer inserts one row with a sequence number every few ms through whatever
// pod the routing says is primary (the same RoutedWriter the tests use), on the stack's real GTID
// pair and kube-apiserver. Side by side in one run, interleaved and alternating direction:
//   runbook  the switchover workflow on a local Temporal dev server (pre-flight, lock, compensation
//            registration, verification included)
//   plain    the same statements typed by an operator's script: read_only, MASTER_GTID_WAIT, STOP
//            SLAVE / RESET SLAVE ALL / read_only off, CHANGE MASTER on the old primary, labels moved
// For each: the write-unavailability window (the longest gap between two acknowledged writes, ms)
// and the acknowledged writes missing afterwards on either server (must be 0), median and max.
//   npm run bench:switchover [-- --reps 20 --interval-ms 4]
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { Kubelet } from '../test/helpers/kubelet';
import { ADMIN_KUBECONFIG, adminClients, createStatefulSet, createTestNamespace, deleteTestNamespace, eventually } from '../test/helpers/kubernetes';
import { PAIR, facts, restorePair, sql, waitForPosition } from '../test/helpers/replication';
import { stackSecrets } from '../test/helpers/stack';
import { realActivities, startTemporal, startWorker, testProfiles } from '../test/helpers/temporal';
import { RoutedWriter, type WriterReport } from '../test/helpers/writer';
import { buildWorkflowBundle } from '../worker/bundle';
import { getProgressQuery } from '../workflows/definitions';
import type { SwitchoverResult } from '../workflows/switchover';

const { values: args } = parseArgs({ options: { reps: { type: 'string', default: '20' }, 'interval-ms': { type: 'string', default: '4' }, verbose: { type: 'boolean', default: false } } });
const REPS = Number(args.reps);
const INTERVAL_MS = Number(args['interval-ms']);

Object.assign(process.env, stackSecrets());
const suffix = randomBytes(3).toString('hex');
const CLUSTER = `bench-so-${suffix}`;
const DATABASE = `dbr_bench_${suffix}`;
const TABLE = `${DATABASE}.writes`;
const WRITER = { user: `dbr_bench_${suffix}`, password: randomBytes(12).toString('hex') };
const PORT_OF_POD: Record<string, number> = { 'bench-db-0': PAIR.primary, 'bench-db-1': PAIR.replica };
const POD_OF_PORT: Record<number, string> = { [PAIR.primary]: 'bench-db-0', [PAIR.replica]: 'bench-db-1' };
const NODE_OF_PORT: Record<number, string> = { [PAIR.primary]: 'primary', [PAIR.replica]: 'replica' };
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

interface Sample {
  kind: 'runbook' | 'plain';
  from: number;
  windowMs: number;
  lost: number;
  acked: number;
  totalMs: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const bundle = path.join(os.tmpdir(), `db-runbooks-bench-bundle-${process.pid}.js`);
  writeFileSync(bundle, await buildWorkflowBundle());
  process.env.DBR_TEST_WORKFLOW_BUNDLE = bundle;

  await restorePair();
  const admin = adminClients();
  const namespace = await createTestNamespace(admin, 'dbr-bench');
  const profiles = testProfiles(`
clusters:
  ${CLUSTER}:
    namespace: ${namespace}
    workload: { kind: StatefulSet, name: bench-db, selector: app=bench-db, container: mariadb, roleLabel: role }
    mysql:
      topology: replication
      user: runbook
      password: { env: DBR_LOCAL_MYSQL_PASSWORD }
      replicationUser: repl
      replicationPassword: { env: DBR_LOCAL_REPL_PASSWORD }
      nodes:
        - { name: primary, host: 127.0.0.1, port: ${PAIR.primary}, pod: bench-db-0 }
        - { name: replica, host: 127.0.0.1, port: ${PAIR.replica}, pod: bench-db-1 }
    health: { maxReplicationLagSeconds: 10 }
    failover: { strategy: gtid, writerGraceSeconds: 1, catchUpTimeoutSeconds: 30 }
`);
  const env = await startTemporal();
  const worker = await startWorker(env, realActivities(env, profiles, { kubeconfigPath: ADMIN_KUBECONFIG }));
  const kubelet = new Kubelet(admin).autoReady(namespace, 'app=bench-db');
  const setRole = (pod: string, role: string) => admin.core.patchNamespacedPod({ name: pod, namespace, body: { metadata: { labels: { role } } } }, mergePatch);
  const samples: Sample[] = [];
  try {
    await createStatefulSet(admin, namespace, { name: 'bench-db', replicas: 2, image: 'mariadb:10.11' });
    await eventually('bench-db ready', async () => ((await admin.apps.readNamespacedStatefulSet({ name: 'bench-db', namespace })).status?.readyReplicas === 2 ? true : undefined));
    await setRole('bench-db-0', 'primary');
    await setRole('bench-db-1', 'replica');
    await sql(PAIR.primary, `CREATE DATABASE ${DATABASE}`);
    await sql(PAIR.primary, `CREATE TABLE ${TABLE} (seq BIGINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))`);
    await sql(PAIR.primary, `CREATE USER '${WRITER.user}'@'127.0.0.1' IDENTIFIED BY '${WRITER.password}'`);
    await sql(PAIR.primary, `GRANT SELECT, INSERT ON ${DATABASE}.* TO '${WRITER.user}'@'127.0.0.1'`);
    await waitForPosition(PAIR.replica, (await facts(PAIR.primary)).gtidBinlogPos);

    let seqBase = 0;
    let primaryPort: number = PAIR.primary;
    const resolvePrimary = async () => {
      const pods = await admin.core.listNamespacedPod({ namespace, labelSelector: 'app=bench-db,role=primary' });
      if (pods.items.length !== 1) throw new Error(`${pods.items.length} pods are primary`);
      return { host: '127.0.0.1', port: PORT_OF_POD[pods.items[0]!.metadata!.name!]! };
    };

    /** One measured switchover: a writer runs before, through and after it; then every acknowledged row is looked for on both servers. */
    const measure = async (kind: Sample['kind'], switchNow: (from: number, to: number) => Promise<void>): Promise<Sample> => {
      const from = primaryPort;
      const to = from === PAIR.primary ? PAIR.replica : PAIR.primary;
      const writer = new RoutedWriter({ resolvePrimary, ...WRITER, table: TABLE, intervalMs: INTERVAL_MS, firstSeq: seqBase });
      writer.start();
      let report: WriterReport;
      let totalMs: number;
      let began: number;
      try {
        await eventually('steady writes', () => Promise.resolve(writer.count >= 30 ? true : undefined));
        began = Date.now();
        await switchNow(from, to);
        totalMs = Date.now() - began;
        const after = writer.ackedOn(to);
        await eventually('writes on the new primary', () => Promise.resolve(writer.ackedOn(to) >= after + 30 ? true : undefined));
      } finally {
        report = await writer.stop();
      }
      primaryPort = to;
      seqBase = Math.max(seqBase, ...report.acked.map((a) => a.seq));
      await waitForPosition(from, (await facts(to)).gtidBinlogPos);
      let lost = 0;
      for (const port of [from, to]) {
        const present = new Set((await sql<{ seq: number }>(port, `SELECT seq FROM ${TABLE} WHERE seq > ?`, [report.acked[0]!.seq - 1])).map((r) => Number(r.seq)));
        lost = Math.max(lost, report.acked.filter((a) => !present.has(a.seq)).length);
      }
      const sample = { kind, from, windowMs: report.longestGapMs, lost, acked: report.acked.length, totalMs };
      console.log(`${kind.padEnd(8)} ${String(from)} → ${String(to)}  window ${String(sample.windowMs).padStart(5)} ms  lost ${lost}  (${sample.acked} acknowledged writes; switch took ${totalMs} ms)`);
      if (args.verbose) {
        // What the client was told during the longest gap.
        const gapEnd = report.acked.findIndex((a, i) => i > 0 && a.at - report.acked[i - 1]!.at === report.longestGapMs);
        const gapStart = report.acked[gapEnd - 1]!.at;
        console.log(`           the longest gap began ${gapStart - began} ms after the switch was started`);
        for (const e of report.errors.filter((x) => x.at >= gapStart && x.at <= report.acked[gapEnd]!.at)) {
          console.log(`           +${String(e.at - gapStart).padStart(5)} ms  ${e.port}  ${e.message}`);
        }
        console.log(`           +${String(report.acked[gapEnd]!.at - gapStart).padStart(5)} ms  ${report.acked[gapEnd]!.port}  acknowledged`);
      }
      return sample;
    };

    const runbook = async (_from: number, to: number) => {
      const handle = await env.client.workflow.start<(input: { cluster: string; newPrimary?: string }) => Promise<SwitchoverResult>>('switchover', {
        taskQueue: worker.taskQueue,
        workflowId: `switchover/${CLUSTER}-${samples.length}`,
        args: [{ cluster: CLUSTER, newPrimary: NODE_OF_PORT[to] }],
      });
      const result = await handle.result();
      if (args.verbose) {
        const { steps } = await handle.query(getProgressQuery);
        console.log(`           steps: ${steps.filter((x) => x.startedAt && x.endedAt).map((x) => `${x.name} ${Date.parse(x.endedAt!) - Date.parse(x.startedAt!)} ms`).join(', ')}`);
      }
      if (result.newPrimary !== NODE_OF_PORT[to]) throw new Error(`the runbook promoted ${result.newPrimary}`);
    };

    const plain = async (from: number, to: number) => {
      await sql(from, 'SET GLOBAL read_only = ON');
      const [position] = await sql<{ p: string }>(from, 'SELECT @@gtid_binlog_pos AS p');
      await sql(to, 'SELECT MASTER_GTID_WAIT(?, 30)', [position!.p]);
      await sql(to, 'STOP SLAVE');
      await sql(to, 'RESET SLAVE ALL');
      await sql(to, 'SET GLOBAL read_only = OFF');
      await sql(from, `CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = ?, MASTER_USER = 'repl', MASTER_PASSWORD = ?, MASTER_USE_GTID = current_pos, MASTER_CONNECT_RETRY = 1`, [to, process.env.DBR_LOCAL_REPL_PASSWORD]);
      await sql(from, 'START SLAVE');
      await setRole(POD_OF_PORT[from]!, 'replica');
      await setRole(POD_OF_PORT[to]!, 'primary');
    };

    console.log(`switchover benchmark: ${REPS} runbook and ${REPS} plain switchovers, interleaved, a write every ${INTERVAL_MS} ms`);
    for (let i = 0; i < REPS; i += 1) {
      samples.push(await measure('runbook', runbook));
      samples.push(await measure('plain', plain));
    }
  } finally {
    await worker.stop();
    await env.teardown();
    await kubelet.stop();
    await restorePair();
    await sql(PAIR.primary, `DROP DATABASE IF EXISTS ${DATABASE}`);
    await sql(PAIR.primary, `DROP USER IF EXISTS '${WRITER.user}'@'127.0.0.1'`);
    await sql(PAIR.primary, 'DROP DATABASE IF EXISTS db_runbooks');
    await deleteTestNamespace(admin, namespace);
  }

  const of = (kind: Sample['kind']) => samples.filter((s) => s.kind === kind);
  const summary = (kind: Sample['kind']) => {
    const s = of(kind);
    return {
      medianWindowMs: median(s.map((x) => x.windowMs)),
      maxWindowMs: Math.max(...s.map((x) => x.windowMs)),
      lost: s.reduce((sum, x) => sum + x.lost, 0),
      medianSwitchMs: median(s.map((x) => x.totalMs)),
    };
  };
  const r = summary('runbook');
  const p = summary('plain');
  console.log('');
  console.log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}; ${new Date().toISOString()}`);
  console.log('Temporal: the CLI dev server (SQLite in memory) in this process\'s test environment; MariaDB 10.11 with sync_binlog=1 and innodb_flush_log_at_trx_commit=1');
  console.log('');
  console.log('                       median window   max window   lost acknowledged writes   median switch duration');
  console.log(`runbook (switchover)   ${String(r.medianWindowMs).padStart(10)} ms   ${String(r.maxWindowMs).padStart(7)} ms   ${String(r.lost).padStart(24)}   ${String(r.medianSwitchMs).padStart(19)} ms`);
  console.log(`plain (SQL by hand)    ${String(p.medianWindowMs).padStart(10)} ms   ${String(p.maxWindowMs).padStart(7)} ms   ${String(p.lost).padStart(24)}   ${String(p.medianSwitchMs).padStart(19)} ms`);
  console.log(`ratio runbook / plain  ${(r.medianWindowMs / p.medianWindowMs).toFixed(2).padStart(10)} x    ${(r.maxWindowMs / p.maxWindowMs).toFixed(2).padStart(7)} x`);
  console.log('');
  console.log(`target: median window under 2000 ms: ${r.medianWindowMs < 2000 ? 'met' : 'MISSED'}; lost acknowledged writes must be 0: ${r.lost === 0 ? 'met' : 'MISSED'}`);
  if (r.lost > 0 || p.lost > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(`bench/switchover: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
