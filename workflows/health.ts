// Cluster health: the checks (activities) and the verdict (pure, unit-tested). Used as the
// clusterHealth runbook and as the pre-flight step of every other runbook.
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ClusterPlan } from '../activities/cluster';
import type { EtcdFacts } from '../activities/etcd';
import type { WorkloadFacts } from '../activities/kubernetes';
import type { MysqlNodeFacts } from '../activities/mysql';
import type { S3Facts } from '../activities/s3';
import { lookup, probe } from './activity-profiles';

export type Verdict = 'healthy' | 'degraded' | 'down';

export interface HealthFinding {
  component: string;
  severity: 'down' | 'degraded' | 'warning';
  message: string;
}

export interface HealthFacts {
  mysql?: MysqlNodeFacts[];
  etcd?: EtcdFacts;
  s3?: S3Facts;
  workload?: WorkloadFacts;
}

export interface ClusterHealthReport extends HealthFacts {
  cluster: string;
  verdict: Verdict;
  /** Why the verdict is not healthy, most severe first. */
  reasons: string[];
  warnings: string[];
  findings: HealthFinding[];
  checkedAt: string;
  summary: string;
}

const { describeCluster } = proxyActivities<Activities>(lookup);
const { checkMysqlNode, checkEtcd, checkS3, checkWorkload } = proxyActivities<Activities>(probe);

export async function gatherHealthFacts(plan: ClusterPlan): Promise<HealthFacts> {
  const { cluster } = plan;
  const info = workflowInfo();
  const [mysql, etcd, s3, workload] = await Promise.all([
    plan.mysql ? Promise.all(plan.mysql.nodes.map((n) => checkMysqlNode({ cluster, node: n.name }))) : undefined,
    plan.etcd ? checkEtcd({ cluster }) : undefined,
    plan.s3 ? checkS3({ cluster, probeId: `${info.workflowId}/${info.runId}` }) : undefined,
    plan.workload && plan.namespace ? checkWorkload({ cluster }) : undefined,
  ]);
  return { mysql, etcd, s3, workload };
}

function assessMysql(plan: ClusterPlan, nodes: MysqlNodeFacts[], findings: HealthFinding[]): void {
  const topology = plan.mysql?.topology ?? 'standalone';
  const add = (node: string, severity: HealthFinding['severity'], message: string) =>
    findings.push({ component: `mysql/${node}`, severity, message });

  for (const n of nodes) {
    if (!n.reachable) continue;
    if (n.innodbFlushLogAtTrxCommit !== undefined && n.innodbFlushLogAtTrxCommit !== 1) {
      add(n.node, 'warning', `${n.node}: innodb_flush_log_at_trx_commit=${n.innodbFlushLogAtTrxCommit}: acknowledged writes can be lost on a crash (set it to 1)`);
    }
    if (n.logBin && n.syncBinlog !== undefined && n.syncBinlog !== 1) {
      add(n.node, 'warning', `${n.node}: sync_binlog=${n.syncBinlog}: the binary log can lose acknowledged transactions on a crash (set it to 1)`);
    }
  }

  if (topology === 'galera') {
    assessGalera(plan, nodes, add);
    return;
  }

  for (const n of nodes) {
    const role = n.role ?? (n.replication ? 'replica' : 'primary');
    if (!n.reachable) {
      add(n.node, role === 'replica' ? 'degraded' : 'down', `${role} ${n.node} (${n.address}) is unreachable: ${n.error ?? 'no answer'}`);
      continue;
    }
    if (n.error) add(n.node, 'degraded', `${n.node} (${n.address}) answered but its status could not be read: ${n.error}`);
    if (role === 'replica') {
      const r = n.replication;
      if (!r) {
        add(n.node, 'degraded', `replica ${n.node} has no replication configured`);
        continue;
      }
      if (r.ioRunning !== 'Yes') {
        add(n.node, 'degraded', `replica ${n.node}: replication I/O thread is ${r.ioRunning}${r.lastIoError ? `: ${r.lastIoError}` : ''}`);
      }
      if (r.sqlRunning !== 'Yes') {
        add(n.node, 'degraded', `replica ${n.node}: replication SQL thread is stopped (${r.sqlRunning})${r.lastSqlError ? `: ${r.lastSqlError}` : ''}`);
      }
      const maxLag = plan.health.maxReplicationLagSeconds;
      if (r.secondsBehindSource !== null && r.secondsBehindSource > maxLag) {
        add(n.node, 'degraded', `replica ${n.node} is ${r.secondsBehindSource}s behind its primary (limit ${maxLag}s)`);
      }
      if (n.readOnly === false) add(n.node, 'warning', `replica ${n.node} is writable (read_only=OFF): writes there diverge from the primary`);
    } else if (n.readOnly) {
      add(n.node, 'degraded', `primary ${n.node} is read-only (read_only=ON): writes are refused`);
    }
  }
}

function assessGalera(plan: ClusterPlan, nodes: MysqlNodeFacts[], add: (node: string, severity: HealthFinding['severity'], message: string) => void): void {
  const expected = plan.health.expectedGaleraClusterSize ?? nodes.length;
  const quorum = Math.floor(expected / 2) + 1;
  let serving = 0;
  for (const n of nodes) {
    if (!n.reachable) {
      add(n.node, 'degraded', `galera node ${n.node} (${n.address}) is unreachable: ${n.error ?? 'no answer'}`);
      continue;
    }
    const g = n.galera;
    if (!g) {
      add(n.node, 'degraded', `galera node ${n.node} has wsrep off: it is not part of the cluster`);
      continue;
    }
    const problems: string[] = [];
    if (g.ready !== 'ON') problems.push(`wsrep_ready=${g.ready}`);
    if (g.connected !== 'ON') problems.push(`wsrep_connected=${g.connected}`);
    if (g.clusterStatus !== 'Primary') problems.push(`wsrep_cluster_status=${g.clusterStatus}`);
    // A donor or desynced node still says ready; only Synced serves consistent reads.
    if (g.localState !== 'Synced') problems.push(`wsrep_local_state_comment=${g.localState}`);
    if (problems.length > 0) {
      add(n.node, 'degraded', `galera node ${n.node} is not serving: ${problems.join(', ')}`);
    } else {
      serving += 1;
    }
    if (g.recvQueueAvg > plan.health.maxGaleraRecvQueueAvg) {
      add(n.node, 'degraded', `galera node ${n.node}: wsrep_local_recv_queue_avg=${g.recvQueueAvg} above ${plan.health.maxGaleraRecvQueueAvg}: it falls behind and will trigger flow control`);
    }
  }
  const sizes = nodes.filter((n) => n.galera?.clusterStatus === 'Primary').map((n) => n.galera!.clusterSize);
  const size = sizes.length > 0 ? Math.max(...sizes) : 0;
  if (serving === 0) {
    add('cluster', 'down', `galera cluster has no node in Primary/Synced state (${nodes.length} checked)`);
  } else if (serving < quorum) {
    add('cluster', 'down', `galera cluster has ${serving} serving node(s), below quorum ${quorum} of ${expected}`);
  } else if (size !== expected) {
    add('cluster', 'degraded', `galera cluster size is ${size}, expected ${expected}`);
  }
}

function assessEtcd(plan: ClusterPlan, facts: EtcdFacts, findings: HealthFinding[]): void {
  const add = (severity: HealthFinding['severity'], message: string) => findings.push({ component: 'etcd', severity, message });
  const reachable = facts.endpoints.filter((e) => e.reachable);
  if (reachable.length === 0) {
    add('down', `etcd is unreachable at ${facts.endpoints.map((e) => `${e.endpoint} (${e.error ?? 'no answer'})`).join(', ')}`);
    return;
  }
  for (const e of facts.endpoints) if (!e.reachable) add('degraded', `etcd endpoint ${e.endpoint} is unreachable: ${e.error ?? 'no answer'}`);
  if (reachable.every((e) => !e.leaderId || e.leaderId === '0')) add('down', 'etcd has no leader');
  for (const e of reachable) {
    if (e.dbSizeBytes !== undefined && e.dbSizeBytes > plan.health.maxEtcdDbSizeBytes) {
      add('degraded', `etcd ${e.endpoint} database is ${e.dbSizeBytes} bytes, above ${plan.health.maxEtcdDbSizeBytes}: compact and defragment`);
    }
  }
}

function assessS3(facts: S3Facts, findings: HealthFinding[]): void {
  const add = (message: string) => findings.push({ component: 's3', severity: 'down', message });
  if (!facts.reachable) add(`S3 endpoint ${facts.endpoint} is unreachable: ${facts.error ?? 'no answer'}`);
  else if (!facts.bucketExists) add(`S3 ${facts.error ?? `bucket ${facts.bucket} does not exist`}`);
  else if (!facts.writable) add(`S3 bucket ${facts.bucket} is not writable: ${facts.error ?? 'probe failed'}`);
}

function assessWorkload(plan: ClusterPlan, w: WorkloadFacts, checkedAt: string, findings: HealthFinding[]): void {
  const workload = `${w.kind} ${w.name}`;
  const add = (component: string, severity: HealthFinding['severity'], message: string) => findings.push({ component: `kubernetes/${component}`, severity, message });
  if (!w.reachable) {
    add(w.name, 'degraded', `${workload}: status unknown: ${w.error ?? 'the Kubernetes API did not answer'}`);
    return;
  }
  if (!w.exists) {
    add(w.name, 'down', `${workload} does not exist in namespace ${w.namespace}`);
    return;
  }
  if (w.desired === 0) add(w.name, 'warning', `${workload} is scaled to 0 replicas`);
  else if (w.ready === 0) add(w.name, 'down', `${workload}: 0 of ${w.desired} replicas ready`);
  else if (w.ready < w.desired) add(w.name, 'degraded', `${workload}: ${w.ready} of ${w.desired} replicas ready`);
  const recentSince = Date.parse(checkedAt) - plan.health.recentRestartSeconds * 1000;
  for (const pod of w.pods) {
    if (!pod.ready) add(pod.name, 'degraded', `pod ${pod.name} is not ready: ${pod.notReadyReasons.join('; ')}`);
    if (pod.lastRestartAt && Date.parse(pod.lastRestartAt) >= recentSince) {
      add(pod.name, 'warning', `pod ${pod.name} restarted recently: ${pod.restartCount} restart(s), the last at ${pod.lastRestartAt} (${pod.lastRestartReason ?? 'reason unknown'})`);
    }
  }
}

const SEVERITY_ORDER: Record<HealthFinding['severity'], number> = { down: 0, degraded: 1, warning: 2 };

/** The verdict: down if any finding is down, degraded if any is degraded, healthy otherwise. */
export function assessHealth(plan: ClusterPlan, facts: HealthFacts, checkedAt: string): ClusterHealthReport {
  const findings: HealthFinding[] = [];
  if (facts.mysql) assessMysql(plan, facts.mysql, findings);
  if (facts.etcd) assessEtcd(plan, facts.etcd, findings);
  if (facts.s3) assessS3(facts.s3, findings);
  if (facts.workload) assessWorkload(plan, facts.workload, checkedAt, findings);
  findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);

  const verdict: Verdict = findings.some((f) => f.severity === 'down')
    ? 'down'
    : findings.some((f) => f.severity === 'degraded')
      ? 'degraded'
      : 'healthy';
  const reasons = findings.filter((f) => f.severity !== 'warning').map((f) => f.message);
  const warnings = findings.filter((f) => f.severity === 'warning').map((f) => f.message);

  const checked: string[] = [];
  if (facts.mysql) checked.push(`${facts.mysql.length} ${plan.mysql?.topology ?? ''} MySQL node(s)`.replace('  ', ' '));
  if (facts.etcd) checked.push(`etcd (${facts.etcd.endpoints.length} endpoint(s))`);
  if (facts.s3) checked.push(`bucket ${facts.s3.bucket}`);
  if (facts.workload) checked.push(`${facts.workload.kind} ${facts.workload.name} (${facts.workload.ready}/${facts.workload.desired} ready)`);
  const summary =
    verdict === 'healthy'
      ? `healthy: ${checked.join(', ') || 'nothing to check'}${warnings.length ? ` (${warnings.length} warning(s))` : ''}`
      : `${verdict}: ${reasons.join('; ')}`;

  return { cluster: plan.cluster, verdict, reasons, warnings, findings, checkedAt, summary, ...facts };
}

/** Runs every check the cluster's profile names and returns the report. */
export async function checkClusterHealth(cluster: string): Promise<{ plan: ClusterPlan; report: ClusterHealthReport }> {
  const plan = await describeCluster({ cluster });
  const facts = await gatherHealthFacts(plan);
  return { plan, report: assessHealth(plan, facts, new Date().toISOString()) };
}
